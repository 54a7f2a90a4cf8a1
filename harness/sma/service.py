"""The service model: SIP media applications, SIP rules and live transactions (moto's `models`).

`SmaService` is the backend the API talks to: it routes calls in (SIP rules) and out (routes),
and takes the API's UpdateSipMediaApplicationCall and CreateSipMediaApplicationCall with the
service's rules (an unknown SMA or call, the invocation limit, a service shutting down). What
its transactions then ask for is carried out by its `Driver`, the I/O edge (the stub).
"""
from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable
from typing import Protocol

from .routes import expand
from .engine import CallTransaction
from .errors import NotFound, ResourceLimitExceeded, ServiceUnavailable, SmaError
from .model import Leg, SipMediaApplication, SipRule, new_id


PSTN_ACTIONS_PER_SECOND = 5  # "PSTN Audio actions have a limit of 5 call requests per second"


class ActionRateLimiter:
    """At most `rate` rate-limited actions per account in any one-second window."""

    def __init__(self, clock: Callable[[], float], rate: int = PSTN_ACTIONS_PER_SECOND):
        self.clock, self.rate = clock, rate
        self._recent: dict[str, deque[float]] = defaultdict(deque)

    def allow(self, account: str) -> bool:
        now, recent = self.clock(), self._recent[account]
        while recent and now - recent[0] >= 1.0:
            recent.popleft()
        if len(recent) >= self.rate:
            return False
        recent.append(now)
        return True


class Driver(Protocol):
    """The edge that carries out what the service's transactions ask (SIP, media, handlers)."""

    def open_leg(self, tx: CallTransaction, leg: Leg) -> None:
        """Set up the LEG-A of a created call (its route, its media) before the API answers;
        the API's error (an `SmaError`) when it cannot."""

    def updated(self, tx: CallTransaction, arguments: dict[str, str]) -> None:
        """An update was accepted: `tx` has its CALL_UPDATE_REQUESTED to carry out."""

    def created(self, tx: CallTransaction, leg: Leg, arguments: dict[str, str]) -> None:
        """A call was created: `tx` has its LEG-A to place and NEW_OUTBOUND_CALL to carry out."""


class NoDriver:
    """The service on its own: legs need no set-up, commands wait on their transactions."""

    def open_leg(self, tx: CallTransaction, leg: Leg) -> None:
        pass

    def updated(self, tx: CallTransaction, arguments: dict[str, str]) -> None:
        pass

    def created(self, tx: CallTransaction, leg: Leg, arguments: dict[str, str]) -> None:
        pass


class SmaService:
    """Registries, routing and the API's operations; the transactions themselves are
    `CallTransaction`s. `routes` maps a number, a Voice Connector ARN or "*" to the SIP URI
    template the legs the SMA places go to (the dict given is used, not copied); `owner`, a
    cluster worker's index, is carried in its TransactionIds."""

    def __init__(self, clock: Callable[[], float], wall_ms: Callable[[], int],
                 driver: Driver | None = None, routes: dict[str, str] | None = None,
                 owner: int | None = None):
        self.clock, self.wall_ms = clock, wall_ms
        self.owner = owner
        self.driver: Driver = driver or NoDriver()
        self.routes = routes if routes is not None else {}
        self.applications: dict[str, SipMediaApplication] = {}
        self.rules: list[SipRule] = []
        self.transactions: dict[str, CallTransaction] = {}
        self.action_limiter = ActionRateLimiter(clock)
        self.draining = False  # shutting down: no new calls, the API answers 503

    def add_application(self, sma: SipMediaApplication) -> None:
        self.applications[sma.sip_media_application_id] = sma

    def add_rule(self, rule: SipRule) -> None:
        self.rules.append(rule)

    def load(self, applications: list[SipMediaApplication], rules: list[SipRule]) -> None:
        """Serve these SMAs and rules in place of the ones before."""
        self.applications, self.rules = {}, []
        for sma in applications:
            self.add_application(sma)
        for rule in rules:
            self.add_rule(rule)

    def application(self, sma_id: str) -> SipMediaApplication:
        """The SMA of that id, or NotFound."""
        sma = self.applications.get(sma_id)
        if sma is None:
            raise NotFound(f"SIP media application {sma_id} not found")
        return sma

    def route(self, to_number: str, request_uri_host: str) -> list[tuple[SipMediaApplication, SipRule]]:
        """The target SMAs for an inbound call, in priority order (lowest first)."""
        for rule in self.rules:
            if rule.matches(to_number, request_uri_host):
                return [(self.applications[sma_id], rule)
                        for _, sma_id in sorted(rule.targets) if sma_id in self.applications]
        return []

    def inbound_call(self, to_number: str, request_uri_host: str, from_number: str,
                     sip_headers: dict[str, str]) -> tuple[CallTransaction, Leg] | None:
        """The transaction and LEG-A of an arriving call, through the first SMA its SIP rule
        targets (the others are its fallbacks); None when no rule matches."""
        targets = self.route(to_number, request_uri_host)
        if not targets:
            return None
        (sma, rule), fallbacks = targets[0], [target for target, _ in targets[1:]]
        leg = Leg(new_id(), "LEG-A", to_number, from_number, "Inbound", self.wall_ms(), sip_headers=sip_headers)
        return self.new_transaction(sma, rule, fallbacks), leg

    def route_outbound(self, number: str, arn: str | None) -> str | None:
        """The SIP URI for a leg the SMA places to `number` (through the Voice Connector
        `arn`), from the routes (None: no route); RouteError when the number cannot be
        dialled through it."""
        template = self.routes.get(arn or "") or self.routes.get(number) or self.routes.get("*")
        return expand(template, number) if template else None

    # ---- the API's operations -------------------------------------------------------------
    def update_call(self, sma: SipMediaApplication, transaction_id: str, arguments: dict[str, str]) -> str:
        """UpdateSipMediaApplicationCall: CALL_UPDATE_REQUESTED for a live call that has
        invocations left; the API answers at once."""
        tx = self._transaction(sma, transaction_id)
        if tx.invocations_exhausted:
            raise ResourceLimitExceeded(f"Transaction {transaction_id} has used its 1000 invocations")
        tx.update_requested(arguments)
        self.driver.updated(tx, arguments)
        return tx.transaction_id

    def create_call(self, sma: SipMediaApplication, from_number: str, to_number: str,
                    sip_headers: dict[str, str], arguments: dict[str, str]) -> str:
        """CreateSipMediaApplicationCall: a new transaction whose LEG-A the service places.
        The leg is set up before the API answers, so a failure is the API's error."""
        if self.draining:
            raise ServiceUnavailable("The service is shutting down")
        tx = self.new_transaction(sma, None)
        leg = Leg(new_id(), "LEG-A", to_number, from_number, "Outbound", self.wall_ms())
        try:
            self.driver.open_leg(tx, leg)
        except SmaError:
            self.drop(tx.transaction_id)
            raise
        tx.outbound_call(leg, arguments, sip_headers)
        self.driver.created(tx, leg, arguments)
        return tx.transaction_id

    def new_transaction(self, sma: SipMediaApplication, rule: SipRule | None,
                        fallbacks: list[SipMediaApplication] | None = None) -> CallTransaction:
        """Create and register the transaction of a new call routed to `sma`; `fallbacks` are
        the SIP rule's next targets, tried when the handler cannot be invoked."""
        tx = CallTransaction(sma, new_id(self.owner), rule.sip_rule_id if rule else None, self.clock,
                             self.wall_ms, fallbacks, self.action_limiter.allow)
        self.transactions[tx.transaction_id] = tx
        return tx

    def find_transaction(self, sma_id: str, transaction_id: str) -> CallTransaction:
        """A live transaction of that SMA, or NotFound (unknown SMA, unknown or ended call)."""
        return self._transaction(self.application(sma_id), transaction_id)

    def _transaction(self, sma: SipMediaApplication, transaction_id: str) -> CallTransaction:
        tx = self.transactions.get(transaction_id)
        if tx is None or tx.ended or tx.sma.sip_media_application_id != sma.sip_media_application_id:
            raise NotFound(f"Transaction {transaction_id} not found for SIP media application "
                           f"{sma.sip_media_application_id}")
        return tx

    def drop(self, transaction_id: str) -> None:
        self.transactions.pop(transaction_id, None)
