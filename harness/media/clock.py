"""The media clock, sans-IO: absolute deadlines start + n x 20 ms, so streams never drift.

A late wake-up runs the ticks it missed at once; after a stall longer than `max_lag` the missed
ticks are skipped instead of sent in a burst (the streams' timestamps still advance by them).
"""
from __future__ import annotations

import math

PTIME = 0.020
#: A wake-up this close before a deadline counts as on time (timer rounding).
EARLY_TOLERANCE = 1e-4


class MediaClock:
    def __init__(self, start: float, period: float = PTIME, max_lag: float = 0.2):
        self.start, self.period, self.max_lag = start, period, max_lag
        self.ticks = 0  # ticks run or skipped so far

    @property
    def next_deadline(self) -> float:
        return self.start + self.ticks * self.period

    def due(self, now: float) -> tuple[int, int]:
        """(ticks to run now, ticks to skip) at time `now`; advances past both."""
        reached = math.floor((now - self.start + EARLY_TOLERANCE) / self.period) + 1
        missed = reached - self.ticks
        if missed <= 0:
            return 0, 0
        self.ticks = reached
        if now - self.start - (reached - missed) * self.period > self.max_lag:
            return 1, missed - 1
        return missed, 0
