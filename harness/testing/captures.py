"""Build synthetic captures with chosen packet times, and compare stream tables with tshark's.

Frames are Ethernet/IPv4 as on `lo` (UDP built with struct, TCP with scapy);
`CaptureBuilder.write` stores them in a nanosecond pcap. `tshark_stream_table` reads what
`tshark -q -z rtp,streams` prints and `stream_table` formats our streams the same way, for
the tests and the benchmark.
"""
from __future__ import annotations

import re
import socket
import struct
import zlib
from collections.abc import Iterable

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from harness.wire.packets import Address
from harness.wire.pcap import write_pcap
from harness.wire.rtp_streams import RtpStream

_TSHARK_ROW = re.compile(
    r"^\s*[\d.]+\s+[\d.]+\s+(\S+)\s+(\d+)\s+(\S+)\s+(\d+)\s+0x([0-9A-Fa-f]+)\s+.*?\s+(\d+)\s+"
    r"(-?\d+) \(-?[\d.]+%\)\s+(-?[\d.]+)\s+(-?[\d.]+)\s+(-?[\d.]+)\s+(-?[\d.]+)\s+(-?[\d.]+)"
    r"\s+(-?[\d.]+)\s*(X?)\s*$")
_NO_MAC = "00:00:00:00:00:00"
STREAM_FIELDS = ("packets", "lost", "min_delta", "mean_delta", "max_delta", "min_jitter",
                 "mean_jitter", "max_jitter", "problem")


def sdp_body(address: str, port: int, rtpmap: dict[int, str], session_id: int = 1) -> bytes:
    """An SDP offer/answer with one audio stream; `rtpmap` is {pt: "PCMU/8000", ...}."""
    lines = ["v=0", f"o=- {session_id} {session_id} IN IP4 {address}", "s=-",
             f"c=IN IP4 {address}", "t=0 0",
             f"m=audio {port} RTP/AVP {' '.join(str(pt) for pt in rtpmap)}"]
    lines += [f"a=rtpmap:{pt} {enc}" for pt, enc in rtpmap.items()]
    return ("\r\n".join(lines) + "\r\n").encode()


def sip_message(start_line: str, call_id: str, cseq: str, src: Address, body: bytes = b"",
                content_type: str = "application/sdp") -> bytes:
    """A minimal well-formed SIP message (Via, From, To, Call-ID, CSeq, Contact)."""
    branch = f"z9hG4bK{zlib.crc32((call_id + cseq).encode())}"
    head = [start_line, f"Via: SIP/2.0/UDP {src[0]}:{src[1]};branch={branch}",
            "From: <sip:caller@127.0.0.1>;tag=a1", "To: <sip:callee@127.0.0.1>",
            f"Call-ID: {call_id}", f"CSeq: {cseq}", f"Contact: <sip:{src[0]}:{src[1]}>"]
    if body:
        head.append(f"Content-Type: {content_type}")
    head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def udp_frame(src: Address, dst: Address, payload: bytes) -> bytes:
    """An Ethernet/IPv4/UDP frame as on `lo` (zero MAC addresses, no UDP checksum)."""
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28 + len(payload), 0, 0x4000, 64, 17, 0,
                               socket.inet_aton(src[0]), socket.inet_aton(dst[0])))
    total = sum(struct.unpack("!10H", ip))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    ip[10:12] = struct.pack("!H", ~total & 0xFFFF)
    return (bytes(12) + b"\x08\x00" + bytes(ip)
            + struct.pack("!HHHH", src[1], dst[1], 8 + len(payload), 0) + payload)


class CaptureBuilder:
    """Collects frames with times (seconds from t0) and writes them as a pcap."""

    def __init__(self, t0_ns: int = 1_700_000_000_000_000_000):
        self.t0_ns = t0_ns
        self.frames: list[tuple[int, bytes]] = []
        self._tcp_seq: dict[tuple[Address, Address], int] = {}

    def udp(self, t: float, src: Address, dst: Address, payload: bytes) -> None:
        """Add one UDP datagram at t seconds."""
        self.frames.append((self.t0_ns + round(t * 1e9), udp_frame(src, dst, payload)))

    def tcp(self, t: float, src: Address, dst: Address, data: bytes, segment: int = 1400,
            gap: float = 0.0005) -> None:
        """Add `data` on the connection src->dst in segments of `segment` bytes, `gap` s apart."""
        seq = self._tcp_seq.get((src, dst), 1000)
        for i in range(0, len(data), segment):
            chunk = data[i:i + segment]
            frame = (Ether(src=_NO_MAC, dst=_NO_MAC) / IP(src=src[0], dst=dst[0])
                     / TCP(sport=src[1], dport=dst[1], seq=seq, ack=1, flags="PA") / chunk)
            self.frames.append((self.t0_ns + round((t + gap * (i // segment)) * 1e9), bytes(frame)))
            seq += len(chunk)
        self._tcp_seq[(src, dst)] = seq

    def write(self, path: str, sort: bool = True) -> str:
        """Write the frames (in time order unless sort=False) to `path`; return the path."""
        write_pcap(path, sorted(self.frames, key=lambda f: f[0]) if sort else self.frames)
        return path


def tshark_stream_table(output: str) -> dict[tuple, dict]:
    """The rows `tshark -q -z rtp,streams` printed, by (src, sport, dst, dport, ssrc)."""
    table = {}
    for line in output.splitlines():
        m = _TSHARK_ROW.match(line)
        if m:
            g = m.groups()
            table[(g[0], int(g[1]), g[2], int(g[3]), int(g[4], 16))] = dict(
                zip(STREAM_FIELDS, (int(g[5]), int(g[6]), *g[7:13], g[13] == "X")))
    return table


def stream_table(streams: Iterable[RtpStream]) -> dict[tuple, dict]:
    """Our streams' statistics with tshark's precision (-1.000 where it has no minimum)."""
    def ms(x):
        return "-1.000" if x is None else f"{x:.3f}"
    table = {}
    for s in streams:
        st = s.stats
        table[(*s.src, *s.dst, s.ssrc)] = dict(zip(STREAM_FIELDS, (
            st.packets, st.lost, ms(st.min_delta_ms), ms(st.mean_delta_ms), ms(st.max_delta_ms),
            ms(st.min_jitter_ms), ms(st.mean_jitter_ms), ms(st.max_jitter_ms), st.problem)))
    return table
