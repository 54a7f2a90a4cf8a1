"""analyze_pcap on crafted captures: SIP over UDP and TCP, HTTP, RTP stream discovery and
RTP header parsing."""
from __future__ import annotations

import random

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from harness.media.rtp import RtpError, RtpPacket, TelephoneEvent
from harness.wire.analysis import analyze_pcap
from harness.wire.datagrams import decode_capture
from harness.wire.pcap_records import read_records
from harness.wire.rtp_streams import RtpHeaders
from harness.testing.captures import CaptureBuilder, sdp_body, sip_message

CALLER, STUB = ("127.0.0.1", 5060), ("127.0.0.1", 5080)
CALLER_RTP, STUB_RTP = ("127.0.0.1", 20000), ("127.0.0.1", 20002)
HTTP_CLIENT, HTTP_SERVER = ("127.0.0.1", 40000), ("127.0.0.1", 8080)


def call_setup(cb: CaptureBuilder, t: float = 0.0, call_id: str = "call-1",
               caller_map=None, stub_map=None) -> None:
    caller_map = caller_map or {0: "PCMU/8000", 101: "telephone-event/8000"}
    stub_map = stub_map or {0: "PCMU/8000", 101: "telephone-event/8000"}
    cb.udp(t, CALLER, STUB, sip_message("INVITE sip:+1555@127.0.0.1 SIP/2.0", call_id,
                                        "1 INVITE", CALLER, sdp_body(*CALLER_RTP, caller_map)))
    cb.udp(t + 0.001, STUB, CALLER, sip_message("SIP/2.0 100 Trying", call_id, "1 INVITE", STUB))
    cb.udp(t + 0.010, STUB, CALLER, sip_message("SIP/2.0 200 OK", call_id, "1 INVITE", STUB,
                                                sdp_body(*STUB_RTP, stub_map)))
    cb.udp(t + 0.012, CALLER, STUB, sip_message("ACK sip:+1555@127.0.0.1 SIP/2.0", call_id,
                                                "1 ACK", CALLER))


def rtp_run(cb, src, dst, t, n, seq=0, ts=0, ssrc=0x1111, pt=0, payload=b"\xff" * 160):
    for i in range(n):
        cb.udp(t + 0.02 * i, src, dst, RtpPacket(pt, (seq + i) & 0xFFFF, (ts + 160 * i) & 0xFFFFFFFF,
                                                 ssrc, payload).build())


def test_sip_ladder_and_dialogs_over_udp(tmp_path):
    cb = CaptureBuilder()
    call_setup(cb)
    cb.udp(1.0, STUB, CALLER, sip_message("BYE sip:caller@127.0.0.1 SIP/2.0", "call-1", "1 BYE", STUB))
    cb.udp(1.001, CALLER, STUB, sip_message("SIP/2.0 200 OK", "call-1", "1 BYE", CALLER))
    cb.udp(1.5, CALLER, STUB, b"\r\n\r\n")  # keep-alive: not a message
    a = analyze_pcap(cb.write(str(tmp_path / "sip.pcap")))
    assert [m.summary for m in a.sip] == ["INVITE (SDP)", "100 Trying (INVITE)", "200 OK (INVITE) (SDP)",
                                         "ACK", "BYE", "200 OK (BYE)"]
    assert list(a.dialogs) == ["call-1"] and len(a.dialogs["call-1"]) == 6
    assert a.sip[4].src == STUB and a.sip[4].message.method == "BYE"
    ladder = a.ladder_text().splitlines()
    assert ladder[0] == "Call-ID: call-1" and "127.0.0.1:5060" in ladder[1]
    assert "- INVITE (SDP) -" in ladder[2] and ladder[2].rstrip().endswith(">|")
    assert "|< BYE -" in ladder[6] and ladder[7].lstrip().startswith("+1.001s")


def test_sip_over_tcp_segmented_reordered_and_retransmitted(tmp_path):
    body = sdp_body(*CALLER_RTP, {0: "PCMU/8000"})
    invite = sip_message("INVITE sip:+1555@127.0.0.1 SIP/2.0", "tcp-call", "1 INVITE", CALLER, body)
    ok = sip_message("SIP/2.0 200 OK", "tcp-call", "1 INVITE", STUB, sdp_body(*STUB_RTP, {0: "PCMU/8000"}))
    data = invite + ok  # two messages on one connection... (from the same side for the test)
    segs = [data[i:i + 100] for i in range(0, len(data), 100)]
    base = 5000
    frames = []
    order = list(range(len(segs)))
    order[2], order[3] = order[3], order[2]        # reordered
    order.insert(5, 4)                              # retransmitted
    syn = (Ether() / IP(src=CALLER[0], dst=STUB[0])
           / TCP(sport=CALLER[1], dport=STUB[1], seq=base - 1, flags="S"))
    frames.append(bytes(syn))
    for k in order:
        seg = (Ether() / IP(src=CALLER[0], dst=STUB[0])
               / TCP(sport=CALLER[1], dport=STUB[1], seq=base + 100 * k, flags="PA") / segs[k])
        frames.append(bytes(seg))
    cb = CaptureBuilder()
    cb.frames = [(cb.t0_ns + 1_000_000 * i, f) for i, f in enumerate(frames)]
    a = analyze_pcap(cb.write(str(tmp_path / "tcp.pcap")))
    assert [(m.transport, m.summary) for m in a.sip] == [("tcp", "INVITE (SDP)"),
                                                         ("tcp", "200 OK (INVITE) (SDP)")]
    first = a.sip[0]
    assert first.number == 2 and first.ts_ns == cb.t0_ns + 1_000_000  # time of the first segment
    assert first.message.body == body and first.last_number > first.number
    assert "[tcp]" in a.ladder_text()


def test_http_requests_with_responses_and_update_lookup(tmp_path):
    cb = CaptureBuilder()
    req = (b"POST /sip-media-applications/sma-1/calls/tx-9 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
           b"Content-Type: application/json\r\nContent-Length: 40\r\n\r\n"
           b'{"Arguments": {"prompt": "goodbye.wav"}}')
    head, body = req.split(b"\r\n\r\n")
    cb.tcp(2.0, HTTP_CLIENT, HTTP_SERVER, head + b"\r\nExpect: 100-continue\r\n\r\n", segment=60)
    cb.tcp(2.001, HTTP_SERVER, HTTP_CLIENT, b"HTTP/1.1 100 Continue\r\n\r\n")
    cb.tcp(2.002, HTTP_CLIENT, HTTP_SERVER, body)
    cb.tcp(2.004, HTTP_SERVER, HTTP_CLIENT, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                            b"5\r\n{\"a\":\r\n2\r\n1}\r\n0\r\n\r\n")
    cb.tcp(3.0, HTTP_CLIENT, HTTP_SERVER, b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
    cb.tcp(3.001, HTTP_SERVER, HTTP_CLIENT, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    a = analyze_pcap(cb.write(str(tmp_path / "http.pcap")))
    post, get = a.http
    assert (post.method, post.path, post.body) == ("POST", "/sip-media-applications/sma-1/calls/tx-9",
                                                  b'{"Arguments": {"prompt": "goodbye.wav"}}')
    assert post.ts_ns == cb.t0_ns + 2_000_000_000 and post.header("content-type") == "application/json"
    assert (post.response_status, post.response_ts_ns) == (200, cb.t0_ns + 2_004_000_000)
    assert (get.method, get.path, get.response_status) == ("GET", "/ping", 404)
    assert a.update_requests() == [post] and a.update_requests("tx-9") == [post]
    assert a.update_requests("tx-1") == []


def test_streams_come_from_sdp_and_only_after_it(tmp_path):
    cb = CaptureBuilder()
    rtp_run(cb, STUB_RTP, CALLER_RTP, -0.1, 3, seq=10, ssrc=0xAAAA)   # before any SDP: not RTP
    call_setup(cb)
    rtp_run(cb, STUB_RTP, CALLER_RTP, 0.02, 50, seq=13, ts=480, ssrc=0xAAAA)
    rtp_run(cb, CALLER_RTP, STUB_RTP, 0.03, 40, ssrc=0xBBBB)
    cb.udp(0.5, ("127.0.0.1", 30000), ("127.0.0.1", 30002),  # a flow no SDP announced
           RtpPacket(0, 1, 1, 0xCCCC, b"\xff" * 160).build())
    a = analyze_pcap(cb.write(str(tmp_path / "sdp.pcap")))
    assert [(s.src, s.dst, s.ssrc, s.stats.packets) for s in a.rtp_streams] == [
        (STUB_RTP, CALLER_RTP, 0xAAAA, 50), (CALLER_RTP, STUB_RTP, 0xBBBB, 40)]
    out = a.rtp_streams[0]
    assert out.found_by == "sdp" and out.call_id == "call-1" and out.setup_number == 4
    assert out.stats.lost == 0 and out.stats.max_jitter_ms < 1e-6
    assert out.encodings == {0: ("PCMU", 8000)} and out.payload_types == (0,)
    assert a.streams(src=STUB_RTP) == [out] and a.streams(dst=STUB_RTP)[0].ssrc == 0xBBBB
    assert len(a.streams(dst=(STUB_RTP[0], 0))) == 2  # port 0: any port
    assert [f.sequence for f in a.flow(STUB_RTP, CALLER_RTP)] == list(range(13, 63))
    frames = out.packets                       # columns; RtpFrame objects made on access
    assert len(frames) == 50 and frames[-1] == list(frames)[-1] == frames[10:][-1]
    assert (frames[0].sequence, frames[0].timestamp, frames[0].payload) == (13, 480, b"\xff" * 160)
    assert [f.number for f in frames[:2]] == frames.number[:2].tolist()


def test_event_payload_type_named_only_by_the_sender_is_still_decodable(tmp_path):
    cb = CaptureBuilder()
    call_setup(cb, stub_map={0: "PCMU/8000"})   # the stub does not announce telephone-event
    for k in range(3):
        cb.udp(0.1 + 0.02 * k, CALLER_RTP, STUB_RTP,
               RtpPacket(101, k, 0, 7, TelephoneEvent(5, k == 2, 10, 160 * (k + 1)).build()).build())
    [s] = analyze_pcap(cb.write(str(tmp_path / "ev.pcap"))).rtp_streams
    assert s.event_payload_types == {101}


def test_stream_without_sdp_is_found_by_heuristics(tmp_path):
    cb = CaptureBuilder()
    rtp_run(cb, ("127.0.0.1", 4000), ("127.0.0.1", 4002), 0.0, 30, ssrc=0x77)
    for k in range(4):  # 4-byte payloads on a dynamic type: taken for telephone-events
        event = TelephoneEvent(1, k == 3, 10, 160 * (k + 1)).build()
        cb.udp(0.7 + 0.02 * k, ("127.0.0.1", 4000), ("127.0.0.1", 4002),
               RtpPacket(96, 30 + k, 4800, 0x77, event).build())
    cb.udp(0.2, ("127.0.0.1", 4000), ("127.0.0.1", 4002), b"\x80junk")          # too short
    cb.udp(0.3, ("127.0.0.1", 5000), ("127.0.0.1", 5002), bytes(RtpPacket(0, 1, 1, 1).build()))
    [s] = analyze_pcap(cb.write(str(tmp_path / "heur.pcap"))).rtp_streams
    assert (s.found_by, s.ssrc, s.stats.packets, s.stats.lost) == ("heuristic", 0x77, 34, 0)
    assert s.encodings == {0: ("PCMU", 8000), 96: ("telephone-event", 8000)}


def test_sequence_wrap_ssrc_change_and_invalid_packets(tmp_path):
    cb = CaptureBuilder()
    call_setup(cb)
    rtp_run(cb, STUB_RTP, CALLER_RTP, 0.02, 20, seq=65530, ts=2**32 - 800, ssrc=0x1)
    rtp_run(cb, STUB_RTP, CALLER_RTP, 0.42, 10, seq=100, ts=0, ssrc=0x2)   # SSRC change mid-stream
    for t, junk in [(0.05, b"\x80\x00\x00"),                      # truncated header
                    (0.06, b"\x40" + bytes(20)),                  # RTP version 1
                    (0.07, b"\xa0" + bytes(11) + b"\x00"),        # padding count 0
                    (0.08, b"\x90" + bytes(11) + b"\x00\x00\x00\x09"),  # extension past the end
                    (0.09, b"\x8f" + bytes(11))]:                 # CSRC list cut off
        cb.udp(t, STUB_RTP, CALLER_RTP, junk)
    a = analyze_pcap(cb.write(str(tmp_path / "wrap.pcap")))
    first, second = a.streams(src=STUB_RTP)
    assert (first.ssrc, first.stats.packets, first.stats.expected, first.stats.lost) == (0x1, 20, 20, 0)
    assert first.stats.sequence_errors == 0 and not first.stats.problem
    assert [p.sequence for p in first.packets][5:7] == [65535, 0]
    assert (second.ssrc, second.stats.packets, second.stats.lost) == (0x2, 10, 0)
    assert len(a.flow(STUB_RTP, CALLER_RTP)) == 30


def test_many_calls_and_random_payloads_do_not_crash(tmp_path):
    rnd = random.Random(7)
    cb = CaptureBuilder()
    for c in range(3):
        call_setup(cb, t=c, call_id=f"call-{c}")
    def junk(n: int) -> bytes:
        return bytes(rnd.getrandbits(8) for _ in range(n))
    for i in range(300):
        cb.udp(rnd.random() * 3, STUB_RTP, CALLER_RTP, junk(rnd.randint(0, 40)))
        cb.udp(rnd.random() * 3, STUB, CALLER, b"SIP/2.0 200 OK\r\n" + junk(30))
    a = analyze_pcap(cb.write(str(tmp_path / "fuzz.pcap")))
    assert list(a.dialogs) == ["call-0", "call-1", "call-2"]
    frames = [p for s in a.rtp_streams for p in s.packets]
    assert len(frames) <= 300 and all(len(p.payload) <= 40 - 12 for p in frames)  # within its datagram


def test_vectorised_rtp_header_parsing_agrees_with_rtp_packet_parse(tmp_path):
    """CSRC lists, header extensions and padding, valid or cut short, and random bytes."""
    rnd = random.Random(3)
    payloads = []
    for _ in range(600):
        body = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 30)))
        packet = RtpPacket(rnd.choice([0, 8, 101, 72, 76, 77, 127]), rnd.getrandbits(16),
                           rnd.getrandbits(32), rnd.getrandbits(32), body, marker=rnd.random() < 0.3, csrc=tuple(range(rnd.choice([0, 0, 1, 15]))),
                           extension=rnd.choice([None, (0xBEDE, bytes(4 * rnd.randint(0, 3)))]),
                           padding=rnd.choice([0, 0, 1, 4])).build()
        if rnd.random() < 0.3:
            packet = packet[:rnd.randint(0, len(packet))]
        if rnd.random() < 0.1:
            packet = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 20)))
        payloads.append(packet)
    cb = CaptureBuilder()
    for i, payload in enumerate(payloads):
        cb.udp(0.001 * i, STUB_RTP, CALLER_RTP, payload)
    udp = decode_capture(read_records(cb.write(str(tmp_path / "rtp.pcap")))).udp
    headers = RtpHeaders.parse(udp)
    columns = ("row", "sequence", "timestamp", "ssrc", "payload_type", "marker", "offset", "length")
    ours = {row: (seq, ts, ssrc, pt, marker, udp.data[off:off + size])
            for row, seq, ts, ssrc, pt, marker, off, size
            in zip(*(getattr(headers, name).tolist() for name in columns))}
    theirs = {}
    for row, payload in enumerate(payloads):
        try:
            p = RtpPacket.parse(payload)
        except RtpError:
            continue
        if not 72 <= p.payload_type <= 76:
            theirs[row] = (p.sequence, p.timestamp, p.ssrc, p.payload_type, p.marker, p.payload)
    assert ours == theirs and len(theirs) > 200
