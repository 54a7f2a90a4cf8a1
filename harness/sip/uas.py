"""The UAS role of `SipEndpoint`: calls we receive (RFC 3261 §13.3).

An INVITE gets 100 Trying and becomes an `IncomingCall`; the layer above then calls `ring`,
`answer` or `reject`. Our 2xx is retransmitted until the ACK (`CallConfirmed`); without one,
timer H ends the call with a BYE. A CANCEL before the answer gets 200, the INVITE 487.
"""
from __future__ import annotations

from .dialogs import SipCall, Dialog
from .events import Address, CallConfirmed, IncomingCall
from .message import SipRequest
from .sdp import SdpError, parse_sdp
from .transactions import ServerInvite, ServerNonInvite


class UasRole:
    """Mixed into `SipEndpoint`; relies on its `_calls`, `_tx`, `_events` and helpers."""

    def ring(self, sip_call_id: str, status: int = 180) -> None:
        """Send a provisional response (180 Ringing by default)."""
        call = self._calls.get(sip_call_id)
        if call is not None and call.role == "uas" and call.move("ring"):
            self._respond(call.invite_tx, status, to_tag=call.dialog.local_tag)

    def answer(self, sip_call_id: str, sdp: bytes, now: float) -> None:
        """Send 200 OK with `sdp`; retransmitted until the ACK arrives (UDP)."""
        call = self._calls.get(sip_call_id)
        if call is None or call.role != "uas" or not call.move("answer"):
            return
        call.local_sdp, call.codec = sdp, _first_codec(sdp)
        call.unacked[call.invite.cseq[0]] = call.invite_tx
        self._respond(call.invite_tx, 200, now, to_tag=call.dialog.local_tag, body=sdp)

    def reject(self, sip_call_id: str, status: int, now: float,
               headers: list[tuple[str, str]] = ()) -> None:
        """Refuse an unanswered INVITE with a final error response (with `headers`: a digest
        challenge, Retry-After on a 503)."""
        call = self._calls.get(sip_call_id)
        if call is not None and call.role == "uas" and call.move("reject"):
            self._final(call, status, now, headers)

    def _final(self, call: SipCall, status: int, now: float, headers: list[tuple[str, str]] = ()) -> None:
        """Our final error response to the INVITE; the call is over."""
        self._respond(call.invite_tx, status, now, to_tag=call.dialog.local_tag, headers=headers)
        self._end(call, "local", f"rejected {status}", status)

    def _new_invite(self, req: SipRequest, source: Address, tx: ServerInvite, now: float) -> None:
        if req.call_id in self._calls:  # same Call-ID, no To tag, another branch
            self._respond(tx, 482, now)
            return
        call = SipCall(req.call_id, "uas", source, req, tx, "incoming",
                       dialog=Dialog.for_uas(req, self._new_tag()))
        self._calls[req.call_id] = call
        self._respond(tx, 100)
        self._events.append(IncomingCall(req.call_id, req, source))

    def _on_cancel(self, req: SipRequest, tx: ServerNonInvite, now: float) -> None:
        invite_tx = self._tx.server(req, "INVITE")
        call = self._calls.get(req.call_id)
        if invite_tx is None or call is None or call.invite_tx is not invite_tx:
            self._respond(tx, 481, now)
            return
        self._respond(tx, 200, now, to_tag=call.dialog.local_tag)
        if call.move("CANCEL"):
            self._respond(invite_tx, 487, now, to_tag=call.dialog.local_tag)
            self._end(call, "remote", "CANCEL", 487)

    def _on_ack(self, req: SipRequest, now: float) -> None:
        """An ACK for one of our 2xx responses (initial INVITE or re-INVITE)."""
        call = self._calls.get(req.call_id)
        tx = call.unacked.pop(req.cseq[0], None) if call is not None else None
        if tx is None:
            return
        tx.ack(now)
        if tx is call.invite_tx and call.move("ACK"):
            if call.state == "confirmed":
                self._events.append(CallConfirmed(call.sip_call_id))
            else:  # the layer above hung up while we waited for this ACK
                self._send_bye(call, now)

    def _on_ack_timeout(self, tx: ServerInvite, now: float) -> None:
        """Timer H after one of our 2xx responses: end the session with a BYE (§13.3.1.4)."""
        call = self._calls.get(tx.request.call_id)
        if call is None or call.unacked.get(tx.request.cseq[0]) is not tx:
            return
        del call.unacked[tx.request.cseq[0]]
        hung_up = call.state == "hangup-pending"
        if call.move("timer H"):
            if not hung_up:
                self._report(call, "local", "no ACK (timer H)", 408)
            self._send_bye(call, now)


def _first_codec(sdp: bytes) -> str | None:
    """The codec of our own answer: its first audio format that is not telephone-event."""
    try:
        audio = parse_sdp(sdp).audio()
    except SdpError:
        return None
    names = [audio.codec_name(pt) for pt in audio.formats] if audio else []
    return next((n.upper() for n in names if n and n.lower() != "telephone-event"), None)
