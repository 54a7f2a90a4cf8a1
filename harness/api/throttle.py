"""Request throttling: one token bucket per account, on an injected clock."""
from __future__ import annotations

from collections.abc import Callable


class TokenBuckets:
    """Each key earns `rate` tokens a second and stores at most `burst`; a request takes one."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float]):
        if rate <= 0 or burst < 1:
            raise ValueError(f"throttle needs rate > 0 and burst >= 1, got {rate}, {burst}")
        self.rate, self.burst, self.clock = rate, burst, clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, time)

    def take(self, key: str) -> bool:
        """Take a token from `key`'s bucket; False when it is empty."""
        now = self.clock()
        tokens, then = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + max(0.0, now - then) * self.rate)
        allowed = tokens >= 1.0
        self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)
        return allowed
