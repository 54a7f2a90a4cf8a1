"""UDP and TCP packets of a capture, and the decoding of any one frame's headers.

`decode_frame` is the general decoder: link types Ethernet (`lo` is DLT_EN10MB) with 802.1Q
tags, Linux cooked v1 and v2, raw IP and BSD loopback; IPv4 (with options) and IPv6 (with
extension headers). It finds a UDP datagram, a TCP segment, an ICMP or ICMPv6 message, or an
IP fragment (reassembled by `fragments`); other protocols and truncated packets are skipped.
`datagrams` decodes the common case for a whole capture at once and hands every other frame
to it.
"""
from __future__ import annotations

import functools
import socket
import struct
from dataclasses import dataclass

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
#: Some systems write DLT_RAW's own value (12 or 14) instead of LINKTYPE_RAW.
RAW_IP_LINKTYPES = (LINKTYPE_RAW, 12, 14, LINKTYPE_IPV4, LINKTYPE_IPV6)
ETH_IPV4, ETH_IPV6, ETH_VLAN, ETH_QINQ = 0x0800, 0x86DD, 0x8100, 0x88A8
UDP, TCP, ICMP, ICMPV6 = 17, 6, 1, 58
#: IPv6 extension headers walked over (hop-by-hop, routing, destination options); 44 is the
#: fragment header
_IPV6_EXTENSIONS = (0, 43, 60)
_IPV6_FRAGMENT = 44

Address = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Packet:
    """A UDP datagram or TCP segment from a capture; `number` is 1-based as in Wireshark."""

    number: int
    ts_ns: int
    src: Address
    dst: Address
    transport: str
    payload: bytes
    tcp_seq: int = 0
    tcp_flags: int = 0

    @property
    def time(self) -> float:
        """Capture time in seconds since the epoch."""
        return self.ts_ns / 1e9


@dataclass(frozen=True, slots=True)
class DecodedFrame:
    """What `decode_frame` finds: the payload is frame[payload_start:payload_end]."""

    src: Address
    dst: Address
    protocol: int
    payload_start: int
    payload_end: int
    tcp_seq: int = 0
    tcp_flags: int = 0


@dataclass(frozen=True, slots=True)
class IpFragment:
    """A fragment of an IP packet: `data` goes at byte `offset` of the packet's payload."""

    version: int
    src: str
    dst: str
    ident: int
    protocol: int
    offset: int
    more: bool
    data: bytes

    @property
    def key(self) -> tuple:
        """What the fragments of one packet share (RFC 791, RFC 8200)."""
        return self.version, self.src, self.dst, self.ident, self.protocol


def decode_frame(frame: bytes, linktype: int) -> DecodedFrame | IpFragment | None:
    """The UDP, TCP or ICMP packet in one frame, an IP fragment, or None if it carries none."""
    try:
        ethertype, offset = _link_layer(frame, linktype)
    except (struct.error, IndexError):
        return None
    if ethertype == ETH_IPV4:
        return _ipv4(frame, offset)
    if ethertype == ETH_IPV6:
        return _ipv6(frame, offset)
    return None


def _link_layer(data: bytes, linktype: int) -> tuple[int, int]:
    if linktype == LINKTYPE_ETHERNET:
        ethertype, offset = struct.unpack_from("!H", data, 12)[0], 14
        while ethertype in (ETH_VLAN, ETH_QINQ):
            ethertype, offset = struct.unpack_from("!H", data, offset + 2)[0], offset + 4
        return ethertype, offset
    if linktype == LINKTYPE_LINUX_SLL:
        return struct.unpack_from("!H", data, 14)[0], 16
    if linktype == LINKTYPE_LINUX_SLL2:
        return struct.unpack_from("!H", data, 0)[0], 20
    if linktype in RAW_IP_LINKTYPES:
        return (ETH_IPV6 if data[0] >> 4 == 6 else ETH_IPV4), 0
    if linktype == LINKTYPE_NULL:
        family = struct.unpack_from("=I", data, 0)[0]
        return (ETH_IPV4 if family == 2 else ETH_IPV6 if family in (10, 24, 28, 30) else 0), 4
    return 0, 0


def _ipv4(data: bytes, off: int) -> DecodedFrame | None:
    if len(data) < off + 20 or data[off] >> 4 != 4:
        return None
    ihl = (data[off] & 0x0F) * 4
    total, ident, frag, proto = struct.unpack_from("!HHH1xB", data, off + 2)
    end = min(len(data), off + total) if total else len(data)
    src, dst = ip_text(data[off + 12:off + 16]), ip_text(data[off + 16:off + 20])
    if frag & 0x3FFF:  # more-fragments flag or a fragment offset
        return IpFragment(4, src, dst, ident, proto, (frag & 0x1FFF) * 8, bool(frag & 0x2000),
                          data[off + ihl:end])
    return transport(data, off + ihl, end, proto, src, dst)


def _ipv6(data: bytes, off: int) -> DecodedFrame | None:
    if len(data) < off + 40:
        return None
    length, proto = struct.unpack_from("!HB", data, off + 4)
    src, dst = ip_text(data[off + 8:off + 24]), ip_text(data[off + 24:off + 40])
    start, end = off + 40, min(len(data), off + 40 + length)
    while proto in _IPV6_EXTENSIONS and start + 8 <= end:
        proto, size = data[start], (data[start + 1] + 1) * 8
        start += size
    if proto == _IPV6_FRAGMENT and start + 8 <= end:
        proto, frag, ident = struct.unpack_from("!B1xHI", data, start)
        return IpFragment(6, src, dst, ident, proto, frag & 0xFFF8, bool(frag & 1),
                          data[start + 8:end])
    return transport(data, start, end, proto, src, dst)


@functools.lru_cache(maxsize=4096)
def ip_text(raw: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)


def transport(data: bytes, start: int, end: int, proto: int, src: str,
              dst: str) -> DecodedFrame | None:
    """The UDP, TCP or ICMP packet in data[start:end] of an IP packet from `src` to `dst`."""
    size = end - start
    if proto in (ICMP, ICMPV6) and size >= 8:
        return DecodedFrame((src, 0), (dst, 0), proto, start, end)
    if proto == UDP and size >= 8:
        sport, dport, length = struct.unpack_from("!HHH", data, start)
        if length < 8 or length > size:
            return None
        return DecodedFrame((src, sport), (dst, dport), UDP, start + 8, start + length)
    if proto == TCP and size >= 20:
        sport, dport, seq, _ack, off_flags = struct.unpack_from("!HHIIH", data, start)
        header = (off_flags >> 12) * 4
        if header < 20 or header > size:
            return None
        return DecodedFrame((src, sport), (dst, dport), TCP, start + header, end, seq,
                            off_flags & 0x1FF)
    return None
