"""The sans-IO SIP user agent server core (RFC 3261): bytes and time in, packets and events out.

One `SipEndpoint` serves every dialog of one transport. It answers INVITEs when told to,
retransmits 2xx responses until the ACK (timer G, gives up at timer H), sends BYE with
retransmission (timers E/F), answers CANCEL, BYE, OPTIONS and INFO, and rejects what it does
not support. Nothing here touches a socket or reads a clock: `now` is always passed in.
"""
from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass, field

from .events import (Address, CallConfirmed, CallEnded, DtmfInfo, IncomingCall,
                     MalformedMessage, Transmit)
from .message import SipParseError, SipRequest, SipResponse, parse_message

T1, T2 = 0.5, 4.0
ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO"
REASONS = {100: "Trying", 180: "Ringing", 183: "Session Progress", 200: "OK",
           400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 480: "Temporarily Unavailable",
           481: "Call/Transaction Does Not Exist", 486: "Busy Here", 487: "Request Terminated",
           488: "Not Acceptable Here", 500: "Server Internal Error", 501: "Not Implemented",
           503: "Service Unavailable", 603: "Decline"}
_SUPPORTED_ELSEWHERE = {"REGISTER", "SUBSCRIBE", "NOTIFY", "PUBLISH", "MESSAGE", "REFER",
                        "UPDATE", "PRACK"}


def new_tag() -> str:
    return secrets.token_hex(6)


def new_branch() -> str:
    return "z9hG4bK" + secrets.token_hex(8)


def uri_of(name_addr: str) -> str:
    """The URI inside a name-addr (`"x" <sip:a@b>;tag=1`) or an addr-spec."""
    if "<" in name_addr:
        return name_addr.split("<", 1)[1].split(">", 1)[0]
    return name_addr.split(";", 1)[0].strip()


def tag_of(name_addr: str) -> str | None:
    """The tag parameter of a From/To value, or None."""
    params = name_addr.rsplit(">", 1)[-1]
    for p in params.split(";")[1:]:
        k, _, v = p.partition("=")
        if k.strip().lower() == "tag":
            return v.strip()
    return None


@dataclass
class _Dialog:
    """One INVITE dialog where we are the UAS."""

    invite: SipRequest
    source: Address
    local_tag: str
    state: str = "proceeding"  # proceeding, answered, confirmed, ending, ended
    last_response: bytes | None = None
    retransmit_at: float | None = None
    retransmit_interval: float = T1
    give_up_at: float | None = None
    local_cseq: int = 0
    bye: bytes | None = None
    bye_branch: str = ""
    remote_target: str = ""
    route_set: list[str] = field(default_factory=list)
    ended_reason: str = ""
    reported: bool = False


class SipEndpoint:
    """All UAS dialogs of one transport (`transport` is "UDP" or "TCP")."""

    def __init__(self, host: str, port: int, transport: str = "UDP", user_agent: str = "sip-harness"):
        self.host, self.port, self.transport = host, port, transport.upper()
        self.user_agent = user_agent
        self._dialogs: dict[str, _Dialog] = {}
        self._outbox: list[Transmit] = []
        self._events: list[object] = []
        self._reliable = self.transport != "UDP"
        self.malformed_count = 0
        self._ids = itertools.count(1)

    # ---- inputs -----------------------------------------------------------------------
    def receive(self, data: bytes, source: Address, now: float) -> None:
        """Feed one datagram (or one framed stream message) received from `source`."""
        if not data.strip():
            return  # keep-alive CRLF
        try:
            msg = parse_message(data, stream=self._reliable)
        except SipParseError as exc:
            self.malformed_count += 1
            answered = self._answer_malformed(data, source, exc.reason)
            self._events.append(MalformedMessage(source, exc.reason, answered))
            return
        if isinstance(msg, SipRequest):
            self._on_request(msg, source, now)
        else:
            self._on_response(msg, now)

    def handle_timers(self, now: float) -> None:
        """Fire every timer that is due at `now`."""
        for call_id, d in list(self._dialogs.items()):
            if d.give_up_at is not None and now >= d.give_up_at:
                self._on_give_up(call_id, d, now)
            elif d.retransmit_at is not None and now >= d.retransmit_at:
                self._outbox.append(Transmit(d.bye if d.state == "ending" else d.last_response,
                                             d.source))
                d.retransmit_interval = min(d.retransmit_interval * 2, T2)
                d.retransmit_at = now + d.retransmit_interval

    def next_deadline(self) -> float | None:
        """The earliest time `handle_timers` has work to do, or None."""
        times = [t for d in self._dialogs.values() for t in (d.retransmit_at, d.give_up_at)
                 if t is not None]
        return min(times, default=None)

    # ---- commands from the layer above ------------------------------------------------
    def ring(self, call_id: str, status: int = 180) -> None:
        """Send a provisional response (180 Ringing by default)."""
        d = self._dialogs[call_id]
        if d.state == "proceeding":
            self._respond(d, status)

    def answer(self, call_id: str, sdp: bytes, now: float) -> None:
        """Send 200 OK with `sdp`; retransmitted until the ACK arrives (UDP)."""
        d = self._dialogs[call_id]
        if d.state != "proceeding":
            return
        d.state = "answered"
        self._respond(d, 200, body=sdp, content_type="application/sdp")
        self._arm_retransmit(d, now)

    def reject(self, call_id: str, status: int, now: float) -> None:
        """Refuse an unanswered INVITE with a final error response."""
        d = self._dialogs[call_id]
        if d.state != "proceeding":
            return
        self._respond(d, status)
        self._end(call_id, "local", f"rejected {status}", status)
        d.give_up_at = now + 64 * T1

    def hangup(self, call_id: str, now: float) -> None:
        """End the dialog from our side: BYE when answered, 480 (or nothing) otherwise."""
        d = self._dialogs.get(call_id)
        if d is None or d.state in ("ending", "ended"):
            return
        if d.state == "proceeding":
            self.reject(call_id, 480, now)
            return
        d.local_cseq += 1
        d.bye_branch = new_branch()
        req = SipRequest(method="BYE", uri=d.remote_target)
        h = req.headers
        h.add("Via", f"SIP/2.0/{self.transport} {self.host}:{self.port};branch={d.bye_branch};rport")
        for route in d.route_set:
            h.add("Route", route)
        h.add("Max-Forwards", "70")
        h.add("From", self._local_party(d))
        h.add("To", d.invite.headers.get("from"))
        h.add("Call-ID", call_id)
        h.add("CSeq", f"{d.local_cseq} BYE")
        h.add("User-Agent", self.user_agent)
        d.bye = req.serialize()
        d.state = "ending"
        self._outbox.append(Transmit(d.bye, d.source))
        self._arm_retransmit(d, now)

    def dialog_state(self, call_id: str) -> str | None:
        d = self._dialogs.get(call_id)
        return d.state if d else None

    def active_dialogs(self) -> int:
        """Dialogs not yet ended (a leak check for tests and the runner)."""
        return sum(1 for d in self._dialogs.values() if d.state != "ended")

    # ---- outputs ----------------------------------------------------------------------
    def take_transmits(self) -> list[Transmit]:
        out, self._outbox = self._outbox, []
        return out

    def take_events(self) -> list[object]:
        out, self._events = self._events, []
        return out

    # ---- internals --------------------------------------------------------------------
    def _local_party(self, d: _Dialog) -> str:
        to = d.invite.headers.get("to")
        return to if tag_of(to) else f"{to};tag={d.local_tag}"

    def _response(self, req: SipRequest, status: int, to_tag: str | None = None,
                  body: bytes = b"", content_type: str | None = None,
                  reason: str | None = None) -> SipResponse:
        resp = SipResponse(status=status, reason=reason or REASONS.get(status, "Unknown"))
        h = resp.headers
        for via in req.headers.get_all("via"):
            h.add("Via", via)
        to = req.headers.get("to")
        if to_tag and not tag_of(to) and status > 100:
            to = f"{to};tag={to_tag}"
        h.add("From", req.headers.get("from"))
        h.add("To", to)
        h.add("Call-ID", req.call_id)
        h.add("CSeq", req.headers.get("cseq"))
        if req.method == "INVITE" and 100 < status < 300:
            h.add("Contact", f"<sip:sma@{self.host}:{self.port};transport={self.transport.lower()}>")
            for rr in req.headers.get_all("record-route"):
                h.add("Record-Route", rr)
        if status == 405 or (status == 200 and req.method in ("INVITE", "OPTIONS")):
            h.add("Allow", ALLOW)
        h.add("User-Agent", self.user_agent)
        if content_type:
            h.add("Content-Type", content_type)
        resp.body = body
        return resp

    def _respond(self, d: _Dialog, status: int, body: bytes = b"", content_type: str | None = None) -> None:
        data = self._response(d.invite, status, d.local_tag, body, content_type).serialize()
        d.last_response = data
        self._outbox.append(Transmit(data, d.source))

    def _reply(self, req: SipRequest, source: Address, status: int, reason: str | None = None,
               to_tag: str | None = None) -> None:
        data = self._response(req, status, to_tag or new_tag(), reason=reason).serialize()
        self._outbox.append(Transmit(data, source))

    def _arm_retransmit(self, d: _Dialog, now: float) -> None:
        d.retransmit_interval = T1
        d.retransmit_at = None if self._reliable else now + T1
        d.give_up_at = now + 64 * T1

    def _end(self, call_id: str, by: str, reason: str, status: int = 0) -> None:
        d = self._dialogs[call_id]
        d.state = "ended"
        d.retransmit_at = None
        self._report(call_id, by, reason, status)

    def _report(self, call_id: str, by: str, reason: str, status: int) -> None:
        d = self._dialogs[call_id]
        if not d.reported:
            d.reported, d.ended_reason = True, reason
            self._events.append(CallEnded(call_id, by, reason, status))

    def _on_give_up(self, call_id: str, d: _Dialog, now: float) -> None:
        d.give_up_at = d.retransmit_at = None
        if d.state == "answered":  # timer H: no ACK for our 2xx; end the dialog with BYE
            self._report(call_id, "local", "no ACK (timer H)", 408)
            d.state = "confirmed"
            self.hangup(call_id, now)
        elif d.state == "ending":  # timer F: the BYE was never answered
            self._end(call_id, "local", "BYE not answered (timer F)", 408)
        elif d.state == "ended":
            del self._dialogs[call_id]

    def _answer_malformed(self, data: bytes, source: Address, reason: str) -> bool:
        """Answer a request that failed to parse with 400 when its headers allow a response."""
        head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
        lines = head.split("\r\n")
        if not lines or lines[0].startswith("SIP/2.0") or lines[0].startswith("ACK "):
            return False
        needed: dict[str, list[str]] = {"via": [], "from": [], "to": [], "call-id": [], "cseq": []}
        compact = {"v": "via", "f": "from", "t": "to", "i": "call-id"}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            key = compact.get(name.strip().lower(), name.strip().lower())
            if sep and key in needed:
                needed[key].append(value.strip())
        if not all(needed.values()):
            return False
        resp = SipResponse(status=400, reason=f"Bad Request ({reason})"[:200])
        for key in ("via", "from", "to", "call-id", "cseq"):
            for value in needed[key]:
                resp.headers.add(key, value)
        self._outbox.append(Transmit(resp.serialize(), source))
        return True

    def _on_request(self, req: SipRequest, source: Address, now: float) -> None:
        method = req.method
        d = self._dialogs.get(req.call_id)
        if method == "INVITE":
            if d is None:
                self._new_invite(req, source)
            elif d.invite.cseq == req.cseq:  # retransmission: repeat the last response
                if d.last_response:
                    self._outbox.append(Transmit(d.last_response, source))
            else:  # re-INVITE: not supported yet in this core
                self._reply(req, source, 488, to_tag=d.local_tag)
        elif method == "ACK":
            if d is not None and d.state == "answered":
                d.state = "confirmed"
                d.retransmit_at = d.give_up_at = None
                self._events.append(CallConfirmed(req.call_id))
        elif method == "CANCEL":
            if d is None:
                self._reply(req, source, 481)
                return
            self._reply(req, source, 200, to_tag=d.local_tag)
            if d.state == "proceeding":
                self._respond(d, 487)
                self._end(req.call_id, "remote", "CANCEL", 487)
        elif method == "BYE":
            if d is None:
                self._reply(req, source, 481)
                return
            self._reply(req, source, 200, to_tag=d.local_tag)
            if d.state != "ended":
                self._end(req.call_id, "remote", "BYE")
                d.give_up_at = now + 64 * T1  # keep it to answer BYE retransmissions
        elif method == "OPTIONS":
            self._reply(req, source, 200, to_tag=d.local_tag if d else None)
        elif method == "INFO":
            if d is None:
                self._reply(req, source, 481)
                return
            self._reply(req, source, 200, to_tag=d.local_tag)
            ctype = (req.headers.get("content-type") or "").lower()
            if ctype.startswith("application/dtmf-relay"):
                fields = dict(line.split("=", 1) for line in req.body.decode("utf-8", "replace").splitlines()
                              if "=" in line)
                fields = {k.strip().lower(): v.strip() for k, v in fields.items()}
                digit = fields.get("signal", "")
                if digit:
                    dur = int(fields.get("duration", "0") or 0) if fields.get("duration", "0").isdigit() else 0
                    self._events.append(DtmfInfo(req.call_id, digit.upper(), dur))
        elif method in _SUPPORTED_ELSEWHERE:
            self._reply(req, source, 405)
        else:
            self._reply(req, source, 501)

    def _new_invite(self, req: SipRequest, source: Address) -> None:
        d = _Dialog(invite=req, source=source, local_tag=new_tag())
        contact = req.headers.get("contact")
        d.remote_target = uri_of(contact) if contact else uri_of(req.headers.get("from"))
        d.route_set = req.headers.get_all("record-route")
        self._dialogs[req.call_id] = d
        self._respond(d, 100)
        self._events.append(IncomingCall(req.call_id, req, source))

    def _on_response(self, resp: SipResponse, now: float) -> None:
        d = self._dialogs.get(resp.call_id)
        if d is None or d.state != "ending":
            return
        num, method = resp.cseq
        if method == "BYE" and num == d.local_cseq and resp.status >= 200:
            self._end(resp.call_id, "local", "BYE", resp.status)
            d.give_up_at = now + 64 * T1
