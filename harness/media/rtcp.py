"""RTCP packets (RFC 3550 §6): sender and receiver reports, SDES, BYE, and extended reports
(XR, RFC 3611: receiver reference time, DLRR, VoIP metrics), parsed and built as compound
packets, and the report interval of §6.3 / appendix A.7."""
from __future__ import annotations

import math
import struct
from dataclasses import dataclass

RTCP_VERSION = 2
SR, RR, SDES, BYE, XR = 200, 201, 202, 203, 207
XR_RRTR, XR_DLRR, XR_VOIP_METRICS = 4, 5, 7
SDES_CNAME = 1
_HEADER = struct.Struct("!BBH")
_BLOCK = struct.Struct("!IBBHIIII")
_SENDER_INFO = struct.Struct("!IQIII")
NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900-01-01 to 1970-01-01


class RtcpError(ValueError):
    """Raised for bytes that are not a valid RTCP compound packet."""


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """Reception statistics about one source (RFC 3550 §6.4.1)."""

    ssrc: int
    fraction_lost: int  # of 256, since the previous report
    cumulative_lost: int  # signed 24 bits
    highest_sequence: int  # extended: cycles << 16 | max sequence
    jitter: int  # in timestamp units
    last_sr: int = 0  # middle 32 bits of the NTP time of the last SR received from `ssrc`
    delay_since_last_sr: int = 0  # in 1/65536 s

    def build(self) -> bytes:
        lost = max(-(1 << 23), min(self.cumulative_lost, (1 << 23) - 1)) & 0xFFFFFF
        return _BLOCK.pack(self.ssrc, self.fraction_lost, lost >> 16, lost & 0xFFFF,
                           self.highest_sequence, self.jitter, self.last_sr,
                           self.delay_since_last_sr)

    @classmethod
    def parse(cls, data: bytes, pos: int) -> "ReportBlock":
        ssrc, fraction, lost_hi, lost_lo, highest, jitter, lsr, dlsr = _BLOCK.unpack_from(data, pos)
        lost = (lost_hi << 16) | lost_lo
        lost -= (lost & 0x800000) << 1
        return cls(ssrc, fraction, lost, highest, jitter, lsr, dlsr)


@dataclass(frozen=True, slots=True)
class SenderReport:
    """SR: what the sender sent up to `ntp_timestamp` (64-bit NTP) and its reception reports."""

    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()

    def build(self) -> bytes:
        body = _SENDER_INFO.pack(self.ssrc, self.ntp_timestamp, self.rtp_timestamp & 0xFFFFFFFF,
                                 self.packet_count & 0xFFFFFFFF, self.octet_count & 0xFFFFFFFF)
        return _packet(SR, len(self.reports), body + b"".join(r.build() for r in self.reports))


@dataclass(frozen=True, slots=True)
class ReceiverReport:
    """RR: reception reports of a participant that has not sent RTP lately."""

    ssrc: int
    reports: tuple[ReportBlock, ...] = ()

    def build(self) -> bytes:
        body = struct.pack("!I", self.ssrc) + b"".join(r.build() for r in self.reports)
        return _packet(RR, len(self.reports), body)


@dataclass(frozen=True, slots=True)
class SourceDescription:
    """SDES: per source, a tuple of (item type, value) such as (SDES_CNAME, b"user@host")."""

    chunks: tuple[tuple[int, tuple[tuple[int, bytes], ...]], ...]

    def build(self) -> bytes:
        body = b""
        for ssrc, items in self.chunks:
            chunk = struct.pack("!I", ssrc)
            for kind, value in items:
                if len(value) > 255:
                    raise RtcpError("SDES item longer than 255 bytes")
                chunk += bytes([kind, len(value)]) + value
            chunk += bytes(4 - len(chunk) % 4)  # at least one null octet ends the item list
            body += chunk
        return _packet(SDES, len(self.chunks), body)

    def cname(self, ssrc: int) -> bytes | None:
        """The CNAME item of `ssrc`, if any."""
        for chunk_ssrc, items in self.chunks:
            if chunk_ssrc == ssrc:
                return next((value for kind, value in items if kind == SDES_CNAME), None)
        return None


@dataclass(frozen=True, slots=True)
class Bye:
    """BYE: the sources are leaving, with an optional reason."""

    sources: tuple[int, ...]
    reason: bytes = b""

    def build(self) -> bytes:
        body = b"".join(struct.pack("!I", s) for s in self.sources)
        if self.reason:
            reason = self.reason[:255]
            text = bytes([len(reason)]) + reason
            body += text + bytes(-len(text) % 4)
        return _packet(BYE, len(self.sources), body)


@dataclass(frozen=True, slots=True)
class VoipMetrics:
    """RFC 3611 §4.7: the receiver's view of one source. Rates are of 256; delays in ms;
    levels in dBm0 (127: unavailable); R factors 0-100 and MOS x10 (127: unavailable)."""

    ssrc: int
    loss_rate: int
    discard_rate: int
    burst_density: int
    gap_density: int
    burst_duration_ms: int
    gap_duration_ms: int
    round_trip_delay_ms: int
    end_system_delay_ms: int
    signal_level: int = 127
    noise_level: int = 127
    rerl: int = 127
    gmin: int = 16
    r_factor: int = 127
    ext_r_factor: int = 127
    mos_lq: int = 127
    mos_cq: int = 127
    rx_config: int = 0
    jb_nominal_ms: int = 0
    jb_maximum_ms: int = 0
    jb_abs_max_ms: int = 0

    _FORMAT = struct.Struct("!IBBBBHHHHbbBBBBBBBxHHH")

    def build(self) -> bytes:
        return self._FORMAT.pack(*(getattr(self, f) for f in self.__dataclass_fields__))

    @classmethod
    def parse(cls, data: bytes) -> "VoipMetrics":
        return cls(*cls._FORMAT.unpack_from(data))


@dataclass(frozen=True, slots=True)
class ExtendedReport:
    """XR (RFC 3611): the sender's SSRC and its report blocks: ("rrtr", ntp), ("dlrr",
    ((ssrc, lrr, dlrr), ...)), ("voip", VoipMetrics), or (block type, raw bytes)."""

    ssrc: int
    blocks: tuple[tuple[object, object], ...]

    def build(self) -> bytes:
        body = struct.pack("!I", self.ssrc)
        for kind, value in self.blocks:
            if kind == "rrtr":
                block_type, data = XR_RRTR, struct.pack("!Q", value)
            elif kind == "dlrr":
                block_type, data = XR_DLRR, b"".join(struct.pack("!III", *item) for item in value)
            elif kind == "voip":
                block_type, data = XR_VOIP_METRICS, value.build()
            else:
                block_type, data = kind, value
            body += struct.pack("!BBH", block_type, 0, len(data) // 4) + data
        return _packet(XR, 0, body)

    @classmethod
    def parse(cls, body: bytes) -> "ExtendedReport":
        if len(body) < 4:
            raise RtcpError("XR shorter than its SSRC")
        blocks, pos = [], 4
        while pos + 4 <= len(body):
            block_type, _, words = struct.unpack_from("!BBH", body, pos)
            data = body[pos + 4:pos + 4 + 4 * words]
            if len(data) < 4 * words:
                raise RtcpError(f"XR block type {block_type} longer than the packet")
            if block_type == XR_RRTR and len(data) >= 8:
                blocks.append(("rrtr", struct.unpack_from("!Q", data)[0]))
            elif block_type == XR_DLRR:
                blocks.append(("dlrr", tuple(struct.unpack_from("!III", data, i)
                                             for i in range(0, len(data) - 11, 12))))
            elif block_type == XR_VOIP_METRICS and len(data) >= VoipMetrics._FORMAT.size:
                blocks.append(("voip", VoipMetrics.parse(data)))
            else:
                blocks.append((block_type, bytes(data)))
            pos += 4 + 4 * words
        return cls(struct.unpack_from("!I", body)[0], tuple(blocks))


@dataclass(frozen=True, slots=True)
class UnknownRtcp:
    """Any other RTCP packet type (APP, feedback), kept as its raw body."""

    packet_type: int
    count: int
    body: bytes

    def build(self) -> bytes:
        return _packet(self.packet_type, self.count, self.body)


RtcpPacket = SenderReport | ReceiverReport | SourceDescription | Bye | ExtendedReport | UnknownRtcp


def _packet(packet_type: int, count: int, body: bytes) -> bytes:
    if count > 31:
        raise RtcpError(f"{count} items do not fit the 5-bit count")
    if len(body) % 4:
        raise RtcpError("RTCP packet body must be a multiple of 4 bytes")
    return _HEADER.pack((RTCP_VERSION << 6) | count, packet_type, len(body) // 4) + body


def build_compound(packets: list[RtcpPacket]) -> bytes:
    """Serialize packets into one compound datagram."""
    return b"".join(p.build() for p in packets)


def parse_compound(data: bytes) -> list[RtcpPacket]:
    """Parse a compound datagram, with the validity checks of RFC 3550 A.2: version 2, first
    packet SR or RR, padding only in the last packet, lengths that add up to the datagram."""
    if len(data) < 4:
        raise RtcpError(f"RTCP datagram too short: {len(data)} bytes")
    if data[1] not in (SR, RR):
        raise RtcpError(f"compound RTCP must start with SR or RR, not packet type {data[1]}")
    packets: list[RtcpPacket] = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < 4:
            raise RtcpError("RTCP datagram ends inside a packet header")
        first, packet_type, words = _HEADER.unpack_from(data, pos)
        end = pos + 4 + 4 * words
        if first >> 6 != RTCP_VERSION:
            raise RtcpError(f"RTCP version {first >> 6}, expected 2")
        if end > len(data):
            raise RtcpError(f"RTCP packet type {packet_type} longer than the datagram")
        body = data[pos + 4:end]
        if first & 0x20:
            if end != len(data) or not body or not 0 < body[-1] <= len(body):
                raise RtcpError("RTCP padding outside the last packet or with a bad count")
            body = body[:-body[-1]]
        packets.append(_parse_one(packet_type, first & 0x1F, body))
        pos = end
    return packets


def _parse_one(packet_type: int, count: int, body: bytes) -> RtcpPacket:
    if packet_type in (SR, RR):
        head = _SENDER_INFO.size if packet_type == SR else 4
        if len(body) < head + count * _BLOCK.size:
            raise RtcpError(f"{'SR' if packet_type == SR else 'RR'} shorter than its "
                            f"{count} report blocks")
        blocks = tuple(ReportBlock.parse(body, head + i * _BLOCK.size) for i in range(count))
        if packet_type == RR:
            return ReceiverReport(struct.unpack_from("!I", body)[0], blocks)
        ssrc, ntp, rtp_ts, packets, octets = _SENDER_INFO.unpack_from(body)
        return SenderReport(ssrc, ntp, rtp_ts, packets, octets, blocks)
    if packet_type == SDES:
        return SourceDescription(_parse_sdes(body, count))
    if packet_type == BYE:
        if len(body) < 4 * count:
            raise RtcpError(f"BYE shorter than its {count} sources")
        sources = struct.unpack_from(f"!{count}I", body)
        rest = body[4 * count:]
        if rest and len(rest) < 1 + rest[0]:
            raise RtcpError("BYE reason longer than the packet")
        return Bye(sources, bytes(rest[1:1 + rest[0]]) if rest else b"")
    if packet_type == XR:
        return ExtendedReport.parse(body)
    return UnknownRtcp(packet_type, count, bytes(body))


def _parse_sdes(body: bytes, count: int) -> tuple:
    chunks = []
    pos = 0
    for _ in range(count):
        if pos + 4 > len(body):
            raise RtcpError("SDES chunk truncated")
        ssrc = struct.unpack_from("!I", body, pos)[0]
        pos += 4
        items = []
        while True:
            if pos >= len(body):
                raise RtcpError("SDES item list not terminated")
            kind = body[pos]
            if kind == 0:
                pos = (pos + 4) & ~3  # skip the null octet(s) up to the next 32-bit boundary
                break
            if pos + 2 > len(body) or pos + 2 + body[pos + 1] > len(body):
                raise RtcpError("SDES item truncated")
            items.append((kind, bytes(body[pos + 2:pos + 2 + body[pos + 1]])))
            pos += 2 + body[pos + 1]
        chunks.append((ssrc, tuple(items)))
    return tuple(chunks)


def ntp_timestamp(unix_time: float) -> int:
    """64-bit NTP time of a Unix time."""
    return int((unix_time + NTP_EPOCH_OFFSET) * (1 << 32)) & 0xFFFFFFFFFFFFFFFF


def ntp_middle(ntp: int) -> int:
    """The middle 32 bits of an NTP timestamp, as carried in LSR."""
    return (ntp >> 16) & 0xFFFFFFFF


RTCP_MIN_INTERVAL = 5.0
_COMPENSATION = math.e - 1.5


def rtcp_interval(members: int, senders: int, rtcp_bandwidth: float, we_sent: bool,
                  average_size: float, initial: bool, random_value: float) -> float:
    """RFC 3550 A.7: seconds to the next report. `rtcp_bandwidth` in octets per second,
    `random_value` uniform in [0, 1)."""
    minimum = RTCP_MIN_INTERVAL / 2 if initial else RTCP_MIN_INTERVAL
    n = members
    if senders <= members * 0.25:
        if we_sent:
            rtcp_bandwidth *= 0.25
            n = senders
        else:
            rtcp_bandwidth *= 0.75
            n = members - senders
    deterministic = max(average_size * n / rtcp_bandwidth, minimum)
    return deterministic * (random_value + 0.5) / _COMPENSATION
