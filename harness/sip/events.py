"""What the sans-IO SIP core emits: packets to send and call events for the layer above.

Either role: `CallEnded`, `DtmfInfo`, `MediaUpdated`. UAS role (calls we receive):
`IncomingCall`, `CallConfirmed`. UAC role (calls we place with `SipEndpoint.invite`):
`CallProgress`, `CallAnswered`, and `CallEnded` for a failure.
"""
from __future__ import annotations

from dataclasses import dataclass

from .message import SipRequest, SipResponse
from .sdp import AudioAnswer

Address = tuple[str, int]


@dataclass(frozen=True)
class Transmit:
    """Send `data` to `addr` over the endpoint's transport; on TCP, `close` the connection
    afterwards (its byte stream could not be framed)."""

    data: bytes
    addr: Address
    close: bool = False


@dataclass(frozen=True)
class IncomingCall:
    """A new INVITE: the layer above must ring, answer or reject it."""

    sip_call_id: str
    request: SipRequest
    source: Address


@dataclass(frozen=True)
class CallConfirmed:
    """The ACK for our 2xx arrived: media may flow both ways."""

    sip_call_id: str


@dataclass(frozen=True)
class CallProgress:
    """A provisional response (180 Ringing, 183 with early-media SDP) to an INVITE we sent."""

    sip_call_id: str
    status: int
    reason: str
    sdp: bytes


@dataclass(frozen=True)
class CallAnswered:
    """A 2xx to an INVITE we sent; it has been ACKed. `audio` is what the answer `sdp` chose
    from our offer (a call whose answer is unusable is hung up and ends instead)."""

    sip_call_id: str
    response: SipResponse
    sdp: bytes
    audio: AudioAnswer


@dataclass(frozen=True)
class MediaUpdated:
    """The remote re-INVITEd (hold, resume, a new address) and we answered 200 OK.

    `sdp` is the remote's new offer, `audio` the session now agreed (its `direction` is ours:
    `recvonly` or `inactive` while the remote holds the call); `held` means we must stop
    sending media until the next update.
    """

    sip_call_id: str
    sdp: bytes
    audio: AudioAnswer
    held: bool


@dataclass(frozen=True)
class CallEnded:
    """The dialog is over. `by` is "remote" or "local"; `reason` says why (BYE, CANCEL, timer H ...)."""

    sip_call_id: str
    by: str
    reason: str
    status: int = 0


@dataclass(frozen=True)
class DtmfInfo:
    """A digit signalled by SIP INFO (application/dtmf-relay or application/dtmf)."""

    sip_call_id: str
    digit: str
    duration_ms: int


@dataclass(frozen=True)
class MalformedMessage:
    """A message that did not parse; answered (400, 505 or 513) when it could be, else
    dropped. `kind` is the reason without the message's own bytes (for counting)."""

    source: Address
    reason: str
    answered: bool
    kind: str = ""
