"""Our RTP stream statistics equal `tshark -q -z rtp,streams` field by field."""
from __future__ import annotations

import random
import socket
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import TEST_DATA, require_tool
from harness.media.g711 import ulaw_encode
from harness.media.rtp import RtpPacket, TelephoneEvent
from harness.wire.analysis import analyze_pcap
from harness.wire.audio import dtmf_events, label_packets, segments
from harness.testing.captures import (CaptureBuilder, sdp_body, sip_message, stream_table,
                                  tshark_stream_table)

DATA = TEST_DATA / "wire"
A, B = ("127.0.0.1", 5060), ("127.0.0.1", 5080)
MA, MB = ("127.0.0.1", 20000), ("127.0.0.1", 20002)


def tshark_streams(path: str, heuristic: bool = False) -> dict[tuple, dict]:
    """The table `tshark -q -z rtp,streams` prints, by (src, sport, dst, dport, ssrc)."""
    cmd = [require_tool("tshark"), "-q", "-z", "rtp,streams", "-r", path]
    if heuristic:
        cmd += ["-o", "rtp.heuristic_rtp:TRUE"]
    return tshark_stream_table(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)


def our_streams(path: str) -> dict[tuple, dict]:
    return stream_table(analyze_pcap(path).rtp_streams)


def assert_same_as_tshark(path: str, heuristic: bool = False) -> dict[tuple, dict]:
    theirs, ours = tshark_streams(path, heuristic), our_streams(path)
    assert theirs, "tshark found no RTP stream"
    assert set(ours) == set(theirs)
    for key in theirs:
        assert ours[key] == theirs[key], key
    return theirs


def invite(cb: CaptureBuilder, rtpmap: dict[int, str]) -> None:
    cb.udp(0.0, A, B, sip_message("INVITE sip:b@127.0.0.1 SIP/2.0", "c1", "1 INVITE", A,
                                  sdp_body(*MA, rtpmap)))


def impaired_call(seed: int, path: str, with_sip: bool = True) -> str:
    """A call whose two streams carry loss, jitter, duplicates, reordering, DTMF events,
    comfort noise, marker bits, SSRC changes, sequence jumps, a payload type the SDP does not
    name, timestamps from the past, and sequence/timestamp wrap-around."""
    rnd = random.Random(seed)
    cb = CaptureBuilder()
    ev = rnd.choice([101, 120])
    rtpmap = {0: "PCMU/8000", ev: "telephone-event/8000", 13: "CN/8000"}
    if with_sip:
        invite(cb, rtpmap)
        cb.udp(0.004, B, A, sip_message("SIP/2.0 200 OK", "c1", "1 INVITE", B, sdp_body(*MB, rtpmap)))
    for src, dst in ((MB, MA), (MA, MB)):
        ssrc, seq = rnd.getrandbits(32), rnd.choice([rnd.getrandbits(16), 65530])
        ts, t = rnd.choice([rnd.getrandbits(32), 2**32 - 800]), 0.003 + rnd.random() * 0.01

        def send(at, pt, payload=b"\xff" * 160, marker=False, ts_=None, seq_=None):
            cb.udp(at, src, dst, RtpPacket(pt, (seq if seq_ is None else seq_) & 0xFFFF,
                                           (ts if ts_ is None else ts_) & 0xFFFFFFFF, ssrc,
                                           payload, marker=marker).build())
        for i in range(rnd.randint(150, 300)):
            r, jit = rnd.random(), rnd.gauss(0, 0.002) if rnd.random() < 0.5 else 0.0
            if r < 0.03:                                     # lost
                pass
            elif r < 0.05:                                   # a DTMF event of k packets
                k = rnd.randint(3, 8)
                for j in range(k):
                    send(t + rnd.gauss(0, 0.001), ev, TelephoneEvent(rnd.randint(0, 15), j >= k - 2, 10,
                                                                   160 * min(j + 1, k - 2)).build(), j == 0)
                    seq, t = seq + 1, t + 0.02
                ts += 160 * (k - 1)
            elif r < 0.06:                                   # comfort noise, a pause, marker
                send(t, 13, b"\x40")
                gap = rnd.randint(2, 10)
                seq, ts, t = seq + 1, ts + 160 * gap, t + 0.02 * gap
                send(t, 0, marker=True)
            elif r < 0.07:                                   # duplicated
                send(t + jit, 0)
                send(t + jit + 0.001, 0)
            elif r < 0.08 and i > 5:                         # reordered (arrives late)
                send(t + 0.045, 0)
            elif r < 0.085:                                  # SSRC change
                ssrc = rnd.getrandbits(32)
                send(t + jit, 0)
            elif r < 0.09:                                   # unnamed PT, timestamp in the past
                send(t + jit, rnd.choice([96, 0]), ts_=ts - rnd.choice([0, 320, 10**6]))
            elif r < 0.095:                                  # sequence jump
                seq += rnd.choice([-3, 500, 40000])
                send(t + jit, 0)
            else:
                send(t + jit, 0, marker=i == 0 or r > 0.995)
            seq, ts, t = seq + 1, ts + 160, t + 0.02
    return cb.write(path)


@pytest.mark.parametrize("seed", range(8))
def test_impaired_streams_found_from_sdp_match_tshark(tmp_path, seed):
    assert_same_as_tshark(impaired_call(seed, str(tmp_path / "call.pcap")))


@pytest.mark.parametrize("seed", range(2))
def test_streams_without_sdp_match_tshark_heuristics(tmp_path, seed):
    assert_same_as_tshark(impaired_call(seed, str(tmp_path / "nosdp.pcap"), with_sip=False),
                          heuristic=True)


def test_telephone_events_shift_the_jitter_of_the_next_audio_packet(tmp_path):
    """Perfectly paced audio, 5 event packets, audio again: RFC 3550 over the audio packets
    gives zero jitter, but Wireshark measures the first audio packet after the event against
    the last event packet's arrival and the last audio packet's timestamp (D = 100 ms)."""
    cb = CaptureBuilder()
    rtpmap = {0: "PCMU/8000", 101: "telephone-event/8000"}
    invite(cb, rtpmap)
    kinds = ["audio"] * 10 + ["event"] * 5 + ["audio"] * 10
    for i, kind in enumerate(kinds):
        if kind == "audio":
            pkt = RtpPacket(0, i, 160 * i, 1, b"\xff" * 160)
        else:
            pkt = RtpPacket(101, i, 160 * 10, 1, TelephoneEvent(7, i == 14, 10, 160 * (i - 9)).build(),
                            marker=i == 10)
        cb.udp(0.1 + 0.02 * i, MB, MA, pkt.build())
    path = cb.write(str(tmp_path / "event.pcap"))
    [row] = assert_same_as_tshark(path).values()
    assert row["max_jitter"] == f"{100 / 16:.3f}"     # 6.250 ms although the pacing is perfect
    assert row["max_delta"] == "20.000" and row["lost"] == 0
    [stream] = analyze_pcap(path).rtp_streams
    [event] = dtmf_events(stream)
    assert (event.digit, event.duration_ms, event.ended, event.packets) == ("7", 100.0, True, 5)


def test_lossy_jittered_streams_and_a_mean_on_a_rounding_boundary_match_tshark(tmp_path):
    """Long streams that only lose packets (the vectorised path throughout), across a sequence
    wrap, and one whose mean delta is 0.0625 ms exactly (printed 0.062 by round-half-even)."""
    rnd = random.Random(11)
    cb = CaptureBuilder()
    invite(cb, {0: "PCMU/8000"})
    for k, (src, jitter) in enumerate(((MB, 0.0), (("127.0.0.1", 20004), 0.004))):
        for i in range(3000):
            if rnd.random() > 0.01:
                at = 0.01 + 0.02 * i + abs(rnd.gauss(0, jitter)) if jitter else 0.01 + 0.02 * i
                cb.udp(at, src, MA, RtpPacket(0, (64000 + i) & 0xFFFF, 160 * i, 10 + k, bytes(160)).build())
    for i in range(400):
        packet = RtpPacket(0, i, 160 * i, 12, bytes(160))
        cb.udp(70 + 0.0000625 * i, ("127.0.0.1", 20006), MA, packet.build())
    rows = assert_same_as_tshark(cb.write(str(tmp_path / "lossy.pcap")))
    assert {row["mean_delta"] for row in rows.values()} >= {"0.062"}


def test_crafted_edge_cases_match_tshark(tmp_path):
    cb = CaptureBuilder()
    invite(cb, {0: "PCMU/8000"})
    for i in range(20):   # sequence and timestamp wrap, then an SSRC change
        packet = RtpPacket(0, (65530 + i) & 0xFFFF, (2**32 - 800 + 160 * i) & 0xFFFFFFFF, 5, bytes(160))
        cb.udp(0.02 + 0.02 * i + (0.003 if i % 3 else 0), MB, MA, packet.build())
    for i in range(10):
        cb.udp(0.5 + 0.02 * i, MB, MA, RtpPacket(0, 100 + i, 160 * i, 6, bytes(160)).build())
    for t, junk in [(0.05, b"\x80\x00\x00"), (0.06, b"\x40" + bytes(20))]:
        cb.udp(t, MB, MA, junk)
    assert len(assert_same_as_tshark(cb.write(str(tmp_path / "edge.pcap")))) == 2


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def media_pcap(path: Path) -> None:
    """440 Hz PCMU with jitter, 3 lost packets and two DTMF events ('1' and '#')."""
    rnd = random.Random(3)
    cb = CaptureBuilder()
    src, dst = ("127.0.0.1", 30000), ("127.0.0.1", 30002)
    tone = ulaw_encode((np.sin(2 * np.pi * 440 * np.arange(8000) / 8000) * 8000).astype(np.int16))
    seq, ts, t = 1000, 123456, 0.0
    for i in range(100):
        if i in (20, 55):
            for k in range(6):
                event = TelephoneEvent(1 if i == 20 else 11, k >= 4, 10, 160 * min(k + 1, 4))
                cb.udp(t, src, dst, RtpPacket(101, seq, ts, 0x5151, event.build(), marker=k == 0).build())
                seq, t = seq + 1, t + 0.02
            ts += 960
            continue
        if i not in (40, 41, 70):
            off = (i * 160) % 8000
            cb.udp(t + rnd.uniform(0, 0.004), src, dst,
                   RtpPacket(0, seq, ts, 0x5151, tone[off:off + 160], marker=i == 0).build())
        seq, ts, t = seq + 1, ts + 160, t + 0.02
    cb.write(str(path))


def test_live_capture_between_two_sipp_instances_matches_tshark(tmp_path):
    """sipp uac plays RTP (tone, loss, jitter, DTMF) to sipp uas, which echoes it back."""
    from harness.wire.capture import Capture

    sipp = require_tool("sipp")
    media_pcap(tmp_path / "media.pcap")
    uas_sip, uac_sip, uas_media, uac_media = (free_port() for _ in range(4))
    bpf = " or ".join(f"udp port {p}" for p in (uas_sip, uac_sip, uas_media, uac_media))
    path = str(tmp_path / "live.pcap")
    cap = Capture(path, bpf=bpf)
    cap.start()
    uas = subprocess.Popen([sipp, "-sn", "uas", "-rtp_echo", "-i", "127.0.0.1", "-p", str(uas_sip),
                            "-mp", str(uas_media), "-m", "1", "-nostdin"], cwd=tmp_path,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        uac = subprocess.run([sipp, f"127.0.0.1:{uas_sip}", "-sf", str(DATA / "uac_play_pcap.xml"),
                              "-i", "127.0.0.1", "-p", str(uac_sip), "-mp", str(uac_media), "-m", "1",
                              "-timeout", "20", "-nostdin"], cwd=tmp_path, stdin=subprocess.DEVNULL,
                             capture_output=True, text=True, timeout=60)
    finally:
        uas.kill()
        uas.wait()
        stats = cap.stop()
    assert uac.returncode == 0, uac.stderr[-2000:]
    assert stats.kernel_drops == 0
    table = assert_same_as_tshark(path)
    assert {row["packets"] for row in table.values()} == {107}
    assert {row["lost"] for row in table.values()} == {3}
    a = analyze_pcap(path)
    assert [m.summary for m in a.sip][:4] == ["INVITE (SDP)", "180 Ringing (INVITE)",
                                             "200 OK (INVITE) (SDP)", "ACK"]
    for stream in a.rtp_streams:
        assert [(e.digit, e.duration_ms, e.ended) for e in dtmf_events(stream)] == [
            ("1", 80.0, True), ("#", 80.0, True)]
        [tone] = segments(label_packets(stream))
        assert tone.label == "tone:440Hz" and tone.packets == 95
    events = subprocess.run([require_tool("tshark"), "-r", path, "-Y", "rtpevent", "-T", "fields",
                             "-e", "rtpevent.event_id", "-e", "rtpevent.end_of_event"],
                            capture_output=True, text=True, check=True).stdout.split("\n")
    assert {line.split("\t")[0] for line in events if line} == {"1", "11"}


def test_a_delta_on_a_rounding_boundary_rounds_as_tshark_does(tmp_path):
    """16.4465 ms between two packets 31.8 s into the capture: tshark's times are
    seconds * 1000 + nanoseconds / 1e6 in doubles, and so are ours (16.447, not 16.446)."""
    cb = CaptureBuilder()
    invite(cb, {0: "PCMU/8000"})
    times = [31.787595163, 31.807595163, 31.827595163, 31.844041663, 31.864041663]
    for i, t in enumerate(times):
        cb.udp(t, MB, MA, RtpPacket(0, i, 160 * i, 3, bytes(160)).build())
    [row] = assert_same_as_tshark(cb.write(str(tmp_path / "boundary.pcap"))).values()
    assert row["min_delta"] == "16.447"
