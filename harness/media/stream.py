"""One RTP stream of the stub, sans-IO: what to send in each 20 ms slot of the media clock,
what the far end's packets mean, and the RTCP reports about both.

Across playbacks and digits the SSRC stays, the sequence number advances by one per packet
sent and the timestamp by 160 per tick, whatever is sent or whether anything is (hold); only
the packets of an RFC 4733 event keep the event's start timestamp. The
marker bit starts each talkspurt: the first packet, the first after hold or a clock resync,
the first of a playback that follows idle silence, and the first of each RFC 4733 event.
"""
from __future__ import annotations

import random
import secrets
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .dtmf import DEFAULT_GAP_MS, DigitReceived, DigitSender, EventDetector, ToneDetector
from .g711 import DECODERS, SILENCE_BYTE
from .rtcp import (SDES_CNAME, Bye, ReceiverReport, RtcpPacket, SenderReport, SourceDescription,
                   build_compound, ntp_middle, ntp_timestamp, parse_compound, rtcp_interval)
from .rtp import RtpError, RtpPacket, TelephoneEvent
from .sources import FRAME_SAMPLES, RATE
from .statistics import ReceptionStats

_pack_header = struct.Struct("!BBHII").pack
_unpack_header = struct.Struct("!BBHII").unpack_from


@dataclass
class _Playback:
    frames: Sequence[bytes]
    repeat: int
    token: object
    index: int = 0
    round: int = 1


class RtpSender:
    """Builds the outgoing packets of one stream, one call of `tick` per clock tick.

    Tokens of playbacks and digit strings that finish by themselves are appended to `done`
    (the caller drains it). Digits take the ticks they need; a playback waits meanwhile.
    A standing source (a bridge's `LiveFeed`) is heard whenever nothing plays: a playback plays
    over it, and it is drained meanwhile so that it resumes live when the playback ends.
    """

    def __init__(self, payload_type: int, codec: str, dtmf_payload_type: int | None = None,
                 ssrc: int | None = None):
        self.payload_type, self.codec, self.dtmf_payload_type = payload_type, codec, dtmf_payload_type
        self.ssrc = secrets.randbits(32) if ssrc is None else ssrc
        self.sequence = secrets.randbits(16)
        self.timestamp = secrets.randbits(32)
        self.last_timestamp = self.timestamp
        self._silence = bytes([SILENCE_BYTE[codec]]) * FRAME_SAMPLES
        self._playback: _Playback | None = None
        self._standing = None
        self._digits: DigitSender | None = None
        self._marker = True  # the next packet starts a talkspurt
        self._idle = True  # the last audio was the filler silence
        self.paused = False
        self.packets_sent = 0
        self.octets_sent = 0
        self.done: list[object] = []

    @property
    def playing(self) -> object | None:
        """The token of the current playback, or None when sending silence."""
        return self._playback.token if self._playback else None

    @property
    def sending_digits(self) -> object | None:
        """The token of the digit string being sent, or None."""
        return self._digits.token if self._digits else None

    def play(self, frames: Sequence[bytes], token: object, repeat: int = 1) -> None:
        """Start playing `frames` (`repeat` times) at the next tick, replacing anything playing."""
        self._playback = _Playback(frames, max(1, repeat), token) if frames else None

    def stop(self) -> object | None:
        """Stop the current playback at once; return its token. The standing source goes on."""
        token, self._playback = self.playing, None
        return token

    @property
    def standing(self):
        """The source heard when nothing plays (an object with `next_frame()`), or None."""
        return self._standing

    def set_standing(self, source) -> None:
        """Hear `source.next_frame()` whenever no playback runs (None: silence again)."""
        self._standing = source

    def send_digits(self, digits: str, tone_ms: int, token: object,
                    gap_ms: int = DEFAULT_GAP_MS) -> None:
        """Send DTMF from the next tick: RFC 4733 events when the stream has a telephone-event
        payload type, in-band tones otherwise. Replaces digits still being sent."""
        self._digits = DigitSender(digits, tone_ms, token, self.dtmf_payload_type, None, gap_ms) \
            if self.dtmf_payload_type is not None else \
            DigitSender(digits, tone_ms, token, self.payload_type, self.codec, gap_ms)

    def pause(self) -> None:
        """Stop transmitting (hold); playbacks, digits and timestamps go on with the clock."""
        self.paused = True

    def resume(self) -> None:
        """Transmit again from the next tick, starting a talkspurt."""
        self.paused = False
        self._marker = True

    def skip(self, ticks: int) -> None:
        """Account for clock ticks that were not run (the machine stalled)."""
        self.timestamp = (self.timestamp + ticks * FRAME_SAMPLES) & 0xFFFFFFFF
        self._marker = True

    def tick(self) -> bytes | None:
        """The packet for this tick, or None while paused."""
        ts = self.last_timestamp = self.timestamp
        self.timestamp = (ts + FRAME_SAMPLES) & 0xFFFFFFFF
        step = None
        if self._digits is not None:
            step = self._digits.tick(ts)
            if self._digits.done:
                self.done.append(self._digits.token)
                self._digits = None
        if step is not None:
            payload_type, payload, ts, marker = step
        else:
            payload_type, payload, marker = self.payload_type, self._next_audio(), False
        if self.paused:
            return None
        marker = marker or self._marker
        self._marker = False
        sequence = self.sequence
        self.sequence = (sequence + 1) & 0xFFFF
        self.packets_sent += 1
        self.octets_sent += len(payload)
        return _pack_header(0x80, (0x80 if marker else 0) | payload_type, sequence, ts,
                            self.ssrc) + payload

    def _next_audio(self) -> bytes:
        pb, standing = self._playback, self._standing
        if standing is not None:
            frame = standing.next_frame()  # taken even under a playback, so it stays live
            if pb is None:
                self._idle = False
                return frame
        if pb is None:
            self._idle = True
            return self._silence
        if self._idle:
            self._idle, self._marker = False, True
        payload = pb.frames[pb.index]
        pb.index += 1
        if pb.index == len(pb.frames):
            if pb.round < pb.repeat:
                pb.round, pb.index = pb.round + 1, 0
            else:
                self.done.append(pb.token)
                self._playback = None
        return payload


class RtpReceiver:
    """Reads the far end's RTP: reception statistics, and DTMF digits from RFC 4733 events
    (and, when `inband_dtmf` is set, from tones in the audio)."""

    def __init__(self, dtmf_payload_type: int | None, payload_type: int | None = None,
                 codec: str | None = None, inband_dtmf: bool = False, clock_rate: int = RATE):
        self.dtmf_payload_type, self.payload_type = dtmf_payload_type, payload_type
        self.stats = ReceptionStats(clock_rate)
        self.events = EventDetector(clock_rate)
        self._decode = DECODERS[codec] if inband_dtmf else None
        self.tones = ToneDetector() if inband_dtmf else None
        self.packets = 0
        self.invalid = 0

    def receive(self, data: bytes, now: float) -> list[DigitReceived]:
        """Feed one datagram that arrived at `now`; returns the digits that ended with it."""
        if len(data) < 12:
            self.invalid += 1
            return []
        first, second, seq, ts, ssrc = _unpack_header(data)
        if first >> 6 != 2:
            self.invalid += 1
            return []
        payload_type = second & 0x7F
        is_event = payload_type == self.dtmf_payload_type
        if not self.stats.update(ssrc, seq, ts, now, not is_event):
            return []
        self.packets += 1
        if not is_event and (self.tones is None or payload_type != self.payload_type):
            return []
        try:
            payload = RtpPacket.parse(data).payload if first & 0x3F else data[12:]
            if is_event:
                return self.events.receive(ts, TelephoneEvent.parse(payload), now)
        except RtpError:
            self.invalid += 1
            return []
        return self.tones.feed(self._decode(payload))

    def poll(self, now: float) -> list[DigitReceived]:
        """Digits whose end packets never came (see `EventDetector.poll`)."""
        return self.events.poll(now) if self.events.pending else []


#: Session bandwidth of G.711 at 20 ms with IPv4/UDP/RTP headers, in octets per second; RTCP
#: gets 5 % of it (RFC 3550 §6.2).
SESSION_BANDWIDTH = (FRAME_SAMPLES + 40) * 50
RTCP_SHARE = 0.05
UDP_IP_OVERHEAD = 28


class RtcpReporter:
    """When to send RTCP and what: an SR while we send RTP (an RR while on hold), with a
    report block about the far end once it has sent, and an SDES CNAME; a BYE at the end.
    Reads the far end's reports for LSR/DLSR and the round-trip time."""

    def __init__(self, sender: RtpSender, stats: ReceptionStats, cname: str,
                 rand: Callable[[], float] = random.random):
        self.sender, self.stats, self.cname, self.rand = sender, stats, cname.encode(), rand
        self.next_due = float("inf")
        self.average_size = 0.0
        self.reports_sent = 0
        self.reports_received = 0
        self.round_trip: float | None = None  # seconds, from the far end's last report about us
        self.remote_bye = False
        self._last_sr: tuple[int, float] | None = None  # LSR value and its arrival
        self._packets_at_last_report = 0

    def start(self, now: float) -> None:
        """Schedule the first report (half the minimum interval, RFC 3550 §6.2)."""
        self.next_due = now + self._interval(initial=True)

    def _interval(self, initial: bool) -> float:
        we_sent = self.sender.packets_sent > self._packets_at_last_report
        senders = int(we_sent) + int(self.stats.ssrc is not None)
        size = self.average_size or 100.0
        return rtcp_interval(2, senders, SESSION_BANDWIDTH * RTCP_SHARE, we_sent, size, initial,
                             self.rand())

    def report(self, now: float, wallclock: float) -> bytes:
        """The compound report due at `now` (monotonic) / `wallclock` (Unix time); schedules
        the next one."""
        data = build_compound(self._packets(now, wallclock))
        self.next_due = now + self._interval(initial=False)
        self._packets_at_last_report = self.sender.packets_sent
        size = len(data) + UDP_IP_OVERHEAD
        self.average_size = size if not self.average_size else \
            self.average_size + (size - self.average_size) / 16
        self.reports_sent += 1
        return data

    def bye(self, now: float, wallclock: float, reason: bytes = b"") -> bytes:
        """A final report followed by BYE."""
        return build_compound(self._packets(now, wallclock) + [Bye((self.sender.ssrc,), reason)])

    def _packets(self, now: float, wallclock: float) -> list[RtcpPacket]:
        blocks = ()
        if self.stats.ssrc is not None:
            lsr, arrival = self._last_sr or (0, now)
            blocks = (self.stats.report_block(lsr, int((now - arrival) * 65536) if lsr else 0),)
        ssrc = self.sender.ssrc
        if self.sender.packets_sent > self._packets_at_last_report:
            first = SenderReport(ssrc, ntp_timestamp(wallclock), self.sender.last_timestamp,
                                 self.sender.packets_sent, self.sender.octets_sent, blocks)
        else:
            first = ReceiverReport(ssrc, blocks)
        return [first, SourceDescription(((ssrc, ((SDES_CNAME, self.cname),)),))]

    def receive(self, data: bytes, now: float, wallclock: float) -> list[RtcpPacket]:
        """Read a compound packet from the far end; raises RtcpError when it is invalid."""
        packets = parse_compound(data)
        self.reports_received += 1
        for packet in packets:
            if isinstance(packet, SenderReport):
                self._last_sr = (ntp_middle(packet.ntp_timestamp), now)
            if isinstance(packet, (SenderReport, ReceiverReport)):
                for block in packet.reports:
                    if block.ssrc == self.sender.ssrc and block.last_sr:
                        delay = ntp_middle(ntp_timestamp(wallclock)) - block.last_sr - \
                            block.delay_since_last_sr
                        self.round_trip = (delay & 0xFFFFFFFF) / 65536
            if isinstance(packet, Bye):
                self.remote_bye = True
        return packets
