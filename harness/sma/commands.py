"""What the SMA engine asks its edges to do. The engine never performs I/O itself."""
from __future__ import annotations

from dataclasses import dataclass


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
    """Play the object `bucket`/`key` `repeat` times on the leg; report with `token`."""

    call_id: str
    bucket: str
    key: str
    repeat: int
    token: int


@dataclass(frozen=True)
class PlaySilence:
    """Send silence for `duration_ms` on the leg (the Pause action); report with `token`."""

    call_id: str
    duration_ms: int
    token: int


@dataclass(frozen=True)
class StopMedia:
    """Stop whatever the leg is playing, at once."""

    call_id: str


@dataclass(frozen=True)
class HangupLeg:
    """End the leg: BYE when answered, else a final response of `sip_code` (0 = normal)."""

    call_id: str
    sip_code: int


@dataclass(frozen=True)
class TransactionEnded:
    """Every leg is gone and no invocation is outstanding; the transaction can be dropped."""

    transaction_id: str
