"""RTP streams in a capture: found from the SDP of the SIP messages in it, as Wireshark does.

A UDP packet is RTP when its destination or source address and port were announced in an
SDP body of an earlier frame, and it parses as RTP version 2. As in Wireshark, the payload
types are named by the SDP of the destination (what it asked to receive), else the source;
statistics use that mapping only, while `RtpStream.encodings` also takes the names the other
side's SDP gives (so DTMF sent with a payload type only the sender announced is decoded).
Only when the capture carries no SDP at all are streams found by heuristics: UDP packets
that parse as RTP version 2 and come in runs with consecutive sequence numbers.
A stream is one (source, destination, SSRC).

All datagrams' RTP headers are parsed and grouped into streams with numpy; a stream keeps
its packets as columns (`RtpFrames`) and builds `RtpFrame` objects only when asked.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from harness.wire.datagrams import Datagrams
from harness.wire.packets import Address
from harness.wire.rtp_stats import RtpStats, clock_rate, packet_series, relative_ms, stream_stats
from harness.wire.sdp import STATIC_PAYLOAD_TYPES, parse_sdp_audio
from harness.wire.sip_ladder import SipOnWire, has_sdp

_RTCP_PAYLOAD_TYPES = (72, 76)  # RFC 5761: RTCP 200-204 with the marker bit masked
_HEURISTIC_MIN_PACKETS = 3
_NEVER = np.iinfo(np.int64).max


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


@dataclass(frozen=True, eq=False)
class RtpFrames(Sequence[RtpFrame]):
    """A stream's packets as numpy columns, in capture order; payload i is
    data[offset[i]:offset[i] + length[i]]. Indexing and iterating build `RtpFrame`s."""

    data: bytes
    number: np.ndarray
    ts_ns: np.ndarray
    sequence: np.ndarray
    timestamp: np.ndarray
    payload_type: np.ndarray
    marker: np.ndarray
    offset: np.ndarray
    length: np.ndarray

    def __len__(self) -> int:
        return len(self.number)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return self.select(index)
        return RtpFrame(int(self.number[index]), int(self.ts_ns[index]), int(self.sequence[index]),
                        int(self.timestamp[index]), int(self.payload_type[index]),
                        bool(self.marker[index]), self.payload(index))

    def __iter__(self) -> Iterator[RtpFrame]:
        data = self.data
        for number, ts_ns, seq, ts, pt, marker, start, size in zip(
                self.number.tolist(), self.ts_ns.tolist(), self.sequence.tolist(),
                self.timestamp.tolist(), self.payload_type.tolist(), self.marker.tolist(),
                self.offset.tolist(), self.length.tolist()):
            yield RtpFrame(number, ts_ns, seq, ts, pt, marker, data[start:start + size])

    def payload(self, index: int) -> bytes:
        start = int(self.offset[index])
        return self.data[start:start + int(self.length[index])]

    def select(self, index) -> RtpFrames:
        """The packets picked by a slice, a boolean mask or an index array."""
        return RtpFrames(self.data, *(getattr(self, name)[index] for name in _COLUMNS))


_COLUMNS = ("number", "ts_ns", "sequence", "timestamp", "payload_type", "marker", "offset", "length")


@dataclass(frozen=True)
class RtpStream:
    """The packets one SSRC sent from `src` to `dst`, and their Wireshark statistics."""

    src: Address
    dst: Address
    ssrc: int
    packets: RtpFrames
    stats: RtpStats
    #: payload type -> (encoding name, clock rate), from the SDP or the static table
    encodings: dict[int, tuple[str, int]] = field(default_factory=dict)
    #: "sdp" or "heuristic"
    found_by: str = "sdp"
    #: the frame whose SDP announced the endpoint, and that message's Call-ID
    setup_number: int | None = None
    call_id: str | None = None
    #: payload type -> the clock rate its statistics used (0: none, as for events)
    clock_rates: dict[int, int] = field(default_factory=dict)

    def series(self, start_ns: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per packet: capture time (s since `start_ns`), delta and jitter (ms), as in
        Wireshark's RTP Stream Analysis."""
        rates = np.array([self.clock_rates.get(pt, 0) for pt in range(128)], np.int64)
        time_ms = relative_ms(self.packets.ts_ns, start_ns)
        delta, jitter = packet_series(time_ms, self.packets.timestamp, rates[self.packets.payload_type])
        return time_ms / 1000, delta, jitter

    @property
    def payload_types(self) -> tuple[int, ...]:
        """The payload types carried, in order of first appearance."""
        return _in_order_of_appearance(self.packets.payload_type)

    @property
    def start_ts_ns(self) -> int:
        return int(self.packets.ts_ns[0])

    @property
    def end_ts_ns(self) -> int:
        return int(self.packets.ts_ns[-1])

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


def _in_order_of_appearance(values: np.ndarray) -> tuple[int, ...]:
    unique, first = np.unique(values, return_index=True)
    return tuple(unique[np.argsort(first)].tolist())


@dataclass
class _Announcement:
    number: int
    rtpmap: dict[int, tuple[str, int]]
    call_id: str


def find_rtp_streams(datagrams: Datagrams, sip: Iterable[SipOnWire],
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
    rtp = RtpHeaders.parse(datagrams)
    if announced:
        return _from_sdp(datagrams, rtp, announced, start_ns)
    return _from_heuristics(datagrams, rtp, start_ns)


@dataclass(frozen=True)
class RtpHeaders:
    """The datagrams that parse as RTP version 2 (not RTCP): their rows in the `Datagrams`,
    header fields, and where their payload is."""

    row: np.ndarray
    sequence: np.ndarray
    timestamp: np.ndarray
    ssrc: np.ndarray
    payload_type: np.ndarray
    marker: np.ndarray
    offset: np.ndarray
    length: np.ndarray

    @classmethod
    def parse(cls, dg: Datagrams) -> RtpHeaders:
        """Parse every datagram's RTP header as `harness.media.rtp.RtpPacket.parse` does."""
        p, size = dg.prefix, dg.length
        b0 = p[:, 0].astype(np.int64)
        header = 12 + 4 * (b0 & 0x0F)
        ok = (size >= 12) & (b0 >> 6 == 2) & (size >= header)
        buf = np.frombuffer(dg.data, np.uint8)
        ext = np.flatnonzero(ok & (b0 & 0x10 != 0))
        ok[ext] &= size[ext] >= header[ext] + 4
        ext = ext[ok[ext]]
        at = dg.offset[ext] + header[ext]
        header[ext] += 4 + 4 * ((buf[at + 2].astype(np.int64) << 8) | buf[at + 3])
        ok[ext] &= size[ext] >= header[ext]
        padding = np.zeros(len(dg), np.int64)
        pad = np.flatnonzero(ok & (b0 & 0x20 != 0))
        padding[pad] = buf[dg.offset[pad] + size[pad] - 1]
        ok[pad] &= (padding[pad] > 0) & (size[pad] - padding[pad] >= header[pad])
        pt = p[:, 1] & 0x7F
        ok &= (pt < _RTCP_PAYLOAD_TYPES[0]) | (pt > _RTCP_PAYLOAD_TYPES[1])
        rows = np.flatnonzero(ok)
        words, longs = p.view(">u2"), p.view(">u4")
        return cls(rows, words[rows, 1].astype(np.int64), longs[rows, 1].astype(np.int64),
                   longs[rows, 2].astype(np.int64), pt[rows].astype(np.int64), p[rows, 1] >= 0x80,
                   dg.offset[rows] + header[rows], size[rows] - header[rows] - padding[rows])


def _group(src: np.ndarray, dst: np.ndarray, ssrc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An order of the rows that brings equal (src, dst, ssrc) together, keeping capture order
    within each group, and where each group starts in it. Rows are sorted by a hash of the
    three; a hash collision (detected) falls back to sorting by the three columns."""
    if not len(src):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    h = ((src.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15))
         ^ (dst.astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F)) ^ ssrc.astype(np.uint64))
    order = np.argsort(h, kind="stable")
    sorted_h = h[order]
    same = _same_as_previous(order, src, dst, ssrc)
    if not np.array_equal(same, sorted_h[1:] == sorted_h[:-1]):
        order = np.lexsort((ssrc, dst, src))
        same = _same_as_previous(order, src, dst, ssrc)
    return order, np.flatnonzero(np.concatenate(([True], ~same)))


def _same_as_previous(order: np.ndarray, *columns: np.ndarray) -> np.ndarray:
    same = np.ones(max(len(order) - 1, 0), bool)
    for col in columns:
        c = col[order]
        same &= c[1:] == c[:-1]
    return same


def _from_sdp(dg: Datagrams, rtp: RtpHeaders, announced, start_ns) -> list[RtpStream]:
    keys, firsts = [], []
    for addr, items in announced.items():
        key = dg.key(addr)
        if key is not None:
            keys.append(key)
            firsts.append(items[0].number)
    if not keys:
        return []
    src, dst, number = dg.src[rtp.row], dg.dst[rtp.row], dg.number[rtp.row]
    order, starts = _group(src, dst, rtp.ssrc)
    sizes = np.diff(np.append(starts, len(order)))
    table_keys = np.array(keys, np.int64)
    table = np.argsort(table_keys)
    table_keys, table_firsts = table_keys[table], np.array(firsts, np.int64)[table]

    def first_announcement(endpoint: np.ndarray) -> np.ndarray:
        at = np.minimum(np.searchsorted(table_keys, endpoint), len(table_keys) - 1)
        return np.where(table_keys[at] == endpoint, table_firsts[at], _NEVER)

    head = order[starts]
    threshold = np.minimum(first_announcement(src[head]), first_announcement(dst[head]))
    group_of = np.repeat(np.arange(len(starts)), sizes)
    kept = number[order] > threshold[group_of]
    order, group_of = order[kept], group_of[kept]
    starts = np.flatnonzero(np.concatenate(([True], group_of[1:] != group_of[:-1])))[:len(order)]
    streams = []
    grouped = _frames(dg, rtp, order)  # every stream's columns at once; each stream a slice
    for begin, end in zip(starts.tolist(), np.append(starts[1:], len(order)).tolist()):
        first = order[begin]
        src_addr, dst_addr = dg.endpoint(int(src[first])), dg.endpoint(int(dst[first]))
        setups = _setups(announced, src_addr, dst_addr, int(number[first]))
        frames = grouped.select(slice(begin, end))
        pts = _in_order_of_appearance(frames.payload_type)
        streams.append(_stream(src_addr, dst_addr, int(rtp.ssrc[first]), frames,
                               _encodings(pts, setups[:1]), start_ns, "sdp", setups[0].number,
                               setups[0].call_id, _encodings(pts, setups)))
    return sorted(streams, key=lambda s: int(s.packets.number[0]))


def _setups(announced: dict[Address, list[_Announcement]], src: Address, dst: Address,
            number: int) -> list[_Announcement]:
    """The latest announcement before frame `number` of the destination, then of the source."""
    found = []
    for endpoint in (dst, src):
        earlier = [a for a in announced.get(endpoint, ()) if a.number < number]
        if earlier:
            found.append(earlier[-1])
    return found


def _frames(dg: Datagrams, rtp: RtpHeaders, rows: np.ndarray) -> RtpFrames:
    picked = rtp.row[rows]
    return RtpFrames(dg.data, dg.number[picked], dg.ts_ns[picked], rtp.sequence[rows],
                     rtp.timestamp[rows], rtp.payload_type[rows], rtp.marker[rows],
                     rtp.offset[rows], rtp.length[rows])


def _encodings(pts: Iterable[int], setups: list[_Announcement]) -> dict[int, tuple[str, int]]:
    found = {}
    for pt in pts:
        enc = next((a.rtpmap[pt] for a in setups if pt in a.rtpmap), STATIC_PAYLOAD_TYPES.get(pt))
        if enc is not None:
            found[pt] = enc
    return found


def _from_heuristics(dg: Datagrams, rtp: RtpHeaders, start_ns) -> list[RtpStream]:
    src, dst = dg.src[rtp.row], dg.dst[rtp.row]
    order, starts = _group(src, dst, rtp.ssrc)
    sizes = np.diff(np.append(starts, len(order)))
    seq = rtp.sequence[order]
    step_one = np.concatenate(([False], (seq[1:] - seq[:-1]) & 0xFFFF == 1))
    step_one[starts] = False
    consecutive = np.add.reduceat(step_one, starts) if len(starts) else sizes
    good = (sizes >= _HEURISTIC_MIN_PACKETS) & (consecutive >= sizes // 2)
    streams = []
    for begin, size in zip(starts[good].tolist(), sizes[good].tolist()):
        rows = order[begin:begin + size]
        frames = _frames(dg, rtp, rows)
        encodings = {}
        for pt in _in_order_of_appearance(frames.payload_type):
            if pt in STATIC_PAYLOAD_TYPES:
                encodings[pt] = STATIC_PAYLOAD_TYPES[pt]
            elif pt >= 96 and (frames.length[frames.payload_type == pt] == 4).all():
                encodings[pt] = ("telephone-event", 8000)  # a guess: 4-byte RFC 4733 payloads
        streams.append(_stream(dg.endpoint(int(src[rows[0]])), dg.endpoint(int(dst[rows[0]])),
                               int(rtp.ssrc[rows[0]]), frames, encodings, start_ns, "heuristic"))
    return sorted(streams, key=lambda s: int(s.packets.number[0]))


def _stream(src, dst, ssrc, frames: RtpFrames, encodings, start_ns, found_by, setup_number=None,
            call_id=None, names=None) -> RtpStream:
    """A stream whose statistics use `encodings` and whose payload names are `names`."""
    rates = np.zeros(128, np.int64)
    for pt in np.unique(frames.payload_type).tolist():
        rates[pt] = clock_rate(pt, encodings.get(pt))
    stats = stream_stats(relative_ms(frames.ts_ns, start_ns), frames.sequence, frames.timestamp,
                         frames.payload_type, frames.marker, rates[frames.payload_type])
    used = {pt: int(rates[pt]) for pt in np.unique(frames.payload_type).tolist()}
    return RtpStream(src, dst, ssrc, frames, stats, encodings if names is None else names,
                     found_by, setup_number, call_id, used)
