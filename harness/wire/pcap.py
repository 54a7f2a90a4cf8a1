"""Read UDP and TCP packets out of a pcap or pcapng file, fast; write synthetic captures.

Reading uses scapy's `RawPcapReader` and `struct` instead of dissecting each packet (about
100x faster than `rdpcap`). Link types: Ethernet (`lo` is DLT_EN10MB) with 802.1Q tags,
Linux cooked v1 and v2, raw IP and BSD loopback; IPv4 and IPv6. IP fragments, non-UDP/TCP
and truncated packets are skipped.
"""
from __future__ import annotations

import functools
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from scapy.utils import RawPcapNgReader, RawPcapReader, RawPcapWriter

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
#: Some systems write DLT_RAW's own value (12 or 14) instead of LINKTYPE_RAW.
_RAW_IP = {LINKTYPE_RAW, 12, 14, LINKTYPE_IPV4, LINKTYPE_IPV6}
_ETH_IPV4, _ETH_IPV6, _ETH_VLAN, _ETH_QINQ = 0x0800, 0x86DD, 0x8100, 0x88A8
_MAX_FRAME = 262144

Address = tuple[str, int]


class PcapError(ValueError):
    """The file is not a readable pcap or pcapng capture."""


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
class PcapContents:
    """The UDP/TCP packets of a capture file, its frame count and its first frame's time."""

    start_ns: int
    frames: int
    packets: tuple[Packet, ...]


def read_pcap(path: str) -> PcapContents:
    """Read a pcap or pcapng file; raise PcapError if it is not one."""
    try:
        reader = RawPcapReader(path)
    except Exception as exc:  # scapy raises Scapy_Exception or OSError subclasses
        raise PcapError(f"{path}: {exc}") from exc
    packets: list[Packet] = []
    start_ns, number = 0, 0
    with reader:
        pcapng = isinstance(reader, RawPcapNgReader)
        while True:
            try:
                data, meta = reader._read_packet(_MAX_FRAME)
            except EOFError:
                break
            if data is None:
                continue
            number += 1
            if pcapng:
                linktype = meta.linktype
                ts_ns = ((meta.tshigh << 32) | meta.tslow) * 1_000_000_000 // meta.tsresol
            else:
                linktype = reader.linktype
                ts_ns = meta.sec * 1_000_000_000 + meta.usec * (1 if reader.nano else 1000)
            if number == 1:
                start_ns = ts_ns
            parsed = _decode_frame(data, linktype)
            if parsed is not None:
                src, dst, transport, payload, seq, flags = parsed
                packets.append(Packet(number, ts_ns, src, dst, transport, payload, seq, flags))
    return PcapContents(start_ns, number, tuple(packets))


def _decode_frame(data: bytes, linktype: int):
    """(src, dst, transport, payload, tcp_seq, tcp_flags) of one frame, or None if not UDP/TCP."""
    try:
        ethertype, offset = _link_layer(data, linktype)
    except (struct.error, IndexError):
        return None
    if ethertype == _ETH_IPV4:
        return _ipv4(data, offset)
    if ethertype == _ETH_IPV6:
        return _ipv6(data, offset)
    return None


def _link_layer(data: bytes, linktype: int) -> tuple[int, int]:
    if linktype == LINKTYPE_ETHERNET:
        ethertype, offset = struct.unpack_from("!H", data, 12)[0], 14
        while ethertype in (_ETH_VLAN, _ETH_QINQ):
            ethertype, offset = struct.unpack_from("!H", data, offset + 2)[0], offset + 4
        return ethertype, offset
    if linktype == LINKTYPE_LINUX_SLL:
        return struct.unpack_from("!H", data, 14)[0], 16
    if linktype == LINKTYPE_LINUX_SLL2:
        return struct.unpack_from("!H", data, 0)[0], 20
    if linktype in _RAW_IP:
        return (_ETH_IPV6 if data[0] >> 4 == 6 else _ETH_IPV4), 0
    if linktype == LINKTYPE_NULL:
        family = struct.unpack_from("=I", data, 0)[0]
        return (_ETH_IPV4 if family == 2 else _ETH_IPV6 if family in (10, 24, 28, 30) else 0), 4
    return 0, 0


def _ipv4(data: bytes, off: int):
    if len(data) < off + 20 or data[off] >> 4 != 4:
        return None
    ihl = (data[off] & 0x0F) * 4
    total, frag, proto = struct.unpack_from("!H2xH1xB", data, off + 2)
    if frag & 0x3FFF:  # more-fragments flag or a fragment offset: not reassembled
        return None
    end = min(len(data), off + total) if total else len(data)
    src, dst = _ip_text(data[off + 12:off + 16]), _ip_text(data[off + 16:off + 20])
    return _transport(data[off + ihl:end], proto, src, dst)


def _ipv6(data: bytes, off: int):
    if len(data) < off + 40:
        return None
    length, proto = struct.unpack_from("!HB", data, off + 4)
    src, dst = _ip_text(data[off + 8:off + 24]), _ip_text(data[off + 24:off + 40])
    return _transport(data[off + 40:off + 40 + length], proto, src, dst)


@functools.lru_cache(maxsize=4096)
def _ip_text(raw: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)


def _transport(seg: bytes, proto: int, src: str, dst: str):
    if proto == 17 and len(seg) >= 8:
        sport, dport, length = struct.unpack_from("!HHH", seg)
        if length < 8 or length > len(seg):
            return None
        return (src, sport), (dst, dport), "udp", bytes(seg[8:length]), 0, 0
    if proto == 6 and len(seg) >= 20:
        sport, dport, seq, _ack, off_flags = struct.unpack_from("!HHIIH", seg)
        header = (off_flags >> 12) * 4
        if header < 20 or header > len(seg):
            return None
        return (src, sport), (dst, dport), "tcp", bytes(seg[header:]), seq, off_flags & 0x1FF
    return None


def write_pcap(path: str, frames: Iterable[tuple[int, bytes]],
               linktype: int = LINKTYPE_ETHERNET) -> int:
    """Write (ts_ns, frame bytes) pairs to a nanosecond pcap; return the number written."""
    writer = RawPcapWriter(path, nano=True, snaplen=_MAX_FRAME)
    writer.linktype = linktype  # set directly: the constructor ignores linktype 0 (NULL)
    writer.write_header(None)
    count = 0
    with writer:
        for ts_ns, frame in frames:
            sec, nsec = divmod(ts_ns, 1_000_000_000)
            writer.write_packet(frame, sec=sec, usec=nsec)
            count += 1
    return count
