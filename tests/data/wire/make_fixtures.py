"""Make the small captures of tests/data/wire/, one per kind of input real captures have.

    .venv/bin/python tests/data/wire/make_fixtures.py

The same call (INVITE with SDP, 100, 180, 200 with SDP, ACK, two PCMU streams of 2 s with a
little loss and jitter, the digit 5 in RFC 4733, RTCP sender and receiver reports with
LSR/DLSR and an XR, BYE, 200) is written on every link type and in both IP versions;
the callee's stream carries espeak-ng speech ("thank you for calling"). Further files hold
an INVITE fragmented over IPv4 and a 200 OK fragmented over IPv6, SIP over TCP in segments,
SIP on ports no dissector expects, RTP without SDP in many payload types, G.722, an ICMP port
unreachable after an INVITE, a capture cut short, and conversions made by Wireshark's own
tools (editcap -F, tshark -F, mergecap of two link types into a pcapng with two interfaces).
Frames are built with scapy; times are fixed, so the files come out the same every time.
"""
from __future__ import annotations

import random
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror, UDPerror, fragment
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment
from scapy.layers.l2 import CookedLinux, CookedLinuxV2, Dot1Q, Ether, Loopback
from scapy.packet import Raw

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))
from harness.media.g711 import ulaw_encode  # noqa: E402
from harness.media.rtcp import (ExtendedReport, ReceiverReport, ReportBlock, SenderReport,  # noqa: E402
                                SourceDescription, VoipMetrics, build_compound, ntp_middle,
                                ntp_timestamp)
from harness.media.rtp import RtpPacket, TelephoneEvent  # noqa: E402
from harness.media.sources import read_wav  # noqa: E402
from harness.wire.pcap import write_pcap  # noqa: E402

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
LINKTYPES = {"ethernet": 1, "null": 0, "raw": 101, "sll": 113, "sll2": 276}
SPOKEN = "thank you for calling"


def sdp(ip: str, port: int, pts: dict[int, str], v6: bool = False, extra: list[str] = ()) -> bytes:
    family = "IP6" if v6 else "IP4"
    lines = ["v=0", f"o=- 4242 1 IN {family} {ip}", "s=-", f"c=IN {family} {ip}", "t=0 0",
             f"m=audio {port} RTP/AVP {' '.join(map(str, pts))}"]
    lines += [f"a=rtpmap:{pt} {enc}" for pt, enc in pts.items()] + list(extra) + ["a=sendrecv"]
    return ("\r\n".join(lines) + "\r\n").encode()


def sip(start: str, call_id: str, cseq: str, src, dst, body: bytes = b"", to_tag: str = "") -> bytes:
    host = f"[{src[0]}]" if ":" in src[0] else src[0]
    peer = f"[{dst[0]}]" if ":" in dst[0] else dst[0]
    head = [start, f"Via: SIP/2.0/UDP {host}:{src[1]};branch=z9hG4bK{zlib.crc32((call_id + cseq).encode())}",
            "Max-Forwards: 70", f"From: <sip:+14255550199@{host}>;tag=caller1",
            f"To: <sip:+14345550101@{peer}>" + (f";tag={to_tag}" if to_tag else ""),
            f"Call-ID: {call_id}", f"CSeq: {cseq}", f"Contact: <sip:{host}:{src[1]}>",
            "User-Agent: sip-harness fixtures"]
    if body:
        head.append("Content-Type: application/sdp")
    head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def speech_frames() -> list[bytes]:
    wav = subprocess.run(["espeak-ng", "--stdout", "-v", "en-us+f3"], input=SPOKEN.encode(),
                         capture_output=True, check=True).stdout
    pcm = read_wav(wav)
    pcm = np.concatenate([np.zeros(1600, np.int16), pcm, np.zeros(1600, np.int16)])
    return [ulaw_encode(pcm[i:i + 160].astype(np.int16)) for i in range(0, len(pcm) - 159, 160)]


def tone_frames(n: int, hz: float = 440.0) -> list[bytes]:
    pcm = (np.sin(2 * np.pi * hz * np.arange(160 * n) / 8000) * 6000).astype(np.int16)
    return [ulaw_encode(pcm[160 * i:160 * i + 160]) for i in range(n)]


class Call:
    """The frames (time, IP packet) of one call between caller and callee."""

    def __init__(self, caller_ip: str, callee_ip: str, sip_ports=(5060, 5080), rtp_ports=(20000, 30000),
                 call_id: str = "fixture-call-1@sip-harness", seed: int = 1):
        self.v6 = ":" in caller_ip
        self.caller, self.callee = (caller_ip, sip_ports[0]), (callee_ip, sip_ports[1])
        self.caller_rtp, self.callee_rtp = (caller_ip, rtp_ports[0]), (callee_ip, rtp_ports[1])
        self.call_id, self.rnd = call_id, random.Random(seed)
        self.items: list[tuple[float, object]] = []

    def ip(self, src, dst, payload, transport=UDP):
        layer = (IPv6(src=src[0], dst=dst[0]) if self.v6 else IP(src=src[0], dst=dst[0], id=len(self.items) + 1))
        return layer / transport(sport=src[1], dport=dst[1]) / Raw(payload)

    def add(self, t: float, src, dst, payload: bytes) -> None:
        self.items.append((t, self.ip(src, dst, payload)))

    def signalling(self, pts=None, end: float = 2.6) -> None:
        pts = pts or {0: "PCMU/8000", 8: "PCMA/8000", 101: "telephone-event/8000"}
        invite = f"INVITE sip:+14345550101@{self.callee[0] if not self.v6 else '[' + self.callee[0] + ']'} SIP/2.0"
        self.add(0.000, self.caller, self.callee, sip(invite, self.call_id, "1 INVITE", self.caller, self.callee,
                                                      sdp(*self.caller_rtp, pts, self.v6)))
        self.add(0.002, self.callee, self.caller, sip("SIP/2.0 100 Trying", self.call_id, "1 INVITE",
                                                      self.callee, self.caller))
        self.add(0.020, self.callee, self.caller, sip("SIP/2.0 180 Ringing", self.call_id, "1 INVITE",
                                                      self.callee, self.caller, to_tag="callee1"))
        self.add(0.100, self.callee, self.caller, sip("SIP/2.0 200 OK", self.call_id, "1 INVITE",
                                                      self.callee, self.caller,
                                                      sdp(*self.callee_rtp, pts, self.v6), "callee1"))
        self.add(0.104, self.caller, self.callee, sip("ACK sip:+14345550101@x SIP/2.0", self.call_id, "1 ACK",
                                                      self.caller, self.callee, to_tag="callee1"))
        self.add(end, self.caller, self.callee, sip("BYE sip:+14345550101@x SIP/2.0", self.call_id, "2 BYE",
                                                    self.caller, self.callee, to_tag="callee1"))
        self.add(end + 0.003, self.callee, self.caller, sip("SIP/2.0 200 OK", self.call_id, "2 BYE",
                                                            self.callee, self.caller, to_tag="callee1"))

    def media(self, seconds: float = 2.0, caller_frames=None, callee_frames=None, lost=(31, 32, 77),
              rtcp: bool = True) -> None:
        n = int(seconds / 0.02)
        caller_frames = caller_frames or tone_frames(n)
        callee_frames = callee_frames or speech_frames()
        sent = {}
        for name, src, dst, frames, ssrc, seq0, ts0, dt in (
                ("caller", self.caller_rtp, self.callee_rtp, caller_frames, 0x1A2B3C4D, 1000, 160000, 0.110),
                ("callee", self.callee_rtp, self.caller_rtp, callee_frames, 0x5E6F7081, 64000, 4000, 0.112)):
            for i in range(min(n, len(frames)) if name == "caller" else len(frames)):
                t = dt + 0.02 * i + (abs(self.rnd.gauss(0, 0.002)) if name == "caller" else 0.0005 * (i % 3))
                if name == "caller" and i in lost:
                    continue
                if name == "caller" and 50 <= i < 56:  # the digit 5: six event packets
                    k = i - 50
                    payload = TelephoneEvent(5, k >= 4, 10, 160 * min(k + 1, 4)).build()
                    packet = RtpPacket(101, (seq0 + i) & 0xFFFF, ts0 + 160 * 50, ssrc, payload, marker=k == 0)
                else:
                    packet = RtpPacket(0, (seq0 + i) & 0xFFFF, (ts0 + 160 * i) & 0xFFFFFFFF, ssrc, frames[i],
                                       marker=i == 0)
                self.add(t, src, dst, packet.build())
            sent[name] = (ssrc, src)
        if rtcp:
            self._rtcp(sent)

    def _rtcp(self, sent) -> None:
        """Each side sends an SR at 1.0 s; the callee's second report answers the caller's SR
        (LSR/DLSR), and an XR carries VoIP metrics with RRTR/DLRR."""
        (a_ssrc, a_src), (b_ssrc, b_src) = sent["caller"], sent["callee"]
        a_rtcp, b_rtcp = (a_src[0], a_src[1] + 1), (b_src[0], b_src[1] + 1)
        sr_a_time = T0 + 1.0
        sr_a = SenderReport(a_ssrc, ntp_timestamp(sr_a_time), 160000 + 8000, 45, 45 * 160, (
            ReportBlock(b_ssrc, 0, 0, 64000 + 44, 12),))
        self.add(1.0, a_rtcp, b_rtcp, build_compound([sr_a, SourceDescription(((a_ssrc, ((1, b"caller@fixture"),)),))]))
        # the callee holds the caller's SR for 37.5 ms (DLSR 2457.6 -> 2458/65536 s), the path takes 4 ms each way
        dlsr = round(0.0375 * 65536)
        block = ReportBlock(a_ssrc, 5, 3, 1000 + 99, 37, ntp_middle(sr_a.ntp_timestamp), dlsr)
        sr_b = SenderReport(b_ssrc, ntp_timestamp(T0 + 1.0415), 4000 + 7000, 46, 46 * 160, (block,))
        self.add(1.0455, b_rtcp, a_rtcp,  # 4 ms after the callee sent it: 45.5 ms after the SR
                 build_compound([sr_b, SourceDescription(((b_ssrc, ((1, b"callee@fixture"),)),))]))
        rrtr_time = T0 + 1.8
        xr_a = ExtendedReport(a_ssrc, (("rrtr", ntp_timestamp(rrtr_time)),))
        self.add(1.8, a_rtcp, b_rtcp, build_compound([ReceiverReport(a_ssrc, (ReportBlock(b_ssrc, 0, 0, 64000 + 80, 9),)), xr_a]))
        voip = VoipMetrics(a_ssrc, 8, 0, 30, 0, 60, 1800, 50, 40, -18, -70, 127, 16, 88, 127, 42, 43, 0, 40, 60, 80)
        dlrr = round(0.0125 * 65536)
        xr_b = ExtendedReport(b_ssrc, (("dlrr", ((a_ssrc, ntp_middle(xr_a.blocks[0][1]), dlrr),)), ("voip", voip)))
        self.add(1.8 + 0.0125 + 0.008, b_rtcp, a_rtcp,
                 build_compound([ReceiverReport(b_ssrc, (ReportBlock(a_ssrc, 2, 3, 1000 + 89, 40),)), xr_b]))

    def frames(self):
        return sorted(self.items, key=lambda item: item[0])


def wrap(kind: str, packet) -> bytes:
    v6 = isinstance(packet, IPv6)
    if kind == "ethernet":
        return bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / packet)
    if kind == "vlan":
        return bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / Dot1Q(vlan=42) / packet)
    if kind == "sll":
        return bytes(CookedLinux(pkttype=0, lladdrtype=1, lladdrlen=6, proto=0x86DD if v6 else 0x0800) / packet)
    if kind == "sll2":
        return bytes(CookedLinuxV2(proto=0x86DD if v6 else 0x0800, ifindex=3, lladdrtype=1,
                                   lladdrlen=6) / packet)
    if kind == "null":
        return bytes(Loopback(type=24 if v6 else 2) / packet)
    return bytes(packet)


def write(name: str, items, kind: str = "ethernet") -> Path:
    path = HERE / name
    linktype = LINKTYPES.get(kind, 1)
    write_pcap(str(path), [(int(T0) * 1_000_000_000 + round(t * 1e9), wrap(kind, p)) for t, p in items],
               linktype=linktype)
    return path


def main() -> None:
    base = Call("192.0.2.10", "198.51.100.20")
    base.signalling()
    base.media()
    ethernet = write("call-ethernet.pcap", base.frames())
    for kind in ("vlan", "sll", "sll2", "null", "raw"):
        write(f"call-{kind}.pcap", base.frames(), kind)
    v6 = Call("2001:db8::10", "2001:db8::20", seed=2)
    v6.signalling()
    v6.media()
    write("call-ipv6.pcap", v6.frames())
    # pcapng with two interfaces: SIP seen on Ethernet, media on a Linux cooked interface
    sip_only = [(t, p) for t, p in base.frames() if p[UDP].sport in (5060, 5080)]
    media_only = [(t, p) for t, p in base.frames() if p[UDP].sport not in (5060, 5080)]
    a, b = write("tmp-sip.pcap", sip_only), write("tmp-media.pcap", media_only, "sll")
    subprocess.run(["mergecap", "-F", "pcapng", "-w", str(HERE / "call-two-interfaces.pcapng"), str(a), str(b)],
                   check=True)
    a.unlink()
    b.unlink()
    subprocess.run(["editcap", "-F", "pcap", str(ethernet), str(HERE / "call-editcap-usec.pcap")], check=True)
    subprocess.run(["tshark", "-r", str(ethernet), "-F", "pcapng", "-w", str(HERE / "call-tshark.pcapng")],
                   check=True, capture_output=True)
    data = ethernet.read_bytes()
    (HERE / "call-truncated.pcap").write_bytes(data[:len(data) * 2 // 3 + 37])
    (HERE / "not-a-capture.pcap").write_bytes(b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n this is an SDP body, not a capture\n")
    fragments()
    tcp()
    any_port()
    no_sdp()
    g722()
    icmp()


def fragments() -> None:
    """An INVITE whose SDP offers many codecs, fragmented over IPv4 (MTU 576), and a 200 OK
    fragmented over IPv6 (two fragments sent in reverse order)."""
    call = Call("192.0.2.10", "198.51.100.20", call_id="fragmented@sip-harness", seed=3)
    extra = [f"a=fmtp:{96 + k} mode-set=0,1,2,3,4,5,6,7;octet-align=1;robust-sorting=0" for k in range(20)]
    pts = {0: "PCMU/8000", 101: "telephone-event/8000", **{96 + k: "AMR/8000" for k in range(5)}}
    body = sdp(*call.caller_rtp, pts, extra=extra)
    invite = sip("INVITE sip:+14345550101@198.51.100.20 SIP/2.0", call.call_id, "1 INVITE", call.caller,
                 call.callee, body)
    items = []
    for k, piece in enumerate(fragment(IP(src=call.caller[0], dst=call.callee[0], id=777) / UDP(
            sport=call.caller[1], dport=call.callee[1]) / Raw(invite), fragsize=552)):
        items.append((0.0001 * k, piece))
    ok = sip("SIP/2.0 200 OK", call.call_id, "1 INVITE", call.callee, call.caller,
             sdp(*call.callee_rtp, {0: "PCMU/8000"}), "callee1")
    call.add(0.05, call.callee, call.caller, ok)
    call.add(0.06, call.caller, call.callee, sip("ACK sip:x SIP/2.0", call.call_id, "1 ACK", call.caller, call.callee))
    call.media(seconds=1.0, callee_frames=tone_frames(50, 1000), rtcp=False)
    v6 = Call("2001:db8::10", "2001:db8::20", call_id="fragmented-v6@sip-harness", seed=4)
    big = sdp(*v6.callee_rtp, {0: "PCMU/8000"}, True, extra=extra)
    v6_ok = sip("SIP/2.0 200 OK", v6.call_id, "1 INVITE", v6.callee, v6.caller, big, "callee1")
    v6.add(1.50, v6.caller, v6.callee, sip("INVITE sip:x SIP/2.0", v6.call_id, "1 INVITE", v6.caller, v6.callee,
                                           sdp(*v6.caller_rtp, {0: "PCMU/8000"}, True)))
    whole = bytes(UDP(sport=v6.callee[1], dport=v6.caller[1]) / Raw(v6_ok))
    whole = bytes(IPv6(src=v6.callee[0], dst=v6.caller[0], nh=17) / Raw(whole))[40:]  # UDP with its checksum
    cut = 1232
    first = IPv6(src=v6.callee[0], dst=v6.caller[0]) / IPv6ExtHdrFragment(nh=17, offset=0, m=1, id=99) / Raw(whole[:cut])
    second = IPv6(src=v6.callee[0], dst=v6.caller[0]) / IPv6ExtHdrFragment(nh=17, offset=cut // 8, m=0, id=99) \
        / Raw(whole[cut:])
    items += [(1.52, second), (1.5201, first)]
    write("fragments.pcap", sorted(call.items + v6.items + items, key=lambda i: i[0]))


def tcp() -> None:
    """SIP over TCP: the INVITE in three segments (one retransmitted), the 100 and 200 OK in
    one segment, then ACK, BYE, 200; the media over UDP."""
    call = Call("192.0.2.10", "198.51.100.20", call_id="tcp@sip-harness", seed=5)
    a, b = call.caller, call.callee
    invite = sip("INVITE sip:+14345550101@198.51.100.20;transport=tcp SIP/2.0", call.call_id, "1 INVITE", a, b,
                 sdp(*call.caller_rtp, {0: "PCMU/8000", 101: "telephone-event/8000"})).replace(b"UDP", b"TCP")
    trying = sip("SIP/2.0 100 Trying", call.call_id, "1 INVITE", b, a).replace(b"UDP", b"TCP")
    ok = sip("SIP/2.0 200 OK", call.call_id, "1 INVITE", b, a, sdp(*call.callee_rtp, {0: "PCMU/8000",
                                                                                       101: "telephone-event/8000"}),
             "callee1").replace(b"UDP", b"TCP")
    ack = sip("ACK sip:x SIP/2.0", call.call_id, "1 ACK", a, b, to_tag="callee1").replace(b"UDP", b"TCP")
    bye = sip("BYE sip:x SIP/2.0", call.call_id, "2 BYE", a, b, to_tag="callee1").replace(b"UDP", b"TCP")
    bye_ok = sip("SIP/2.0 200 OK", call.call_id, "2 BYE", b, a, to_tag="callee1").replace(b"UDP", b"TCP")
    seq = {a: 1000, b: 5000}
    items = [(0.0, IP(src=a[0], dst=b[0]) / TCP(sport=a[1], dport=b[1], flags="S", seq=999)),
             (0.001, IP(src=b[0], dst=a[0]) / TCP(sport=b[1], dport=a[1], flags="SA", seq=4999, ack=1000)),
             (0.002, IP(src=a[0], dst=b[0]) / TCP(sport=a[1], dport=b[1], flags="A", seq=1000, ack=5000))]

    def send(t: float, src, dst, data: bytes, pieces: int = 1, again: int | None = None) -> None:
        size = -(-len(data) // pieces)
        for k in range(pieces):
            chunk = data[k * size:(k + 1) * size]
            frame = IP(src=src[0], dst=dst[0]) / TCP(sport=src[1], dport=dst[1], flags="PA", seq=seq[src],
                                                     ack=seq[dst]) / Raw(chunk)
            items.append((t + 0.0005 * k, frame))
            if again == k:
                items.append((t + 0.0005 * k + 0.0002, frame.copy()))
            seq[src] += len(chunk)
    send(0.01, a, b, invite, pieces=3, again=1)
    send(0.05, b, a, trying + ok)
    send(0.06, a, b, ack)
    call.media(seconds=1.0, callee_frames=tone_frames(50, 600), rtcp=False)
    send(1.3, a, b, bye)
    send(1.31, b, a, bye_ok)
    write("sip-tcp.pcap", sorted(call.items + items, key=lambda i: i[0]))


def any_port() -> None:
    """SIP between ports 15060 and 7070, media on 40000/40002."""
    call = Call("203.0.113.5", "203.0.113.6", sip_ports=(15060, 7070), rtp_ports=(40000, 40002),
                call_id="any-port@sip-harness", seed=6)
    call.signalling(end=1.3)
    call.media(seconds=1.0, callee_frames=tone_frames(50, 800), rtcp=False)
    write("sip-any-port.pcap", call.frames(), "sll")


def no_sdp() -> None:
    """RTP without any SIP: six streams in payload types 0, 8, 3 (GSM), 18 (G.729), 9 (G.722)
    and 96 (dynamic), with some loss."""
    rnd = random.Random(7)
    items = []
    for k, (pt, size) in enumerate(((0, 160), (8, 160), (3, 33), (18, 20), (9, 160), (96, 61))):
        src, dst = ("10.20.0.1", 16100 + 2 * k), ("10.20.0.2", 36100 + 2 * k)
        for i in range(60):
            if rnd.random() < 0.03:
                continue
            payload = bytes(rnd.getrandbits(8) for _ in range(size)) if pt not in (0, 8) else \
                (b"\xff" if pt == 0 else b"\xd5") * size
            packet = RtpPacket(pt, (100 * k + i) & 0xFFFF, 160 * i, 0xC0DE0000 + k, payload)
            items.append((0.003 * k + 0.02 * i + rnd.uniform(0, 0.003),
                          IP(src=src[0], dst=dst[0]) / UDP(sport=src[1], dport=dst[1]) / Raw(packet.build())))
    write("rtp-no-sdp.pcap", sorted(items, key=lambda i: i[0]), "raw")


def g722() -> None:
    """A call offering G722/8000 whose streams carry a 1 kHz tone and a 3 kHz tone, G.722-coded."""
    import G722
    call = Call("192.0.2.30", "192.0.2.40", call_id="g722@sip-harness", seed=8)
    call.signalling(pts={9: "G722/8000"}, end=1.3)

    def coded(hz: float) -> list[bytes]:
        pcm = (np.sin(2 * np.pi * hz * np.arange(16000) / 16000) * 8000).astype(np.int16)
        encoded = G722.G722(16000, 64000).encode(pcm)
        return [encoded[i:i + 160] for i in range(0, len(encoded), 160)]
    for src, dst, frames, ssrc, dt in ((call.caller_rtp, call.callee_rtp, coded(1000), 0x722A, 0.11),
                                       (call.callee_rtp, call.caller_rtp, coded(3000), 0x722B, 0.112)):
        for i, payload in enumerate(frames):
            call.add(dt + 0.02 * i, src, dst, RtpPacket(9, i, 160 * i, ssrc, payload, marker=i == 0).build())
    write("g722.pcap", call.frames())


def icmp() -> None:
    """An INVITE to a port nobody listens on: the host answers ICMP port unreachable (quoting
    the IP header and the first 548 bytes of the datagram, as Linux does), twice."""
    call = Call("192.0.2.10", "198.51.100.20", call_id="unreachable@sip-harness", seed=9)
    invite = sip("INVITE sip:+14345550101@198.51.100.20 SIP/2.0", call.call_id, "1 INVITE", call.caller, call.callee,
                 sdp(*call.caller_rtp, {0: "PCMU/8000"}))
    items = []
    for k, t in enumerate((0.0, 0.5)):
        datagram = IP(src=call.caller[0], dst=call.callee[0], id=50 + k) / UDP(
            sport=call.caller[1], dport=call.callee[1]) / Raw(invite)
        items.append((t, datagram))
        quoted = bytes(datagram)[:576 - 28]
        items.append((t + 0.0003, IP(src=call.callee[0], dst=call.caller[0]) / ICMP(type=3, code=3)
                      / IPerror(quoted[:20]) / UDPerror(quoted[20:28]) / Raw(quoted[28:])))
    write("icmp-unreachable.pcap", items)


if __name__ == "__main__":
    main()
