"""RTCP in a capture: sender reports, reception reports and XR VoIP metrics, with the round
trip time each report allows.

Every UDP datagram that parses as a compound RTCP packet (version 2, starting with SR or RR,
lengths adding up: RFC 3550 A.2) is taken, wherever it goes: on the port after RTP, on the
port a=rtcp names, or multiplexed with RTP (RFC 5761). Wireshark 4.0 finds RTCP the same way
(its UDP heuristic for RTCP is on by default).

Round trip time, as Wireshark computes it: a reception report whose LSR is the middle of an
NTP timestamp of an SR captured earlier in the opposite direction gives RTT = (capture time
of the report - capture time of that SR) - DLSR. That is the round trip between the capture
point and the reporting side; with the capture at the SR's sender it is the whole round
trip. XR reports do the same with RRTR and DLRR (RFC 3611 §4.4, §4.5).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from harness.media.rtcp import (BYE, RR, SDES, SR, XR, Bye, ExtendedReport, ReceiverReport,
                                RtcpError, SenderReport, SourceDescription, VoipMetrics,
                                ntp_middle, parse_compound)
from harness.wire.datagrams import Datagrams
from harness.wire.packets import Address

_TYPES = {SenderReport: SR, ReceiverReport: RR, SourceDescription: SDES, Bye: BYE,
          ExtendedReport: XR}


@dataclass(frozen=True, slots=True)
class SenderInfo:
    """What an SR says about its sender's stream."""

    number: int
    ts_ns: int
    src: Address
    dst: Address
    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int


@dataclass(frozen=True, slots=True)
class ReceptionReport:
    """One report block: what `reporter_ssrc` received of `ssrc` (RFC 3550 §6.4.1)."""

    number: int
    ts_ns: int
    src: Address
    dst: Address
    reporter_ssrc: int
    ssrc: int
    fraction_lost: int
    cumulative_lost: int
    highest_sequence: int
    #: interarrival jitter in timestamp units
    jitter: int
    lsr: int
    dlsr: int
    rtt_ms: float | None

    @property
    def fraction_lost_percent(self) -> float:
        return 100.0 * self.fraction_lost / 256


@dataclass(frozen=True, slots=True)
class XrVoipReport:
    """An XR VoIP metrics block (RFC 3611 §4.7) about `metrics.ssrc`."""

    number: int
    ts_ns: int
    src: Address
    dst: Address
    reporter_ssrc: int
    metrics: VoipMetrics
    rtt_ms: float | None = None


@dataclass(frozen=True)
class RtcpReports:
    """All RTCP of a capture, in capture order."""

    #: (frame number, time, src, dst, packet types) of each RTCP datagram
    datagrams: tuple[tuple[int, int, Address, Address, tuple[int, ...]], ...]
    senders: tuple[SenderInfo, ...]
    receptions: tuple[ReceptionReport, ...]
    voip: tuple[XrVoipReport, ...]

    def about(self, ssrc: int) -> tuple[list[SenderInfo], list[ReceptionReport], list[XrVoipReport]]:
        """What was reported about the stream of `ssrc`: by its sender, by its receivers."""
        return self._by_ssrc.get(ssrc, ([], [], []))

    @functools.cached_property
    def _by_ssrc(self) -> dict[int, tuple[list, list, list]]:
        found: dict[int, tuple[list, list, list]] = {}
        for kind, items, key in ((0, self.senders, lambda x: x.ssrc), (1, self.receptions, lambda x: x.ssrc),
                                 (2, self.voip, lambda x: x.metrics.ssrc)):
            for item in items:
                found.setdefault(key(item), ([], [], []))[kind].append(item)
        return found

    @property
    def endpoints(self) -> set[Address]:
        return {ep for _, _, src, dst, _ in self.datagrams for ep in (src, dst)}


def find_rtcp(datagrams: Datagrams) -> RtcpReports:
    """Every compound RTCP datagram of a capture and what it reports (module docstring)."""
    p = datagrams.prefix
    candidates = np.flatnonzero((p[:, 0] >> 6 == 2) & np.isin(p[:, 1], (SR, RR))
                                & (datagrams.length >= 8))
    found, senders, receptions, voip = [], [], [], []
    last_sr: dict[tuple[Address, Address], dict[int, int]] = {}   # (src, dst) -> {lsr: ts_ns}
    last_rrtr: dict[tuple[Address, Address], dict[int, int]] = {}
    endpoint = functools.lru_cache(maxsize=None)(datagrams.endpoint)
    for i, number, ts_ns, src_key, dst_key in zip(candidates.tolist(), datagrams.number[candidates].tolist(),
                                                  datagrams.ts_ns[candidates].tolist(),
                                                  datagrams.src[candidates].tolist(), datagrams.dst[candidates].tolist()):
        try:
            packets = parse_compound(datagrams.payload(i))
        except RtcpError:
            continue
        pkt = _Seen(number, ts_ns, endpoint(src_key), endpoint(dst_key))
        found.append((number, ts_ns, pkt.src, pkt.dst, tuple(_TYPES.get(type(x)) or x.packet_type for x in packets)))
        back_sr = last_sr.get((pkt.dst, pkt.src), {})
        back_rrtr = last_rrtr.get((pkt.dst, pkt.src), {})
        for packet in packets:
            if isinstance(packet, SenderReport):
                senders.append(SenderInfo(pkt.number, pkt.ts_ns, pkt.src, pkt.dst, packet.ssrc,
                                          packet.ntp_timestamp, packet.rtp_timestamp,
                                          packet.packet_count, packet.octet_count))
                last_sr.setdefault((pkt.src, pkt.dst), {})[ntp_middle(packet.ntp_timestamp)] = pkt.ts_ns
            if isinstance(packet, (SenderReport, ReceiverReport)):
                for block in packet.reports:
                    receptions.append(ReceptionReport(
                        pkt.number, pkt.ts_ns, pkt.src, pkt.dst, packet.ssrc, block.ssrc,
                        block.fraction_lost, block.cumulative_lost, block.highest_sequence,
                        block.jitter, block.last_sr, block.delay_since_last_sr,
                        _rtt(back_sr, block.last_sr, block.delay_since_last_sr, pkt.ts_ns)))
            elif isinstance(packet, ExtendedReport):
                rtt = None
                for kind, value in packet.blocks:
                    if kind == "rrtr":
                        last_rrtr.setdefault((pkt.src, pkt.dst), {})[ntp_middle(value)] = pkt.ts_ns
                    elif kind == "dlrr":
                        rtt = next((r for _, lrr, dlrr in value
                                    if (r := _rtt(back_rrtr, lrr, dlrr, pkt.ts_ns)) is not None), rtt)
                for kind, value in packet.blocks:
                    if kind == "voip":
                        voip.append(XrVoipReport(pkt.number, pkt.ts_ns, pkt.src, pkt.dst,
                                                 packet.ssrc, value, rtt))
    return RtcpReports(tuple(found), tuple(senders), tuple(receptions), tuple(voip))


@dataclass(frozen=True, slots=True)
class _Seen:
    number: int
    ts_ns: int
    src: Address
    dst: Address


def _rtt(sent: dict[int, int], lsr: int, dlsr: int, ts_ns: int) -> float | None:
    """(now - time of the referenced report) - the delay the reporter says it held it, in ms."""
    if not lsr or not dlsr or lsr not in sent:
        return None
    return (ts_ns - sent[lsr]) / 1e6 - dlsr * 1000 / 65536
