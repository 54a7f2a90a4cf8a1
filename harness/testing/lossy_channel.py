"""An in-memory datagram path with seeded loss, reordering and duplication, for driving the
sans-IO senders and receivers through a bad network in tests (the kernel here has no netem)."""
from __future__ import annotations

import heapq
import random


class LossyChannel:
    """`send(datagram, now)` queues a datagram; `deliver(now)` returns the ones that have
    arrived by `now`, in arrival order. Each datagram is lost with probability `loss`, held
    back by `reorder_delay` s with probability `reorder` (so later ones overtake it), and
    delivered twice with probability `duplicate`. The same seed gives the same fate."""

    def __init__(self, seed: int = 0, loss: float = 0.0, reorder: float = 0.0,
                 duplicate: float = 0.0, delay: float = 0.0, reorder_delay: float = 0.05):
        self._random = random.Random(seed)
        self.loss, self.reorder, self.duplicate = loss, reorder, duplicate
        self.delay, self.reorder_delay = delay, reorder_delay
        self._queue: list[tuple[float, int, bytes]] = []
        self._count = 0
        self.sent = self.lost = self.reordered = self.duplicated = 0

    def send(self, datagram: bytes, now: float) -> None:
        self.sent += 1
        if self._random.random() < self.loss:
            self.lost += 1
            return
        at = now + self.delay
        if self._random.random() < self.reorder:
            self.reordered += 1
            at += self.reorder_delay
        self._push(at, datagram)
        if self._random.random() < self.duplicate:
            self.duplicated += 1
            self._push(at + 0.001, datagram)

    def _push(self, at: float, datagram: bytes) -> None:
        self._count += 1
        heapq.heappush(self._queue, (at, self._count, datagram))

    def deliver(self, now: float) -> list[tuple[float, bytes]]:
        """(arrival time, datagram) for everything that has arrived by `now`."""
        out = []
        while self._queue and self._queue[0][0] <= now:
            at, _, datagram = heapq.heappop(self._queue)
            out.append((at, datagram))
        return out
