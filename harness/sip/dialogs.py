"""Dialogs (RFC 3261 §12) and the INVITE session each one carries, for both roles.

`CALL_TRANSITIONS` is the whole life of a call; `SipEndpoint` applies it with `Call.move`
and does what each transition implies (the comments say what).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .events import Address
from .message import SipRequest, SipResponse
from .transactions import ClientInvite, ServerInvite
from .uri import tag_of, uri_of, with_tag

#: (state, input) -> next state. UAS states: incoming, answered, hangup-pending; UAC states:
#: calling, early, cancelling; both: confirmed, ending, ended. Inputs are received messages
#: ("1xx", "2xx", "3xx-6xx" to our INVITE, "ACK", "BYE", "CANCEL", "re-INVITE", "BYE final"
#: to our BYE), commands from above ("ring", "answer", "reject", "hangup") and timeouts.
CALL_TRANSITIONS = {
    ("incoming", "ring"): "incoming",  # 18x
    ("incoming", "answer"): "answered",  # 200 with our SDP, retransmitted until the ACK
    ("incoming", "reject"): "ended",  # the final response given
    ("incoming", "hangup"): "ended",  # 480
    ("incoming", "CANCEL"): "ended",  # 200 to the CANCEL, 487 to the INVITE
    ("incoming", "BYE"): "ended",  # 200 to the BYE, 487 to the INVITE (§15.1.2)
    ("answered", "ACK"): "confirmed",
    ("answered", "BYE"): "ended",
    ("answered", "hangup"): "hangup-pending",  # no BYE before the ACK (§15)
    ("answered", "timer H"): "ending",  # no ACK: BYE
    ("hangup-pending", "ACK"): "ending",  # BYE
    ("hangup-pending", "timer H"): "ending",  # BYE
    ("hangup-pending", "BYE"): "ended",

    ("calling", "1xx"): "early",
    ("calling", "2xx"): "confirmed",  # ACK
    ("calling", "3xx-6xx"): "ended",  # the transaction ACKs it
    ("calling", "timeout"): "ended",  # timer B
    ("calling", "hangup"): "cancelling",  # CANCEL once a provisional response arrives (§9.1)
    ("early", "1xx"): "early",
    ("early", "2xx"): "confirmed",  # ACK
    ("early", "3xx-6xx"): "ended",
    ("early", "hangup"): "cancelling",  # CANCEL
    ("cancelling", "1xx"): "cancelling",  # the CANCEL held back goes out
    ("cancelling", "2xx"): "ending",  # the answer crossed our CANCEL: ACK, then BYE
    ("cancelling", "3xx-6xx"): "ended",  # normally 487
    ("cancelling", "timeout"): "ended",  # timer B, re-armed by the CANCEL

    ("confirmed", "re-INVITE"): "confirmed",  # 200 with our answer
    ("confirmed", "hangup"): "ending",  # BYE
    ("confirmed", "timer H"): "ending",  # no ACK for a re-INVITE's 200: BYE
    ("confirmed", "BYE"): "ended",
    ("ending", "BYE"): "ended",  # both sides hung up at once
    ("ending", "BYE final"): "ended",
    ("ending", "timeout"): "ended",  # timer F on our BYE
}


@dataclass
class Dialog:
    """What every request inside a dialog is built from: the tagged From/To values, the
    remote target and route set, and both CSeq counters."""

    sip_call_id: str
    local: str
    remote: str
    remote_target: str
    route_set: list[str]
    local_cseq: int
    remote_cseq: int | None = None

    @classmethod
    def for_uas(cls, invite: SipRequest, local_tag: str) -> "Dialog":
        """The dialog our responses to `invite` create (§12.1.1)."""
        contact = invite.headers.get("contact")
        return cls(invite.call_id, with_tag(invite.headers.get("to"), local_tag),
                   invite.headers.get("from"), uri_of(contact or invite.headers.get("from")),
                   invite.headers.get_all("record-route"), 0, invite.cseq[0])

    @classmethod
    def for_uac(cls, invite: SipRequest, resp: SipResponse) -> "Dialog":
        """The dialog a 2xx to our `invite` creates (§12.1.2): the route set reversed."""
        contact = resp.headers.get("contact")
        return cls(invite.call_id, invite.headers.get("from"), resp.headers.get("to"),
                   uri_of(contact) if contact else invite.uri,
                   list(reversed(resp.headers.get_all("record-route"))), invite.cseq[0])

    @property
    def local_tag(self) -> str | None:
        return tag_of(self.local)

    @property
    def remote_tag(self) -> str | None:
        return tag_of(self.remote)

    def matches(self, req: SipRequest) -> bool:
        """Whether `req` belongs to this dialog (Call-ID and both tags)."""
        return (req.call_id == self.sip_call_id and tag_of(req.headers.get("to")) == self.local_tag
                and tag_of(req.headers.get("from")) == self.remote_tag)

    def accept_remote_cseq(self, number: int) -> bool:
        """Record a new request's CSeq; False when it is out of order (§12.2.2: 500)."""
        if self.remote_cseq is not None and number <= self.remote_cseq:
            return False
        self.remote_cseq = number
        return True

    def refresh_target(self, req: SipRequest) -> None:
        """A target refresh request (re-INVITE) may move the remote target (§12.2.2)."""
        contact = req.headers.get("contact")
        if contact:
            self.remote_target = uri_of(contact)

    def request(self, method: str, via: str, cseq: int | None = None) -> SipRequest:
        """A request inside the dialog (§12.2.1.1, loose routing); a new CSeq unless given."""
        if cseq is None:
            self.local_cseq += 1
            cseq = self.local_cseq
        req = SipRequest(method=method, uri=self.remote_target)
        h = req.headers
        h.add("Via", via)
        for route in self.route_set:
            h.add("Route", route)
        h.add("Max-Forwards", "70")
        h.add("From", self.local)
        h.add("To", self.remote)
        h.add("Call-ID", self.sip_call_id)
        h.add("CSeq", f"{cseq} {method}")
        return req


@dataclass
class SipCall:
    """One INVITE session, received (`role` "uas") or placed ("uac"), and its dialog.

    `peer` is where its requests and ACKs go: the address the INVITE came from, or the one
    ours went to. `unacked` holds our 2xx responses (to the INVITE or a re-INVITE) still
    waiting for their ACK, by CSeq number.
    """

    sip_call_id: str
    role: str
    peer: Address
    invite: SipRequest
    invite_tx: ServerInvite | ClientInvite
    state: str
    dialog: Dialog | None = None
    local_sdp: bytes = b""
    codec: str | None = None
    unacked: dict[int, ServerInvite] = field(default_factory=dict)
    ack: bytes | None = None
    cancel_sent: bool = False
    reported: bool = False

    def can(self, event: str) -> bool:
        return (self.state, event) in CALL_TRANSITIONS

    def move(self, event: str) -> bool:
        """Apply `event` when the table allows it; False (and no change) otherwise."""
        nxt = CALL_TRANSITIONS.get((self.state, event))
        if nxt is None:
            return False
        self.state = nxt
        return True
