"""DTMF collection for the actions that take digits, sans-IO (time is passed in, in seconds).

`DigitCollector` runs the attempts of PlayAudioAndGetDigits and SpeakAndGetDigits;
`DigitListener` is the standing ReceiveDigits listener of one leg.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

SUCCESS, RETRY, FAILED = "success", "retry", "failed"


@dataclass
class DigitCollector:
    """One GetDigits action: digits, the attempt number and the timer of the current wait."""

    min_digits: int
    max_digits: int
    terminators: list[str]
    regex: str | None
    in_between_ms: int
    repeat_ms: int
    attempts: int
    digits: str = ""
    attempt: int = 1
    deadline: float | None = None
    received: str = ""  # the digits of the attempt that succeeded

    def listen(self, now: float) -> None:
        """The prompt ended: wait `repeat_ms` for a first digit (or `in_between_ms` for more)."""
        self.deadline = now + (self.in_between_ms if self.digits else self.repeat_ms) / 1000

    def add(self, digit: str, now: float) -> str | None:
        """Take one digit; returns the outcome when it ends the attempt."""
        if digit in self.terminators:
            return self._finish()
        self.digits += digit
        if len(self.digits) >= self.max_digits:
            return self._finish()
        self.deadline = now + self.in_between_ms / 1000
        return None

    def expire(self, now: float) -> str | None:
        """The outcome if the current wait is over at `now`."""
        if self.deadline is not None and now >= self.deadline:
            return self._finish()
        return None

    def _finish(self) -> str:
        ok = self.min_digits <= len(self.digits) <= self.max_digits and (
            self.regex is None or re.fullmatch(self.regex, self.digits) is not None)
        self.deadline = None
        if ok:
            self.received = self.digits
            return SUCCESS
        self.digits = ""
        self.attempt += 1
        return RETRY if self.attempt <= self.attempts else FAILED


@dataclass
class DigitListener:
    """ReceiveDigits on one leg: buffers digits and reports the buffer when it matches.

    The buffer is checked when no digit came for `in_between_ms`, or `flush_ms` after its
    first digit; then it is cleared, matched or not.
    """

    regex: str
    in_between_ms: int
    flush_ms: int
    action_data: dict
    buffer: str = ""
    first_at: float | None = None
    last_at: float | None = None

    def add(self, digit: str, now: float) -> None:
        self.buffer += digit
        self.first_at = self.first_at if self.first_at is not None else now
        self.last_at = now

    def next_deadline(self) -> float | None:
        if not self.buffer:
            return None
        return min(self.last_at + self.in_between_ms / 1000, self.first_at + self.flush_ms / 1000)

    def expire(self, now: float) -> str | None:
        """The matched digits if the buffer is due at `now` and matches; the buffer is cleared."""
        deadline = self.next_deadline()
        if deadline is None or now < deadline:
            return None
        digits, self.buffer, self.first_at, self.last_at = self.buffer, "", None, None
        return digits if re.fullmatch(self.regex, digits) else None
