"""The UAC role of `SipEndpoint`: calls the SMA places itself (CreateSipMediaApplicationCall,
CallAndBridge), RFC 3261 §13.2.

`invite` sends our offer; provisional responses become `CallProgress`, a 2xx is ACKed and
becomes `CallAnswered`, a non-2xx (ACKed by its transaction) or timer B becomes `CallEnded`.
`hangup` before the answer sends CANCEL (held back until a provisional response, §9.1).
"""
from __future__ import annotations

import secrets
from collections.abc import Iterable

from .dialogs import SipCall, Dialog
from .events import Address, CallAnswered, CallProgress, Transmit
from .message import SipRequest, SipResponse, sendable_header
from .sdp import SdpError, parse_sdp, read_answer
from .transactions import response_class
from .uri import SipUri


class UacRole:
    """Mixed into `SipEndpoint`; relies on its `_calls`, `_tx`, `_events` and helpers."""

    def invite(self, target: str, sdp: bytes, now: float, *, from_uri: str | None = None,
               destination: Address | None = None,
               headers: Iterable[tuple[str, str]] = ()) -> str:
        """Place a call to the SIP URI `target` with our SDP offer; returns its Call-ID.

        Sent to `destination`, else to the URI's own host and port (no DNS). `headers` are
        added as given (e.g. the X- headers of CreateSipMediaApplicationCall); ValueError for
        one that is not a single header line.
        """
        headers = list(headers)
        bad = [name for name, value in headers if not sendable_header(name, value)]
        if bad:
            raise ValueError(f"headers that are not one SIP header line: {bad!r}")
        peer = destination or SipUri.parse(target).address
        sip_call_id = f"{secrets.token_hex(10)}@{self.host}"
        req = SipRequest(method="INVITE", uri=target, body=sdp)
        h = req.headers
        h.add("Via", self._via())
        h.add("Max-Forwards", "70")
        h.add("From", f"<{from_uri or f'sip:sma@{self.host}'}>;tag={self._new_tag()}")
        h.add("To", f"<{target}>")
        h.add("Call-ID", sip_call_id)
        h.add("CSeq", "1 INVITE")
        h.add("Contact", self.contact)
        h.add("Allow", self.ALLOW)
        h.add("User-Agent", self.user_agent)
        for name, value in headers:
            h.add(name, value)
        h.add("Content-Type", "application/sdp")
        call = SipCall(sip_call_id, "uac", peer, req, None, "calling", local_sdp=sdp)
        call.invite_tx = self._tx.send(
            req, peer, now, lambda resp, t: self._on_invite_response(call, resp, t),
            lambda timer, t: self._on_invite_timeout(call, t))
        self._calls[sip_call_id] = call
        return sip_call_id

    def _cancel(self, call: SipCall, now: float) -> None:
        """CANCEL our pending INVITE (§9.1): same Request-URI, Via, From, To and CSeq number."""
        call.cancel_sent = True
        inv = call.invite.headers
        req = SipRequest(method="CANCEL", uri=call.invite.uri)
        h = req.headers
        h.add("Via", inv.get_all("via")[0])
        for route in inv.get_all("route"):
            h.add("Route", route)
        h.add("Max-Forwards", "70")
        for name in ("From", "To", "Call-ID"):
            h.add(name, inv.get(name))
        h.add("CSeq", f"{call.invite.cseq[0]} CANCEL")
        self._tx.send(req, call.peer, now, _ignore, _ignore)
        call.invite_tx.cancelled(now)

    def _on_invite_response(self, call: SipCall, resp: SipResponse, now: float) -> None:
        kind = response_class(resp.status)
        if not call.move(kind):
            return
        if kind == "1xx":
            if call.state == "cancelling" and not call.cancel_sent:
                self._cancel(call, now)
            elif call.state == "early" and resp.status > 100:
                self._events.append(CallProgress(call.sip_call_id, resp.status, resp.reason, resp.body))
        elif kind == "3xx-6xx":
            if call.cancel_sent and resp.status == 487:
                self._end(call, "local", "CANCEL", 487)
            else:
                self._end(call, "remote", f"{resp.status} {resp.reason}".strip(), resp.status)
        else:
            self._on_invite_2xx(call, resp, now)

    def _on_invite_2xx(self, call: SipCall, resp: SipResponse, now: float) -> None:
        call.dialog = Dialog.for_uac(call.invite, resp)
        call.ack = call.dialog.request("ACK", self._via(), cseq=call.invite.cseq[0]).serialize()
        self._outbox.append(Transmit(call.ack, call.peer))
        if call.state == "ending":  # our CANCEL lost the race
            self._send_bye(call, now)
            return
        try:
            audio = read_answer(parse_sdp(call.local_sdp), parse_sdp(resp.body))
        except SdpError as exc:
            call.move("hangup")
            self._report(call, "local", f"unusable SDP answer: {exc}", 488)
            self._send_bye(call, now)
            return
        call.codec = audio.codec
        self._events.append(CallAnswered(call.sip_call_id, resp, resp.body, audio))

    def _on_invite_timeout(self, call: SipCall, now: float) -> None:
        reason = "CANCEL not answered (timer B)" if call.cancel_sent else "no answer (timer B)"
        if call.move("timeout"):
            self._end(call, "local", reason, 408)

    def _resend_ack(self, resp: SipResponse) -> None:
        """A 2xx retransmitted after its transaction ended: our ACK got lost (§13.2.2.4)."""
        call = self._calls.get(resp.call_id)
        if call is not None and call.ack is not None and resp.cseq == (call.invite.cseq[0], "INVITE"):
            self._outbox.append(Transmit(call.ack, call.peer))


def _ignore(*_args) -> None:
    """The UA core needs nothing from the CANCEL's own transaction: the INVITE's outcome
    tells the rest."""
