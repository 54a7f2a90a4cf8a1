"""Build synthetic captures with chosen packet times, for tests of the wire analysis.

Frames are Ethernet/IPv4 built with scapy, as on `lo`; `CaptureBuilder.write` stores them in a
nanosecond pcap.
"""
from __future__ import annotations

import zlib

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

from harness.wire.pcap import Address, write_pcap


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


class CaptureBuilder:
    """Collects frames with times (seconds from t0) and writes them as a pcap."""

    def __init__(self, t0_ns: int = 1_700_000_000_000_000_000):
        self.t0_ns = t0_ns
        self.frames: list[tuple[int, bytes]] = []
        self._tcp_seq: dict[tuple[Address, Address], int] = {}

    def udp(self, t: float, src: Address, dst: Address, payload: bytes) -> None:
        """Add one UDP datagram at t seconds."""
        frame = Ether() / IP(src=src[0], dst=dst[0]) / UDP(sport=src[1], dport=dst[1]) / payload
        self.frames.append((self.t0_ns + round(t * 1e9), bytes(frame)))

    def tcp(self, t: float, src: Address, dst: Address, data: bytes, segment: int = 1400,
            gap: float = 0.0005) -> None:
        """Add `data` on the connection src->dst in segments of `segment` bytes, `gap` s apart."""
        seq = self._tcp_seq.get((src, dst), 1000)
        for i in range(0, len(data), segment):
            chunk = data[i:i + segment]
            frame = (Ether() / IP(src=src[0], dst=dst[0])
                     / TCP(sport=src[1], dport=dst[1], seq=seq, ack=1, flags="PA") / chunk)
            self.frames.append((self.t0_ns + round((t + gap * (i // segment)) * 1e9), bytes(frame)))
            seq += len(chunk)
        self._tcp_seq[(src, dst)] = seq

    def write(self, path: str, sort: bool = True) -> str:
        """Write the frames (in time order unless sort=False) to `path`; return the path."""
        write_pcap(path, sorted(self.frames, key=lambda f: f[0]) if sort else self.frames)
        return path
