"""What the sans-IO SIP core emits: packets to send and call events for the layer above."""
from __future__ import annotations

from dataclasses import dataclass

from .message import SipRequest

Address = tuple[str, int]


@dataclass(frozen=True)
class Transmit:
    """Send `data` to `addr` over the transport the message came in on."""

    data: bytes
    addr: Address


@dataclass(frozen=True)
class IncomingCall:
    """A new INVITE: the layer above must ring, answer or reject it."""

    call_id: str
    request: SipRequest
    source: Address


@dataclass(frozen=True)
class CallConfirmed:
    """The ACK for our 2xx arrived: media may flow both ways."""

    call_id: str


@dataclass(frozen=True)
class CallEnded:
    """The dialog is over. `by` is "remote" or "local"; `reason` says why (BYE, CANCEL, timer H ...)."""

    call_id: str
    by: str
    reason: str
    status: int = 0


@dataclass(frozen=True)
class DtmfInfo:
    """A digit signalled by SIP INFO (application/dtmf-relay)."""

    call_id: str
    digit: str
    duration_ms: int


@dataclass(frozen=True)
class MalformedMessage:
    """A datagram that did not parse; answered with 400 when it could be, else dropped."""

    source: Address
    reason: str
    answered: bool
