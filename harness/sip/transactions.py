"""SIP transactions (RFC 3261 §17): the four state machines, their matching and timers A–K.

The rules live in `TRANSITIONS`; the classes only say what each transition sends and whom
it tells. On UDP, timers A, E and G retransmit and D, I, J, K absorb stray retransmissions;
on TCP nothing is retransmitted and D, I, J, K are zero. Timer C belongs to proxies. The
server INVITE transaction also retransmits a 2xx until its ACK (the "accepted" state of
RFC 6026, which RFC 3261 §13.3.1.4 gives the UA core), reports timer H to its owner, and
after the ACK stays accepted for timer L (64·T1, UDP) so that a retransmitted INVITE is
absorbed, never taken for a new call once the call has ended.
A CANCEL re-arms timer B on the INVITE it cancels, so a peer that never answers with a final
response cannot hold the call forever (RFC 3261 §9.1). Timer D is 64·T1 (32 s by default).
"""
from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from .events import Address, Transmit
from .message import SipRequest, SipResponse
from .via import MAGIC_COOKIE, top_via
from .uri import tag_of


@dataclass(frozen=True)
class Timers:
    """RFC 3261 timer base values in seconds; B, D, F, H and J are 64·T1."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0

    @property
    def timeout(self) -> float:
        return 64 * self.t1


#: (transaction kind, state, input) -> next state: RFC 3261 figures 5 to 8.
#: ict/nict = client INVITE/non-INVITE, ist/nist = server INVITE/non-INVITE. "request" is a
#: retransmission of the request, "send ..." what the owner answers with.
TRANSITIONS = {
    ("ict", "calling", "timer A"): "calling",
    ("ict", "calling", "timer B"): "terminated",
    ("ict", "calling", "1xx"): "proceeding",
    ("ict", "calling", "2xx"): "terminated",
    ("ict", "calling", "3xx-6xx"): "completed",
    ("ict", "proceeding", "1xx"): "proceeding",
    ("ict", "proceeding", "2xx"): "terminated",
    ("ict", "proceeding", "3xx-6xx"): "completed",
    ("ict", "proceeding", "timer B"): "terminated",  # only re-armed by a CANCEL
    ("ict", "completed", "3xx-6xx"): "completed",  # the ACK is sent again
    ("ict", "completed", "timer D"): "terminated",

    ("nict", "trying", "timer E"): "trying",
    ("nict", "trying", "timer F"): "terminated",
    ("nict", "trying", "1xx"): "proceeding",
    ("nict", "trying", "final"): "completed",
    ("nict", "proceeding", "timer E"): "proceeding",
    ("nict", "proceeding", "timer F"): "terminated",
    ("nict", "proceeding", "1xx"): "proceeding",
    ("nict", "proceeding", "final"): "completed",
    ("nict", "completed", "timer K"): "terminated",

    ("ist", "proceeding", "request"): "proceeding",
    ("ist", "proceeding", "send 1xx"): "proceeding",
    ("ist", "proceeding", "send 2xx"): "accepted",
    ("ist", "proceeding", "send 3xx-6xx"): "completed",
    ("ist", "accepted", "request"): "accepted",
    ("ist", "accepted", "timer G"): "accepted",
    ("ist", "accepted", "ACK"): "accepted",  # the 2xx stops; retransmissions still absorbed
    ("ist", "accepted", "timer L"): "terminated",
    ("ist", "accepted", "timer H"): "terminated",  # the owner hears of it
    ("ist", "completed", "request"): "completed",
    ("ist", "completed", "timer G"): "completed",
    ("ist", "completed", "ACK"): "confirmed",
    ("ist", "completed", "timer H"): "terminated",
    ("ist", "confirmed", "timer I"): "terminated",

    ("nist", "trying", "send final"): "completed",  # we never send provisionals here
    ("nist", "completed", "request"): "completed",
    ("nist", "completed", "timer J"): "terminated",
}
INITIAL = {"ict": "calling", "nict": "trying", "ist": "proceeding", "nist": "trying"}

OnResponse = Callable[[SipResponse, float], None]
OnTimeout = Callable[[str, float], None]


def response_class(status: int) -> str:
    return "1xx" if status < 200 else "2xx" if status < 300 else "3xx-6xx"


class Transaction:
    """State, timers and the last message sent; subclasses say what each input does."""

    kind: ClassVar[str]

    def __init__(self, layer: "TransactionLayer", key: tuple, peer: Address):
        self.layer, self.key, self.peer = layer, key, peer
        self.state = INITIAL[self.kind]
        self.last: bytes | None = None
        self._due: dict[str, float] = {}
        self._interval = layer.timers.t1

    def _move(self, event: str) -> bool:
        """Apply `event` when the table allows it in the current state; False to ignore it."""
        nxt = TRANSITIONS.get((self.kind, self.state, event))
        if nxt is None:
            return False
        self.state = nxt
        if nxt == "terminated":
            self._due.clear()
            self.layer.forget(self)
        return True

    def _send(self, data: bytes) -> None:
        self.last = data
        self.layer.outbox.append(Transmit(data, self.peer))

    def _arm(self, timer: str, delay: float, now: float) -> None:
        self._due[timer] = now + delay
        self.layer.schedule(self, timer, now + delay)

    def _retransmit_timer(self, timer: str, now: float, interval: float) -> None:
        """(Re)arm a retransmission timer to fire after `interval`; UDP only."""
        if not self.layer.reliable:
            self._interval = interval
            self._arm(timer, interval, now)

    def _retransmit(self, timer: str, now: float, interval: float) -> None:
        self.layer.outbox.append(Transmit(self.last, self.peer))
        self._retransmit_timer(timer, now, interval)

    def _wait(self, timer: str, delay: float, now: float) -> None:
        """Linger to absorb retransmissions (UDP); on TCP the timer is zero."""
        if self.layer.reliable:
            self._move(timer)
        else:
            self._arm(timer, delay, now)

    def due(self, timer: str) -> float | None:
        return self._due.get(timer)

    def fire(self, timer: str, now: float) -> None:
        del self._due[timer]
        if self._move(timer):
            self._on_timer(timer, now)

    def _on_timer(self, timer: str, now: float) -> None:
        """What a timer does besides its transition (retransmit, tell the owner)."""


class ClientInvite(Transaction):
    """We sent an INVITE: retransmit it (A), give up (B), ACK every non-2xx final (D)."""

    kind = "ict"

    def __init__(self, layer, key, peer, request: SipRequest, now: float,
                 on_response: OnResponse, on_timeout: OnTimeout):
        super().__init__(layer, key, peer)
        self.request, self.on_response, self.on_timeout = request, on_response, on_timeout
        self._send(request.serialize())
        self._retransmit_timer("timer A", now, layer.timers.t1)
        self._arm("timer B", layer.timers.timeout, now)

    def receive(self, resp: SipResponse, now: float) -> None:
        event, retransmitted = response_class(resp.status), self.state == "completed"
        if not self._move(event):
            return
        if event == "1xx":
            self._due.pop("timer A", None)
            self._due.pop("timer B", None)
        elif event == "3xx-6xx":
            self._send(self._ack(resp))  # again for every retransmission of the response
            if retransmitted:
                return
            self._due.clear()
            self._wait("timer D", self.layer.timers.timeout, now)
        self.on_response(resp, now)

    def cancelled(self, now: float) -> None:
        """A CANCEL was sent: wait at most 64·T1 more for the final response."""
        if self.state in ("calling", "proceeding"):
            self._arm("timer B", self.layer.timers.timeout, now)

    def _ack(self, resp: SipResponse) -> bytes:
        """The ACK for a non-2xx final response (RFC 3261 §17.1.1.3)."""
        ack = SipRequest(method="ACK", uri=self.request.uri)
        h, inv = ack.headers, self.request.headers
        h.add("Via", inv.get_all("via")[0])
        for route in inv.get_all("route"):
            h.add("Route", route)
        h.add("Max-Forwards", "70")
        h.add("From", inv.get("from"))
        h.add("To", resp.headers.get("to"))
        h.add("Call-ID", self.request.call_id)
        h.add("CSeq", f"{self.request.cseq[0]} ACK")
        return ack.serialize()

    def _on_timer(self, timer: str, now: float) -> None:
        if timer == "timer A":  # doubles without the T2 cap (RFC 3261 §17.1.1.2)
            self._retransmit(timer, now, 2 * self._interval)
        elif timer == "timer B":
            self.on_timeout(timer, now)


class ClientNonInvite(Transaction):
    """We sent BYE, CANCEL, ...: retransmit (E), give up (F), absorb late finals (K)."""

    kind = "nict"

    def __init__(self, layer, key, peer, request: SipRequest, now: float,
                 on_response: OnResponse, on_timeout: OnTimeout):
        super().__init__(layer, key, peer)
        self.request, self.on_response, self.on_timeout = request, on_response, on_timeout
        self._send(request.serialize())
        self._retransmit_timer("timer E", now, layer.timers.t1)
        self._arm("timer F", layer.timers.timeout, now)

    def receive(self, resp: SipResponse, now: float) -> None:
        event = "1xx" if resp.status < 200 else "final"
        if not self._move(event):
            return
        if event == "final":
            self._due.clear()
            self._wait("timer K", self.layer.timers.t4, now)
            self.on_response(resp, now)

    def _on_timer(self, timer: str, now: float) -> None:
        if timer == "timer E":  # every T2 once a provisional response came (§17.1.2.2)
            t2 = self.layer.timers.t2
            self._retransmit(timer, now, t2 if self.state == "proceeding"
                             else min(2 * self._interval, t2))
        elif timer == "timer F":
            self.on_timeout(timer, now)


class ServerInvite(Transaction):
    """An INVITE reached us: resend our last response to retransmissions, retransmit a
    final response until the ACK (G), give up (H, reported after a 2xx), absorb ACKs (I)
    and, after the ACK of a 2xx, retransmitted INVITEs (L)."""

    kind = "ist"

    def __init__(self, layer, key, peer, request: SipRequest):
        super().__init__(layer, key, peer)
        self.request = request
        self.status = 0

    def provisional(self, resp: SipResponse) -> None:
        if self._move("send 1xx"):
            self._send(resp.serialize())

    def respond(self, resp: SipResponse, now: float) -> None:
        """Send the final response and retransmit it until the ACK (timers G and H)."""
        if not self._move("send " + response_class(resp.status)):
            return
        self._send(resp.serialize())
        self.status = resp.status
        self._retransmit_timer("timer G", now, self.layer.timers.t1)
        self._arm("timer H", self.layer.timers.timeout, now)

    def retransmitted(self) -> None:
        if self._move("request") and self.last is not None:
            self.layer.outbox.append(Transmit(self.last, self.peer))

    def ack(self, now: float) -> None:
        if not self._move("ACK"):
            return
        self._due.clear()
        if self.state == "confirmed":
            self._wait("timer I", self.layer.timers.t4, now)
        else:  # accepted: the ACK of our 2xx
            self._wait("timer L", self.layer.timers.timeout, now)

    def _on_timer(self, timer: str, now: float) -> None:
        if timer == "timer G":
            self._retransmit(timer, now, min(2 * self._interval, self.layer.timers.t2))
        elif timer == "timer H" and response_class(self.status) == "2xx":
            self.layer.on_ack_timeout(self, now)


class ServerNonInvite(Transaction):
    """A BYE, CANCEL, OPTIONS, INFO ... reached us: resend our response to retransmissions
    and linger for them (J)."""

    kind = "nist"

    def __init__(self, layer, key, peer, request: SipRequest):
        super().__init__(layer, key, peer)
        self.request = request

    def respond(self, resp: SipResponse, now: float) -> None:
        """Send the final response; linger for retransmissions of the request (timer J)."""
        if self._move("send final"):
            self._send(resp.serialize())
            self._wait("timer J", self.layer.timers.timeout, now)

    def retransmitted(self) -> None:
        if self._move("request") and self.last is not None:
            self.layer.outbox.append(Transmit(self.last, self.peer))


ServerTransaction = ServerInvite | ServerNonInvite
ClientTransaction = ClientInvite | ClientNonInvite


def server_key(req: SipRequest, method: str | None = None) -> tuple:
    """How a request is matched to its server transaction (RFC 3261 §17.2.3); an ACK matches
    its INVITE. Requests without the RFC 3261 magic cookie fall back to RFC 2543 matching."""
    via = top_via(req)
    method = method or ("INVITE" if req.method == "ACK" else req.method)
    if via.branch.startswith(MAGIC_COOKIE):
        return (via.branch, via.sent_by, method)
    return (req.call_id, tag_of(req.headers.get("from")), req.cseq[0], via.sent_by, method)


def client_key(msg: SipRequest | SipResponse) -> tuple:
    """How a response is matched to its client transaction (RFC 3261 §17.1.3)."""
    return (top_via(msg).branch, msg.cseq[1])


class TransactionLayer:
    """Every live transaction of an endpoint, matched by key, with one timer heap."""

    def __init__(self, timers: Timers, reliable: bool, outbox: list[Transmit],
                 on_ack_timeout: Callable[["ServerInvite", float], None]):
        self.timers, self.reliable, self.outbox = timers, reliable, outbox
        #: told when timer H fires on a 2xx that never got its ACK
        self.on_ack_timeout = on_ack_timeout
        self._client: dict[tuple, ClientTransaction] = {}
        self._server: dict[tuple, ServerTransaction] = {}
        self._heap: list[tuple[float, int, Transaction, str]] = []
        self._seq = itertools.count()

    def send(self, request: SipRequest, peer: Address, now: float, on_response: OnResponse,
             on_timeout: OnTimeout) -> ClientTransaction:
        """Start a client transaction for `request` (its top Via carries a fresh branch)."""
        cls = ClientInvite if request.method == "INVITE" else ClientNonInvite
        tx = cls(self, client_key(request), peer, request, now, on_response, on_timeout)
        self._client[tx.key] = tx
        return tx

    def serve(self, request: SipRequest, peer: Address) -> ServerTransaction:
        """Start a server transaction for a new request (not an ACK)."""
        key = server_key(request)
        cls = ServerInvite if request.method == "INVITE" else ServerNonInvite
        tx = cls(self, key, peer, request)
        self._server[key] = tx
        return tx

    def server(self, request: SipRequest, method: str | None = None) -> ServerTransaction | None:
        return self._server.get(server_key(request, method))

    def client(self, resp: SipResponse) -> ClientTransaction | None:
        return self._client.get(client_key(resp))

    def forget(self, tx: Transaction) -> None:
        table = self._client if isinstance(tx, (ClientInvite, ClientNonInvite)) else self._server
        if table.get(tx.key) is tx:
            del table[tx.key]

    def schedule(self, tx: Transaction, timer: str, at: float) -> None:
        heapq.heappush(self._heap, (at, next(self._seq), tx, timer))

    def _drop_stale(self) -> None:
        while self._heap and self._heap[0][2].due(self._heap[0][3]) != self._heap[0][0]:
            heapq.heappop(self._heap)

    def next_deadline(self) -> float | None:
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def handle_timers(self, now: float) -> None:
        """Fire every transaction timer due at `now`, earliest first."""
        while (deadline := self.next_deadline()) is not None and deadline <= now:
            _, _, tx, timer = heapq.heappop(self._heap)
            tx.fire(timer, now)

    def __len__(self) -> int:
        return len(self._client) + len(self._server)
