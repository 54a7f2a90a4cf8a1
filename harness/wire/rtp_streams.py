"""RTP streams in a capture: found from the SDP of the SIP messages in it, as Wireshark does.

A UDP packet is RTP when its destination or source address and port were announced in an
SDP body of an earlier frame, and it parses as RTP version 2. As in Wireshark, the payload
types are named by the SDP of the destination (what it asked to receive), else the source;
statistics use that mapping only, while `RtpStream.encodings` also takes the names the other
side's SDP gives (so DTMF sent with a payload type only the sender announced is decoded).
Only when the capture carries no SDP at all are streams found by heuristics: UDP packets
that parse as RTP version 2 and come in runs with consecutive sequence numbers.
A stream is one (source, destination, SSRC).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from harness.media.rtp import RtpError, RtpPacket
from harness.wire.pcap import Address, Packet
from harness.wire.rtp_stats import RtpStats, StatsAccumulator, clock_rate
from harness.wire.sdp import STATIC_PAYLOAD_TYPES, parse_sdp_audio
from harness.wire.sip_ladder import SipOnWire, has_sdp

_RTCP_PAYLOAD_TYPES = range(72, 77)  # RFC 5761: RTCP 200-204 with the marker bit masked
_HEURISTIC_MIN_PACKETS = 3


@dataclass(frozen=True, slots=True)
class RtpFrame:
    """One RTP packet of a stream, with its capture frame number and time."""

    number: int
    ts_ns: int
    sequence: int
    timestamp: int
    payload_type: int
    marker: bool
    payload: bytes

    @property
    def time(self) -> float:
        return self.ts_ns / 1e9


@dataclass(frozen=True)
class RtpStream:
    """The packets one SSRC sent from `src` to `dst`, and their Wireshark statistics."""

    src: Address
    dst: Address
    ssrc: int
    packets: tuple[RtpFrame, ...]
    stats: RtpStats
    #: payload type -> (encoding name, clock rate), from the SDP or the static table
    encodings: dict[int, tuple[str, int]] = field(default_factory=dict)
    #: "sdp" or "heuristic"
    found_by: str = "sdp"
    #: the frame whose SDP announced the endpoint, and that message's Call-ID
    setup_number: int | None = None
    call_id: str | None = None

    @property
    def payload_types(self) -> tuple[int, ...]:
        """The payload types carried, in order of first appearance."""
        return tuple(dict.fromkeys(p.payload_type for p in self.packets))

    @property
    def start_ts_ns(self) -> int:
        return self.packets[0].ts_ns

    @property
    def end_ts_ns(self) -> int:
        return self.packets[-1].ts_ns

    def encoding_name(self, payload_type: int) -> str | None:
        enc = self.encodings.get(payload_type)
        return enc[0] if enc else None

    @property
    def event_payload_types(self) -> frozenset[int]:
        """Payload types that carry RFC 4733 telephone-events."""
        return frozenset(pt for pt, (name, _) in self.encodings.items()
                         if name.lower() == "telephone-event")

    def describe(self) -> str:
        names = ", ".join(self.encoding_name(pt) or str(pt) for pt in self.payload_types)
        return (f"{self.src[0]}:{self.src[1]} -> {self.dst[0]}:{self.dst[1]} "
                f"SSRC 0x{self.ssrc:08X} [{names}] {self.stats.packets} packets")


@dataclass
class _Announcement:
    number: int
    rtpmap: dict[int, tuple[str, int]]
    call_id: str


def find_rtp_streams(packets: Sequence[Packet], sip: Iterable[SipOnWire],
                     start_ns: int) -> list[RtpStream]:
    """The RTP streams of a capture in order of their first packet.

    `start_ns` is the time of the capture's first frame (Wireshark's relative-time origin).
    """
    announced: dict[Address, list[_Announcement]] = {}
    for msg in sorted(sip, key=lambda m: m.last_number):
        if has_sdp(msg.message):
            audio = parse_sdp_audio(msg.message.body)
            if audio is not None:
                announced.setdefault((audio.address, audio.port), []).append(
                    _Announcement(msg.last_number, audio.rtpmap, msg.message.call_id))
    if announced:
        return _from_sdp(packets, announced, start_ns)
    return _from_heuristics(packets, start_ns)


class _Setups:
    """Which announcements apply to a packet's flow, cached per flow until the next one."""

    def __init__(self, announced: dict[Address, list[_Announcement]]):
        self._announced = announced
        self._cache: dict[tuple[Address, Address], tuple[int, list[_Announcement]]] = {}

    def __call__(self, pkt: Packet) -> list[_Announcement]:
        """The latest earlier announcement of the destination, then of the source."""
        key = (pkt.dst, pkt.src)
        cached = self._cache.get(key)
        if cached is not None and pkt.number <= cached[0]:
            return cached[1]
        found, valid_until = [], 1 << 62
        for endpoint in key:
            earlier = []
            for a in self._announced.get(endpoint, ()):
                if a.number < pkt.number:
                    earlier.append(a)
                else:
                    valid_until = min(valid_until, a.number)
            if earlier:
                found.append(earlier[-1])
        self._cache[key] = (valid_until, found)
        return found


def _parse(pkt: Packet) -> RtpPacket | None:
    try:
        rtp = RtpPacket.parse(pkt.payload)
    except RtpError:
        return None
    return None if rtp.payload_type in _RTCP_PAYLOAD_TYPES else rtp


def _frame(pkt: Packet, rtp: RtpPacket) -> RtpFrame:
    return RtpFrame(pkt.number, pkt.ts_ns, rtp.sequence, rtp.timestamp, rtp.payload_type,
                    rtp.marker, rtp.payload)


def _from_sdp(packets, announced, start_ns) -> list[RtpStream]:
    groups: dict[tuple[Address, Address, int], tuple[list[_Announcement], list[RtpFrame]]] = {}
    setups_for = _Setups(announced)
    for pkt in packets:
        if pkt.transport != "udp":
            continue
        setups = setups_for(pkt)
        if not setups:
            continue
        rtp = _parse(pkt)
        if rtp is None:
            continue
        key = (pkt.src, pkt.dst, rtp.ssrc)
        groups.setdefault(key, (setups, []))[1].append(_frame(pkt, rtp))
    streams = []
    for (src, dst, ssrc), (setups, frames) in groups.items():
        pts = dict.fromkeys(f.payload_type for f in frames)
        strict = _encodings(pts, setups[:1])
        streams.append(_stream(src, dst, ssrc, frames, strict, start_ns, "sdp",
                               setups[0].number, setups[0].call_id, _encodings(pts, setups)))
    return sorted(streams, key=lambda s: s.packets[0].number)


def _encodings(pts: Iterable[int], setups: list[_Announcement]) -> dict[int, tuple[str, int]]:
    found = {}
    for pt in pts:
        enc = next((a.rtpmap[pt] for a in setups if pt in a.rtpmap), STATIC_PAYLOAD_TYPES.get(pt))
        if enc is not None:
            found[pt] = enc
    return found


def _from_heuristics(packets, start_ns) -> list[RtpStream]:
    groups: dict[tuple[Address, Address, int], list[RtpFrame]] = {}
    for pkt in packets:
        if pkt.transport == "udp":
            rtp = _parse(pkt)
            if rtp is not None:
                groups.setdefault((pkt.src, pkt.dst, rtp.ssrc), []).append(_frame(pkt, rtp))
    streams = []
    for (src, dst, ssrc), frames in groups.items():
        consecutive = sum((b.sequence - a.sequence) & 0xFFFF == 1 for a, b in zip(frames, frames[1:]))
        if len(frames) < _HEURISTIC_MIN_PACKETS or consecutive < len(frames) // 2:
            continue
        encodings = {}
        for pt in dict.fromkeys(f.payload_type for f in frames):
            if pt in STATIC_PAYLOAD_TYPES:
                encodings[pt] = STATIC_PAYLOAD_TYPES[pt]
            elif pt >= 96 and all(len(f.payload) == 4 for f in frames if f.payload_type == pt):
                encodings[pt] = ("telephone-event", 8000)  # a guess: 4-byte RFC 4733 payloads
        streams.append(_stream(src, dst, ssrc, frames, encodings, start_ns, "heuristic"))
    return sorted(streams, key=lambda s: s.packets[0].number)


def _stream(src, dst, ssrc, frames, encodings, start_ns, found_by, setup_number=None,
            call_id=None, names=None) -> RtpStream:
    """A stream whose statistics use `encodings` and whose payload names are `names`."""
    acc = StatsAccumulator()
    for f in frames:
        acc.add((f.ts_ns - start_ns) / 1e6, f.sequence, f.timestamp, f.payload_type, f.marker,
                clock_rate(f.payload_type, encodings.get(f.payload_type)))
    return RtpStream(src, dst, ssrc, tuple(frames), acc.result(),
                     encodings if names is None else names, found_by, setup_number, call_id)
