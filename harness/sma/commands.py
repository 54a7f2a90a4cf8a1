"""What the SMA engine asks its edges to do. The engine never performs I/O itself.

Media commands carry a `token`; the edge reports the end of that media with
`CallTransaction.media_done(token, ...)`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .model import Leg


@dataclass(frozen=True)
class Invoke:
    """Invoke the handler with `event`; `ignore_response` for informational events."""

    transaction_id: str
    sequence: int
    event: dict
    ignore_response: bool = False


@dataclass(frozen=True)
class Ring:
    call_id: str


@dataclass(frozen=True)
class Answer:
    """Answer the inbound leg (200 OK with our SDP)."""

    call_id: str


@dataclass(frozen=True)
class PlayAudio:
    """Play the object `bucket`/`key` `repeat` times on the leg."""

    call_id: str
    bucket: str
    key: str
    repeat: int
    token: int


@dataclass(frozen=True)
class PlaySilence:
    """Send silence for `duration_ms` on the leg (the Pause action)."""

    call_id: str
    duration_ms: int
    token: int


@dataclass(frozen=True)
class Speak:
    """Speak `speech` (text, voice, language, engine, text_type) on the leg."""

    call_id: str
    speech: dict
    token: int


@dataclass(frozen=True)
class SendDigits:
    """Send DTMF `digits` (RFC 4733) with `tone_ms` per digit; a comma pauses 500 ms."""

    call_id: str
    digits: str
    tone_ms: int
    token: int


@dataclass(frozen=True)
class StopMedia:
    """Stop whatever the leg is playing or sending, at once."""

    call_id: str


@dataclass(frozen=True)
class StartRecordAudio:
    """Record what the leg hears from the caller into `bucket`/`key`; the media edge ends it
    with `media_done(token, result={"reason": "silence"})` when `silence_s` of silence pass."""

    call_id: str
    bucket: str
    key: str
    silence_s: int | None
    silence_threshold: int
    token: int


@dataclass(frozen=True)
class StopRecordAudio:
    call_id: str
    token: int


@dataclass(frozen=True)
class PlaceCall:
    """Place the outbound SIP leg `leg` (CallAndBridge's LEG-B, or CreateSipMediaApplicationCall's
    LEG-A) to `uri`."""

    leg: Leg
    endpoint_type: str  # "PSTN" or "AWS"
    uri: str
    arn: str | None = None
    sip_headers: dict = field(default_factory=dict)

    @property
    def call_id(self) -> str:
        return self.leg.call_id

    @property
    def to(self) -> str:
        return self.leg.to

    @property
    def from_(self) -> str:
        return self.leg.from_


@dataclass(frozen=True)
class CancelCall:
    """Give up on an outbound leg that has not answered."""

    call_id: str


@dataclass(frozen=True)
class Bridge:
    """Connect the media of two legs both ways."""

    call_id_a: str
    call_id_b: str


@dataclass(frozen=True)
class CallRecording:
    """Start, stop, pause or resume the call recording of a leg (`operation`)."""

    call_id: str
    operation: str  # "start", "stop", "pause", "resume"
    track: str = "BOTH"
    bucket: str = ""
    key: str = ""
    token: int = 0  # "start": the edge reports with media_done(token[, error]) once it is open


@dataclass(frozen=True)
class HangupLeg:
    """End the leg: BYE when answered, else a final response of `sip_code` (0 = normal)."""

    call_id: str
    sip_code: int


@dataclass(frozen=True)
class TransactionEnded:
    """Every leg is gone and no invocation is outstanding; the transaction can be dropped."""

    transaction_id: str
