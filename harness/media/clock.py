"""The media clock, sans-IO: absolute deadlines, so streams never drift.

The 20 ms period is split into `phases` slots; slot n falls at start + n x period / phases and
belongs to phase n mod phases. Each stream sends in the slot of its own phase, so a stream's
packets are exactly one period apart while the work of many streams is spread over the period
instead of being sent in one burst.

A late wake-up runs the slots it missed at once; after a stall longer than `max_lag` whole
periods are skipped instead of sent in a burst (the streams' timestamps still advance by them).
"""
from __future__ import annotations

import math

PTIME = 0.020
#: A wake-up this close before a deadline counts as on time (timer rounding).
EARLY_TOLERANCE = 1e-4


class MediaClock:
    def __init__(self, start: float, period: float = PTIME, phases: int = 1, max_lag: float = 0.2):
        self.start, self.period, self.phases, self.max_lag = start, period, phases, max_lag
        self.slot = period / phases
        self.slots = 0  # slots run or skipped so far

    @property
    def next_deadline(self) -> float:
        return self.start + self.slots * self.slot

    def due(self, now: float) -> tuple[range, int]:
        """(slot numbers to run now, whole periods skipped) at time `now`; advances past both."""
        reached = math.floor((now - self.start + EARLY_TOLERANCE) / self.slot) + 1
        first = self.slots
        if reached <= first:
            return range(0), 0
        self.slots = reached
        skipped = 0
        if now - (self.start + first * self.slot) > self.max_lag:
            skipped = (reached - first - 1) // self.phases
            first += skipped * self.phases
        return range(first, reached), skipped
