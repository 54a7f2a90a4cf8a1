"""The sans-IO SIP user agent (RFC 3261): bytes and time in, packets and events out.

One `SipEndpoint` serves every call of one transport ("UDP" or "TCP"), in both roles: calls
it receives (`uas.py`) and calls it places (`uac.py`). This module takes the input apart:
framing (TCP), parsing and the 400/513 answers to bad input, transactions
(`transactions.py`), request checks (405/416/420/481/501) and the requests of either role
inside a dialog: BYE, re-INVITE (hold and resume), INFO (DTMF) and OPTIONS. An INVITE whose
body is not SDP gets 415 with Accept, one whose Accept excludes SDP 406. Nothing here
touches a socket or reads a clock: `now` is always passed in.
"""
from __future__ import annotations

import secrets

from .dialogs import SipCall
from .events import (Address, CallEnded, DtmfInfo, MalformedMessage, MediaUpdated, Transmit)
from .framing import StreamFramer
from .message import (MAX_MESSAGE_BYTES, REASONS, SipParseError, SipRequest, SipResponse,
                      parse_message, salvage_request)
from .sdp import SdpError, answer_reoffer, parse_sdp
from .transactions import (ServerInvite, ServerNonInvite, ServerTransaction, Timers,
                           TransactionLayer, response_class)
from .uac import UacRole
from .uas import UasRole
from .uri import NameAddr, UriError, tag_of, uri_of
from .via import stamp_received, top_via

__all__ = ["SipEndpoint", "Timers", "uri_of"]

#: Known methods we do not implement: 405 with Allow. Anything else unknown: 501.
NOT_ALLOWED = {"REGISTER", "SUBSCRIBE", "NOTIFY", "PUBLISH", "MESSAGE", "REFER", "UPDATE", "PRACK"}
#: Option tags we implement (none): a Require naming any other gets 420.
SUPPORTED: frozenset[str] = frozenset()
ACCEPT = "application/sdp, application/dtmf-relay, application/dtmf"
SDP = "application/sdp"


def new_branch() -> str:
    return "z9hG4bK" + secrets.token_hex(8)


class SipEndpoint(UasRole, UacRole):
    """Every call of one transport (`transport` is "UDP" or "TCP"); T1, T2, T4 in `timers`."""

    METHODS = ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO")
    ALLOW = ", ".join(METHODS)

    def __init__(self, host: str, port: int, transport: str = "UDP",
                 user_agent: str = "sip-harness", timers: Timers = Timers(),
                 max_message_bytes: int = MAX_MESSAGE_BYTES):
        self.host, self.port, self.transport = host, port, transport.upper()
        self.user_agent = user_agent
        self.max_message_bytes = max_message_bytes
        self._reliable = self.transport != "UDP"
        self._outbox: list[Transmit] = []
        self._events: list[object] = []
        self._calls: dict[str, SipCall] = {}
        self._framers: dict[Address, StreamFramer] = {}
        self._tx = TransactionLayer(timers, self._reliable, self._outbox, self._on_ack_timeout)
        self.malformed_count = 0

    @property
    def timers(self) -> Timers:
        return self._tx.timers

    @timers.setter
    def timers(self, timers: Timers) -> None:
        """Every timer armed from now on uses the new values."""
        self._tx.timers = timers

    @property
    def contact(self) -> str:
        return f"<sip:sma@{self.host}:{self.port};transport={self.transport.lower()}>"

    # ---- inputs -----------------------------------------------------------------------
    def receive(self, data: bytes, source: Address, now: float) -> None:
        """Feed a datagram (UDP), or the next bytes of the connection with `source` (TCP)."""
        if not self._reliable:
            self._receive_message(data, source, now)
            return
        framer = self._framers.setdefault(source, StreamFramer(self.max_message_bytes))
        for message in framer.feed(data):
            self._receive_message(message, source, now)
        if framer.error is not None:
            self._refuse(framer.buffer, source, framer.error)
            self._outbox.append(Transmit(b"", source, close=True))
            del self._framers[source]

    def stream_closed(self, source: Address) -> None:
        """The TCP connection with `source` is gone: forget its partial input."""
        self._framers.pop(source, None)

    def buffered(self, source: Address) -> int:
        """Bytes of an incomplete message from `source` held so far (TCP)."""
        framer = self._framers.get(source)
        return len(framer.buffer) if framer is not None else 0

    def serves(self, source: Address) -> bool:
        """Whether a call not yet ended uses `source` as its peer."""
        return any(call.peer == source for call in self._calls.values())

    def handle_timers(self, now: float) -> None:
        """Fire every timer that is due at `now`."""
        self._tx.handle_timers(now)

    def next_deadline(self) -> float | None:
        """The earliest time `handle_timers` has work to do, or None."""
        return self._tx.next_deadline()

    # ---- commands from the layer above (ring, answer, reject: uas.py; invite: uac.py) ----
    def hangup(self, sip_call_id: str, now: float) -> None:
        """End a call from our side: BYE once answered, 480 to an INVITE we have not
        answered, CANCEL for an INVITE of ours still unanswered."""
        call = self._calls.get(sip_call_id)
        was = call.state if call else None
        if call is None or not call.move("hangup"):
            return
        if was == "incoming":
            self._final(call, 480, now)
        elif call.state == "ending":
            self._send_bye(call, now)
        elif call.state == "cancelling" and was == "early":
            self._cancel(call, now)

    def dialog_state(self, sip_call_id: str) -> str | None:
        call = self._calls.get(sip_call_id)
        return call.state if call else None

    def active_dialogs(self) -> int:
        """Calls not yet ended (a leak check for tests and the runner)."""
        return len(self._calls)

    def active_transactions(self) -> int:
        return len(self._tx)

    # ---- outputs ----------------------------------------------------------------------
    def take_transmits(self) -> list[Transmit]:
        out = self._outbox[:]
        self._outbox.clear()
        return out

    def take_events(self) -> list[object]:
        out, self._events = self._events, []
        return out

    # ---- parsing and bad input ----------------------------------------------------------
    def _receive_message(self, data: bytes, source: Address, now: float) -> None:
        if not data.strip():
            return  # keep-alive
        try:
            msg = parse_message(data, stream=self._reliable, max_bytes=self.max_message_bytes)
            _check(msg)
        except SipParseError as exc:
            self._refuse(data, source, exc)
            return
        if isinstance(msg, SipRequest):
            stamp_received(msg.headers, source)
            self._on_request(msg, source, now)
        else:
            self._on_response(msg, now)

    def _refuse(self, data: bytes, source: Address, exc: SipParseError) -> None:
        """Count bad input; answer it (400, 513) when it is a request we can answer."""
        self.malformed_count += 1
        req = salvage_request(data)
        answered = req is not None and req.method != "ACK" and bool(req.headers.get_all("via"))
        if answered:
            reason = f"{REASONS[exc.status]} ({exc.reason})"
            reason = "".join(c if " " <= c <= "~" else "?" for c in reason)[:160]
            self._outbox.append(Transmit(req.reply(exc.status, reason, self._new_tag()).serialize(),
                                         source))
        self._events.append(MalformedMessage(source, exc.reason, answered, exc.kind))

    # ---- requests -----------------------------------------------------------------------
    def _on_request(self, req: SipRequest, source: Address, now: float) -> None:
        tx = self._tx.server(req)
        if req.method == "ACK":
            if tx is not None and tx.state == "completed":
                tx.ack(now)  # the ACK of a non-2xx response
            else:
                self._on_ack(req, now)
            return
        if tx is not None:
            tx.retransmitted()
            return
        tx = self._tx.serve(req, source)
        refusal = self._refusal(req)
        if refusal is not None:
            status, extra = refusal
            self._respond(tx, status, now, headers=extra)
            return
        if req.method == "CANCEL":
            self._on_cancel(req, tx, now)
        elif req.method == "OPTIONS":
            self._respond(tx, 200, now, headers=[("Accept", ACCEPT)])
        elif req.method == "INVITE" and tag_of(req.headers.get("to")) is None:
            self._new_invite(req, source, tx, now)
        else:
            self._in_dialog(req, tx, now)

    def _refusal(self, req: SipRequest) -> tuple[int, list[tuple[str, str]]] | None:
        """The checks of RFC 3261 §8.2.1–8.2.2: method, URI scheme, Require."""
        if req.method in NOT_ALLOWED:
            return 405, []
        if req.method not in self.METHODS:
            return 501, []
        if not req.uri.lower().startswith(("sip:", "sips:")):
            return 416, []
        unsupported = [t for t in req.headers.get_all("require") if t.lower() not in SUPPORTED]
        if unsupported and req.method != "CANCEL":
            return 420, [("Unsupported", ", ".join(unsupported))]
        if req.method == "INVITE":
            return _session_refusal(req)
        return None

    def _in_dialog(self, req: SipRequest, tx: ServerTransaction, now: float) -> None:
        """BYE, INFO or re-INVITE: they need the dialog and a CSeq in order."""
        call = self._calls.get(req.call_id)
        if call is None or call.dialog is None or not call.dialog.matches(req):
            self._respond(tx, 481, now)
            return
        if not call.dialog.accept_remote_cseq(req.cseq[0]):
            self._respond(tx, 500, now, reason="CSeq Out of Order")
            return
        {"BYE": self._on_bye, "INFO": self._on_info, "INVITE": self._on_reinvite}[req.method](
            call, req, tx, now)

    def _on_bye(self, call: SipCall, req: SipRequest, tx: ServerNonInvite, now: float) -> None:
        self._respond(tx, 200, now)
        was = call.state
        if not call.move("BYE"):
            return
        if was == "incoming":
            self._respond(call.invite_tx, 487, now, to_tag=call.dialog.local_tag)
        for pending in call.unacked.values():
            pending.ack(now)  # a BYE stops our 2xx retransmissions as an ACK would
        self._end(call, "remote", "BYE")

    def _on_info(self, call: SipCall, req: SipRequest, tx: ServerNonInvite, now: float) -> None:
        ctype = (req.headers.get("content-type") or "").split(";")[0].strip().lower()
        text = req.body.decode("utf-8", "replace")
        if ctype == "application/dtmf-relay":
            fields = {k.strip().lower(): v.strip() for k, _, v in
                      (line.partition("=") for line in text.splitlines())}
            digit, duration = fields.get("signal", ""), fields.get("duration", "")
        elif ctype == "application/dtmf":
            digit, duration = text.strip(), ""
        elif req.body:
            self._respond(tx, 415, now, headers=[("Accept", ACCEPT)])
            return
        else:
            digit, duration = "", ""
        self._respond(tx, 200, now)
        if len(digit) == 1 and digit.upper() in "0123456789*#ABCD":
            ms = int(duration) if duration.isascii() and duration.isdigit() and len(duration) <= 9 else 0
            self._events.append(DtmfInfo(call.sip_call_id, digit.upper(), ms))

    def _on_reinvite(self, call: SipCall, req: SipRequest, tx: ServerInvite, now: float) -> None:
        """Answer a re-INVITE ourselves within the session agreed (RFC 3264 §8): hold and
        resume, a new remote address; the same codec or 488. No offer: ours again."""
        if not call.can("re-INVITE"):
            self._respond(tx, 491, now)
            return
        if req.body:
            try:
                if call.codec is None:
                    raise SdpError("no session to modify")
                audio, answer = answer_reoffer(parse_sdp(req.body), call.local_sdp, call.codec)
            except SdpError as exc:
                self._respond(tx, 488, now, reason=f"Not Acceptable Here ({exc})"[:160])
                return
            call.local_sdp = answer
        call.move("re-INVITE")
        call.dialog.refresh_target(req)
        call.unacked[req.cseq[0]] = tx
        self._respond(tx, 200, now, to_tag=call.dialog.local_tag, body=call.local_sdp)
        if req.body:
            self._events.append(MediaUpdated(call.sip_call_id, req.body, audio, not audio.sending))

    # ---- responses ----------------------------------------------------------------------
    def _on_response(self, resp: SipResponse, now: float) -> None:
        tx = self._tx.client(resp)
        if tx is not None:
            tx.receive(resp, now)
        elif response_class(resp.status) == "2xx":
            self._resend_ack(resp)

    # ---- helpers ------------------------------------------------------------------------
    def _respond(self, tx: ServerTransaction, status: int, now: float | None = None, *,
                 reason: str | None = None, to_tag: str | None = None, body: bytes = b"",
                 headers: list[tuple[str, str]] = ()) -> None:
        """Answer `tx` (`now` is needed for final responses, which start timers)."""
        req = tx.request
        resp = req.reply(status, reason, to_tag or self._new_tag())
        h = resp.headers
        if req.method == "INVITE" and 100 < status < 300:
            h.add("Contact", self.contact)
            for rr in req.headers.get_all("record-route"):
                h.add("Record-Route", rr)
        if status == 405 or (status == 200 and req.method in ("INVITE", "OPTIONS")):
            h.add("Allow", self.ALLOW)
        for name, value in headers:
            h.add(name, value)
        h.add("Server", self.user_agent)
        if body:
            h.add("Content-Type", "application/sdp")
            resp.body = body
        if status < 200:
            tx.provisional(resp)
        else:
            tx.respond(resp, now)

    def _send_bye(self, call: SipCall, now: float) -> None:
        req = call.dialog.request("BYE", self._via())
        req.headers.add("User-Agent", self.user_agent)
        self._tx.send(req, call.peer, now,
                      lambda resp, t: self._bye_done(call, "BYE final", "BYE", resp.status),
                      lambda timer, t: self._bye_done(call, "timeout",
                                                      "BYE not answered (timer F)", 408))

    def _bye_done(self, call: SipCall, event: str, reason: str, status: int) -> None:
        if call.move(event):
            self._end(call, "local", reason, status)

    def _end(self, call: SipCall, by: str, reason: str, status: int = 0) -> None:
        """The call reached "ended": report it (once) and forget it; its transactions
        live on to absorb retransmissions."""
        self._report(call, by, reason, status)
        self._calls.pop(call.sip_call_id, None)

    def _report(self, call: SipCall, by: str, reason: str, status: int) -> None:
        if not call.reported:
            call.reported = True
            self._events.append(CallEnded(call.sip_call_id, by, reason, status))

    def _via(self) -> str:
        return f"SIP/2.0/{self.transport} {self.host}:{self.port};branch={new_branch()};rport"

    @staticmethod
    def _new_tag() -> str:
        return secrets.token_hex(6)


def _media_type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def _session_refusal(req: SipRequest) -> tuple[int, list[tuple[str, str]]] | None:
    """An INVITE's body must be SDP (RFC 3261 §8.2.3: 415 with Accept, and Accept-Encoding
    for an encoding we cannot undo) and its Accept must let us answer with SDP (§21.4.7: 406;
    RFC 4475 §3.4.4, §3.4.14)."""
    encoding = [e.lower() for e in req.headers.get_all("content-encoding")]
    if req.body and any(e != "identity" for e in encoding):
        return 415, [("Accept", SDP), ("Accept-Encoding", "identity")]
    if req.body and _media_type(req.headers.get("content-type") or "") != SDP:
        return 415, [("Accept", SDP)]
    if "accept" in req.headers:
        ranges = {_media_type(r) for r in req.headers.get_all("accept")}
        if not ranges & {SDP, "application/*", "*/*"}:
            return 406, [("Accept", SDP)]
    return None


def _check(msg: SipRequest | SipResponse) -> None:
    """What parse_message leaves to the UA: a usable top Via, From, To and Contact."""
    top_via(msg)
    for name in ("from", "to", "contact"):
        value = msg.headers.get(name)
        try:
            if value is not None and value.strip() != "*":
                NameAddr.parse(value)
        except UriError as exc:
            raise SipParseError(f"malformed {name.capitalize()} header: {exc}",
                                kind=f"malformed {name.capitalize()} header") from None
