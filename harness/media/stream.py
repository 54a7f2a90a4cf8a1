"""One RTP stream of the stub, sans-IO: what to send in each 20 ms slot of the media clock,
and what the far end's packets mean (RFC 4733 digits).

Across playbacks the SSRC stays, sequence numbers advance by one per packet and timestamps by
160, whatever is played; between playbacks the stream carries encoded silence.
"""
from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from .g711 import SILENCE_BYTE
from .rtp import RtpError, RtpPacket, TelephoneEvent
from .sources import FRAME_SAMPLES


@dataclass
class _Playback:
    frames: Sequence[bytes]
    repeat: int
    token: object
    index: int = 0
    round: int = 1


class RtpSender:
    """Builds the outgoing packets of one stream, one per clock tick."""

    def __init__(self, payload_type: int, codec: str, ssrc: int | None = None):
        self.payload_type, self.codec = payload_type, codec
        self.ssrc = secrets.randbits(32) if ssrc is None else ssrc
        self.sequence = secrets.randbits(16)
        self.timestamp = secrets.randbits(32)
        self._silence = bytes([SILENCE_BYTE[codec]]) * FRAME_SAMPLES
        self._playback: _Playback | None = None
        self._marker = True  # first packet of the stream starts a talkspurt
        self.packets_sent = 0

    @property
    def playing(self) -> object | None:
        """The token of the current playback, or None when sending silence."""
        return self._playback.token if self._playback else None

    def play(self, frames: Sequence[bytes], token: object, repeat: int = 1) -> None:
        """Start playing `frames` (`repeat` times) at the next tick, replacing anything playing."""
        self._playback = _Playback(frames, max(1, repeat), token) if frames else None
        self._marker = True

    def stop(self) -> object | None:
        """Stop the current playback at once; return its token."""
        token, self._playback = self.playing, None
        return token

    def tick(self) -> tuple[bytes, object | None]:
        """The packet for this slot, and the token of a playback that ended with it."""
        finished = None
        pb = self._playback
        if pb is None:
            payload = self._silence
        else:
            payload = pb.frames[pb.index]
            pb.index += 1
            if pb.index == len(pb.frames):
                if pb.round < pb.repeat:
                    pb.round, pb.index = pb.round + 1, 0
                else:
                    finished, self._playback = pb.token, None
        packet = RtpPacket(self.payload_type, self.sequence, self.timestamp, self.ssrc,
                           payload, marker=self._marker).build()
        self._marker = False
        self.sequence = (self.sequence + 1) & 0xFFFF
        self.timestamp = (self.timestamp + FRAME_SAMPLES) & 0xFFFFFFFF
        self.packets_sent += 1
        return packet, finished


@dataclass(frozen=True)
class DigitReceived:
    """A DTMF digit from the far end: RFC 4733 (`source`="rfc4733") or SIP INFO."""

    digit: str
    duration_ms: int
    source: str = "rfc4733"


class RtpReceiver:
    """Reads the far end's packets: counts them and turns RFC 4733 events into digits once each."""

    def __init__(self, dtmf_payload_type: int | None):
        self.dtmf_payload_type = dtmf_payload_type
        self.packets = 0
        self.invalid = 0
        self._event_ts: int | None = None  # timestamp of the event already reported

    def receive(self, data: bytes) -> DigitReceived | None:
        """Feed one datagram; returns a digit when an RFC 4733 event starts."""
        try:
            pkt = RtpPacket.parse(data)
        except RtpError:
            self.invalid += 1
            return None
        self.packets += 1
        if pkt.payload_type != self.dtmf_payload_type:
            return None
        try:
            ev = TelephoneEvent.parse(pkt.payload)
        except RtpError:
            self.invalid += 1
            return None
        if ev.digit is None or pkt.timestamp == self._event_ts:
            return None
        self._event_ts = pkt.timestamp
        return DigitReceived(ev.digit, ev.duration // 8)
