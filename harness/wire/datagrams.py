"""A capture decoded at once: its UDP datagrams as numpy columns, its TCP segments as packets.

Frames on Ethernet, Linux cooked (v1, v2), raw-IP and BSD loopback links that carry an
unfragmented IPv4 packet without options with UDP in it are decoded vectorised from the
records' `head` matrix; every other frame that may hold UDP, TCP or ICMP (802.1Q tags, IPv6,
IP options, IP fragments, TCP, ICMP, other link types) goes through `packets.decode_frame`,
one by one. Fragments are reassembled (`fragments`); a reassembled UDP datagram belongs to
the frame that completed it, and its payload is appended to `Datagrams.data`.

An endpoint (address, port) is one int64 key: `ip_id << 16 | port`, where `ip_id` is the
IPv4 address as an unsigned 32-bit number, or 2**32 + its index in `Datagrams.addresses`
for an IPv6 address.
"""
from __future__ import annotations

import socket
from dataclasses import dataclass

import numpy as np

from harness.wire.fragments import Reassembler
from harness.wire.icmp import IcmpError, parse_icmp_error
from harness.wire.packets import (ETH_IPV4, ETH_IPV6, ETH_QINQ, ETH_VLAN, ICMP, LINKTYPE_ETHERNET,
                                  LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_NULL,
                                  RAW_IP_LINKTYPES, TCP, UDP, Address, IpFragment, Packet,
                                  decode_frame, transport)
from harness.wire.pcap_records import CaptureRecords

#: Payload bytes kept per datagram in `Datagrams.prefix`: an RTP fixed header.
PREFIX_BYTES = 12
_IPV6_BASE = 1 << 32
#: link type -> (offset of the IP header, offset and size of the field naming the protocol)
_LINKS = {LINKTYPE_ETHERNET: (14, 12, 2), LINKTYPE_LINUX_SLL: (16, 14, 2),
          LINKTYPE_LINUX_SLL2: (20, 0, 2), LINKTYPE_NULL: (4, 0, 4),
          **{lt: (0, None, 0) for lt in RAW_IP_LINKTYPES}}
_NULL_IPV6 = (10, 24, 28, 30)


@dataclass(frozen=True)
class Datagrams:
    """UDP datagrams in capture order; payload i is data[offset[i]:offset[i] + length[i]]."""

    data: bytes
    number: np.ndarray
    ts_ns: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    offset: np.ndarray
    length: np.ndarray
    #: the first PREFIX_BYTES payload bytes of each datagram, zero-padded
    prefix: np.ndarray
    #: IPv6 addresses by index (see the module docstring)
    addresses: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.number)

    def endpoint(self, key: int) -> Address:
        """The (address, port) of an endpoint key."""
        ip_id, port = key >> 16, key & 0xFFFF
        if ip_id < _IPV6_BASE:
            return socket.inet_ntoa(ip_id.to_bytes(4, "big")), port
        return self.addresses[ip_id - _IPV6_BASE], port

    def key(self, addr: Address) -> int | None:
        """The endpoint key of an (address, port) written as `endpoint` writes it; None when
        no datagram can have it."""
        ip, port = addr
        if not 0 <= port <= 0xFFFF:
            return None
        if ip in self.addresses:
            return ((_IPV6_BASE + self.addresses.index(ip)) << 16) | port
        try:
            packed = socket.inet_aton(ip)
        except OSError:
            return None
        return (int.from_bytes(packed, "big") << 16) | port if socket.inet_ntoa(packed) == ip else None

    def payload(self, i: int) -> bytes:
        start = int(self.offset[i])
        return self.data[start:start + int(self.length[i])]

    def packet(self, i: int) -> Packet:
        return Packet(int(self.number[i]), int(self.ts_ns[i]), self.endpoint(int(self.src[i])),
                      self.endpoint(int(self.dst[i])), "udp", self.payload(i))

    def text_packets(self) -> list[Packet]:
        """The datagrams whose first byte may start a text message (A-Z, CR or LF)."""
        first = self.prefix[:, 0]
        text = ((first >= 65) & (first <= 90)) | (first == 10) | (first == 13)
        return [self.packet(i) for i in np.flatnonzero(text & (self.length > 0)).tolist()]


@dataclass(frozen=True)
class DecodedCapture:
    """A capture's frame count and first frame's time, its UDP datagrams, TCP segments and
    ICMP errors, and what could not be read (see `CaptureRecords.warnings`)."""

    start_ns: int
    frames: int
    udp: Datagrams
    tcp: tuple[Packet, ...]
    icmp: tuple[IcmpError, ...] = ()
    warnings: tuple[str, ...] = ()


def decode_capture(records: CaptureRecords) -> DecodedCapture:
    """Decode every frame of a capture (see the module docstring)."""
    fast: list[dict[str, np.ndarray]] = []
    general: list[np.ndarray] = []
    first = records.linktype[:1]
    uniform = bool((records.linktype == first).all())
    for linktype in (first if uniform else np.unique(records.linktype)).tolist():
        rows = np.flatnonzero(records.linktype == linktype)
        if linktype in _LINKS:
            columns, other = _fast_udp(records, rows, *_LINKS[linktype])
            fast.append(columns)
            general.append(other)
        else:
            general.append(rows)
    addresses: dict[str, int] = {}
    slow = _General(records, addresses)
    slow_udp, tcp, icmp, extra = slow.decode(np.sort(np.concatenate(general or [np.zeros(0, np.int64)])))
    parts = [c for c in fast + [slow_udp] if len(c["row"])] or [slow_udp]
    columns = dict(parts[0])
    if len(parts) > 1:  # several link types, or frames from the general decoder: merge in order
        order = np.argsort(np.concatenate([c["row"] for c in parts]), kind="stable")
        columns = {name: np.concatenate([c[name] for c in parts])[order] for name in columns}
    rows = columns.pop("row")
    udp = Datagrams(bytes(records.data) + extra if extra else records.data, rows + 1, records.ts_ns[rows],
                    addresses=tuple(addresses), **columns)
    start = int(records.ts_ns[0]) if records.frames else 0
    warnings = list(records.warnings)
    if slow.reassembler.incomplete:
        warnings.append(f"{slow.reassembler.incomplete} fragmented IP packets were not complete "
                        f"in the capture and are left out")
    return DecodedCapture(start, records.frames, udp, tuple(tcp), tuple(icmp), tuple(warnings))


def _fast_udp(records: CaptureRecords, rows: np.ndarray, l3: int, type_at: int | None,
              type_size: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The plain IPv4/UDP datagrams among `rows` of one link type, and the rows that need
    the general decoder. Header fields are read through a big-endian 16-bit view of the
    heads (every link header here has an even length)."""
    whole = len(rows) == records.frames
    head = records.head if whole else records.head[rows]
    length = records.length if whole else records.length[rows]
    words = head.view(">u2")
    ip = l3 // 2
    version = head[:, l3] >> 4
    if type_at is None:  # raw IP
        ipv4, general = version == 4, version == 6
    elif type_size == 4:  # BSD loopback: the address family in the capturing host's order
        family = head[:, type_at:type_at + 4].copy().view("=u4")[:, 0]
        ipv4, general = family == 2, np.isin(family, _NULL_IPV6)
    else:
        ethertype = words[:, type_at // 2]
        ipv4 = ethertype == ETH_IPV4
        general = np.isin(ethertype, (ETH_IPV6, ETH_VLAN, ETH_QINQ) if type_at == 12 else (ETH_IPV6,))
    ipv4 &= (version == 4) & (length >= l3 + 20)
    options = ipv4 & ((head[:, l3] & 0x0F) != 5)
    unfragmented = (words[:, ip + 3] & 0x3FFF) == 0
    proto = head[:, l3 + 9]
    plain = ipv4 & ~options & unfragmented
    general |= (ipv4 & ~unfragmented) | (options & unfragmented) \
        | (plain & np.isin(proto, (TCP, ICMP)))
    total = words[:, ip + 1].astype(np.int64)
    end = np.where(total > 0, np.minimum(length, l3 + total), length)
    udp_len = words[:, ip + 12].astype(np.int64)
    udp = plain & (proto == UDP) & (udp_len >= 8) & (udp_len <= end - (l3 + 20))
    keep = np.flatnonzero(udp)

    def column(word: int) -> np.ndarray:
        return words[keep, ip + word].astype(np.int64)

    payload_len = udp_len[keep] - 8
    prefix = head[keep, l3 + 28:l3 + 28 + PREFIX_BYTES]
    short = np.flatnonzero(payload_len < PREFIX_BYTES)  # zero the bytes past their payload
    prefix[short] *= np.arange(PREFIX_BYTES) < payload_len[short, None]
    columns = {
        "row": rows[keep],
        "src": (column(6) << 32) | (column(7) << 16) | column(10),
        "dst": (column(8) << 32) | (column(9) << 16) | column(11),
        "offset": records.offset[rows[keep]] + l3 + 28, "length": payload_len, "prefix": prefix}
    return columns, rows[general]


class _General:
    """Decodes frames one by one: UDP columns (as `_fast_udp`), TCP packets, ICMP errors, and
    the IP packets reassembled from fragments."""

    def __init__(self, records: CaptureRecords, addresses: dict[str, int]):
        self.records, self.addresses = records, addresses
        self.reassembler = Reassembler()
        self.udp: dict[str, list] = {"row": [], "src": [], "dst": [], "offset": [], "length": []}
        self.prefixes: list[bytes] = []
        self.tcp: list[Packet] = []
        self.icmp: list[IcmpError] = []
        self.extra: list[bytes] = []  # reassembled payloads, placed after the file's bytes
        self.extra_size = 0

    def decode(self, rows: np.ndarray):
        records = self.records
        for row in rows.tolist():
            frame = records.frame(row)
            found = decode_frame(frame, int(records.linktype[row]))
            base = int(records.offset[row])
            if isinstance(found, IpFragment):
                payload = self.reassembler.add(found)
                if payload is None:
                    continue
                frame, base = payload, None
                found = transport(payload, 0, len(payload), found.protocol, found.src, found.dst)
            if found is not None:
                self._add(row, frame, base, found)
        columns = {name: np.array(values, np.int64) for name, values in self.udp.items()}
        columns["prefix"] = np.frombuffer(b"".join(self.prefixes), np.uint8).reshape(-1, PREFIX_BYTES)
        return columns, self.tcp, self.icmp, b"".join(self.extra)

    def _add(self, row: int, frame: bytes, base: int | None, found) -> None:
        """Record what frame `row` carries; `base` is where `frame` starts in the file (None:
        a reassembled payload, kept in `extra`)."""
        payload = frame[found.payload_start:found.payload_end]
        ts_ns = int(self.records.ts_ns[row])
        if found.protocol == UDP:
            if base is None:
                offset = len(self.records.data) + self.extra_size
                self.extra.append(payload)
                self.extra_size += len(payload)
            else:
                offset = base + found.payload_start
            self.udp["row"].append(row)
            self.udp["src"].append(self._key(found.src))
            self.udp["dst"].append(self._key(found.dst))
            self.udp["offset"].append(offset)
            self.udp["length"].append(len(payload))
            self.prefixes.append(payload[:PREFIX_BYTES].ljust(PREFIX_BYTES, b"\0"))
        elif found.protocol == TCP:
            self.tcp.append(Packet(row + 1, ts_ns, found.src, found.dst, "tcp", payload,
                                   found.tcp_seq, found.tcp_flags))
        else:
            error = parse_icmp_error(row + 1, ts_ns, found.src[0], found.protocol, payload)
            if error is not None:
                self.icmp.append(error)

    def _key(self, addr: Address) -> int:
        ip, port = addr
        if ":" in ip:
            ip_id = _IPV6_BASE + self.addresses.setdefault(ip, len(self.addresses))
        else:
            ip_id = int.from_bytes(socket.inet_aton(ip), "big")
        return (ip_id << 16) | port
