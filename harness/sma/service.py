"""The service model: SIP media applications, SIP rules and live transactions (moto's `models`)."""
from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable

from .engine import CallTransaction
from .errors import NotFound
from .model import SipMediaApplication, SipRule, new_id


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


class SmaService:
    """Registries and routing; the transactions themselves are `CallTransaction`s."""

    def __init__(self, clock: Callable[[], float], wall_ms: Callable[[], int],
                 owner: int | None = None):
        self.clock, self.wall_ms = clock, wall_ms
        self.owner = owner  # a cluster worker's index, carried in its TransactionIds
        self.applications: dict[str, SipMediaApplication] = {}
        self.rules: list[SipRule] = []
        self.transactions: dict[str, CallTransaction] = {}
        self.action_limiter = ActionRateLimiter(clock)

    def add_application(self, sma: SipMediaApplication) -> None:
        self.applications[sma.sip_media_application_id] = sma

    def add_rule(self, rule: SipRule) -> None:
        self.rules.append(rule)

    def route(self, to_number: str, request_uri_host: str) -> list[tuple[SipMediaApplication, SipRule]]:
        """The target SMAs for an inbound call, in priority order (lowest first)."""
        for rule in self.rules:
            if rule.matches(to_number, request_uri_host):
                return [(self.applications[sma_id], rule)
                        for _, sma_id in sorted(rule.targets) if sma_id in self.applications]
        return []

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
        if sma_id not in self.applications:
            raise NotFound(f"SIP media application {sma_id} not found")
        tx = self.transactions.get(transaction_id)
        if tx is None or tx.sma.sip_media_application_id != sma_id or tx.ended:
            raise NotFound(f"Transaction {transaction_id} not found for SIP media application {sma_id}")
        return tx

    def drop(self, transaction_id: str) -> None:
        self.transactions.pop(transaction_id, None)
