"""Seeded network impairment in user space, sans-IO: loss (independent or Gilbert–Elliott
bursts), delay, jitter, reordering, duplication and rule-based drops of chosen datagrams.

The kernel here has no netem qdisc and many CI containers lack NET_ADMIN, so the stub's UDP
edges (`harness.sip.transport`, `harness.media.transport`) ask an `Impairment` what to do with
each datagram: `decide(datagram, now)` returns when to deliver which copies (none: dropped).
Decisions depend only on the seed and on the order and content of the datagrams decided:
every datagram draws the same five random numbers whatever the settings, so the same seed
drops the same datagrams at any delay. `NetworkImpairment` holds one `Impairment` per
direction ("outgoing", "incoming") and kind ("sip", "rtp"; RTCP is not impaired) and keeps
a record of every datagram it dropped, delayed, duplicated or reordered.
"""
from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

OUTGOING, INCOMING = "outgoing", "incoming"
SIP, RTP = "sip", "rtp"
DIRECTIONS, KINDS = (OUTGOING, INCOMING), (SIP, RTP)
#: Records kept by a `NetworkImpairment` (the counts go on beyond it).
MAX_RECORDS = 100_000

Decision = list[tuple[float, bytes]]


def _probability(name: str, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], not {value!r}")
    return float(value)


class Impairment:
    """What one direction of one kind of traffic suffers.

    loss: probability of dropping a datagram (in the good state, with `burst_loss`).
    burst_loss: (p_enter, p_stay) of a Gilbert–Elliott channel: from the good state the bad
        one is entered with p_enter, and kept with p_stay (mean burst 1 / (1 - p_stay));
        every datagram in the bad state is dropped.
    delay_ms, jitter_ms: each datagram is delayed by delay_ms plus a uniform amount in
        [-jitter_ms, +jitter_ms] (never below zero); jitter larger than the packet spacing
        reorders by itself.
    reorder: probability of holding a datagram back `reorder_ms` more, so later ones
        overtake it.
    duplicate: probability of delivering a second copy right after the first.
    drop_match: a bytes regular expression matched at the start of each datagram (DOTALL);
        the matching datagrams number drop_nth .. drop_nth + drop_count - 1 (from 1) are
        dropped, e.g. drop_match=rb"BYE " drops the first BYE and lets its retransmission
        through.
    """

    def __init__(self, seed: int | str, loss: float = 0.0,
                 burst_loss: tuple[float, float] | None = None, delay_ms: float = 0.0,
                 jitter_ms: float = 0.0, reorder: float = 0.0, reorder_ms: float = 40.0,
                 duplicate: float = 0.0, drop_match: bytes | None = None, drop_nth: int = 1,
                 drop_count: int = 1):
        self.seed = seed
        self.loss = _probability("loss", loss)
        self.burst_loss = None if burst_loss is None else (
            _probability("p_enter", burst_loss[0]), _probability("p_stay", burst_loss[1]))
        if min(delay_ms, jitter_ms, reorder_ms) < 0:
            raise ValueError("delay_ms, jitter_ms and reorder_ms must not be negative")
        if drop_nth < 1 or drop_count < 0:
            raise ValueError("drop_nth counts from 1 and drop_count must not be negative")
        self.delay, self.jitter, self.reorder_hold = delay_ms / 1e3, jitter_ms / 1e3, reorder_ms / 1e3
        self.reorder = _probability("reorder", reorder)
        self.duplicate = _probability("duplicate", duplicate)
        self._rule = None if drop_match is None else re.compile(drop_match, re.DOTALL)
        self._rule_range = range(drop_nth, drop_nth + drop_count)
        self._matched = 0
        self._bad = False
        self._rng = random.Random(seed)
        #: the action taken on the last datagram decided: None (passed unchanged),
        #: "dropped", "reordered", "duplicated" or "delayed"
        self.last_action: str | None = None

    def decide(self, datagram: bytes, now: float) -> Decision:
        """When to deliver which copies of `datagram` (times on the clock of `now`, in
        seconds); an empty list means it is dropped."""
        u_state, u_loss, u_delay, u_reorder, u_dup = (self._rng.random() for _ in range(5))
        if self.burst_loss is not None:
            self._bad = u_state < self.burst_loss[1 if self._bad else 0]
        ruled = False
        if self._rule is not None and self._rule.match(datagram):
            self._matched += 1
            ruled = self._matched in self._rule_range
        if ruled or self._bad or u_loss < self.loss:
            self.last_action = "dropped"
            return []
        delay = max(0.0, self.delay + self.jitter * (2 * u_delay - 1))
        action = "delayed" if delay else None
        if u_reorder < self.reorder:
            delay += self.reorder_hold
            action = "reordered"
        copies = 2 if u_dup < self.duplicate else 1
        if copies == 2 and action != "reordered":
            action = "duplicated"
        self.last_action = action
        return [(now + delay, datagram)] * copies


@dataclass(frozen=True)
class ImpairmentRecord:
    """One datagram an impairment touched. `time` is the `now` it was decided at (the event
    loop's clock); `delay_ms` is how long its first copy was held (0 when dropped)."""

    time: float
    direction: str
    kind: str
    action: str
    size: int
    delay_ms: float

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class NetworkImpairment:
    """The impairments of the stub's network edges, by direction and kind (None: clean).

    Edges call `decide(direction, kind, datagram, now)`. `records` keeps the first
    MAX_RECORDS touched datagrams in order; `counts` counts every action by
    (direction, kind, action) and `seen` every datagram decided by (direction, kind).
    """

    sip_outgoing: Impairment | None = None
    sip_incoming: Impairment | None = None
    rtp_outgoing: Impairment | None = None
    rtp_incoming: Impairment | None = None
    records: list[ImpairmentRecord] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    seen: Counter = field(default_factory=Counter)

    @classmethod
    def from_dict(cls, settings: dict) -> "NetworkImpairment":
        """Build from plain data, as a profile gives it:
        {"seed": 7, "rtp": {"outgoing": {"loss": 0.05}}, "sip": {"incoming": {...}}}.
        Each impairment is seeded with "<seed>/<kind>/<direction>", so they draw
        independent numbers."""
        seed = settings.get("seed", 0)
        unknown = set(settings) - {"seed", *KINDS}
        if unknown:
            raise ValueError(f"unknown impairment settings {sorted(unknown)}")
        made = {}
        for kind in KINDS:
            per_kind = settings.get(kind) or {}
            if set(per_kind) - set(DIRECTIONS):
                raise ValueError(f"{kind}: directions are {DIRECTIONS}, not {sorted(per_kind)}")
            for direction, options in per_kind.items():
                options = dict(options)
                if options.get("burst_loss") is not None:
                    options["burst_loss"] = tuple(options["burst_loss"])
                if isinstance(options.get("drop_match"), str):
                    options["drop_match"] = options["drop_match"].encode()
                made[f"{kind}_{direction}"] = Impairment(f"{seed}/{kind}/{direction}", **options)
        return cls(**made)

    def impairment(self, direction: str, kind: str) -> Impairment | None:
        return getattr(self, f"{kind}_{direction}")

    def route(self, direction: str, kind: str, datagram: bytes, now: float,
              at_once: Callable[[bytes], None],
              later: Callable[[float, bytes], None]) -> None:
        """Deliver one datagram crossing an edge as decided: `at_once(copy)` for each copy due
        now, `later(at, copy)` for each one held until `at` (none when it is dropped)."""
        for at, copy in self.decide(direction, kind, datagram, now):
            if at <= now:
                at_once(copy)
            else:
                later(at, copy)

    def decide(self, direction: str, kind: str, datagram: bytes, now: float) -> Decision:
        """What to do with one datagram crossing an edge; recorded when touched."""
        imp = self.impairment(direction, kind)
        if imp is None:
            return [(now, datagram)]
        out = imp.decide(datagram, now)
        self.seen[direction, kind] += 1
        if imp.last_action is not None:
            self.counts[direction, kind, imp.last_action] += 1
            if len(self.records) < MAX_RECORDS:
                delay = round((out[0][0] - now) * 1e3, 3) if out else 0.0
                self.records.append(ImpairmentRecord(now, direction, kind, imp.last_action,
                                                     len(datagram), delay))
        return out
