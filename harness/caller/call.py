"""Test-process handles on calls and listeners that live in caller workers."""

import threading
import time
from pathlib import Path
from typing import Protocol

STATES = ("INCOMING", "CALLING", "EARLY", "CONNECTING", "CONFIRMED", "DISCONNECTED")
DTMF_METHODS = ("rfc2833", "info")


class CallerError(Exception):
    """A call or caller worker did not do what was asked (timeout, failure, crash)."""


class _Worker(Protocol):
    pid: int

    def request(self, op: str, **fields) -> dict: ...


class Call:
    """One SIP call of a caller worker, placed by ``Caller.call`` or received by a ``Listener``.

    Attributes, updated as the worker reports:
      ``call_id`` (SIP Call-ID), ``state`` (one of ``STATES``, None before the first),
      ``last_status`` (last SIP status code), ``last_reason``, ``events`` (list of dicts with
      ``time`` and ``type`` "state" (``state``, ``status``, ``reason``) or "dtmf" (``digit``,
      ``method``)), ``dtmf_received`` (digits from the far end), ``record_to`` (the WAV of
      what this side hears, if recorded), ``invite`` (the received INVITE, incoming calls
      only), ``worker_pid``.
    """

    def __init__(self, worker: _Worker, key: str, label: str, record_to: Path | None = None,
                 invite: str | None = None) -> None:
        self._worker = worker
        self._key = key
        self._label = label
        self._cond = threading.Condition()
        self._seen: set[str] = set()
        self._error: str | None = None
        self.worker_pid = worker.pid
        self.record_to = record_to
        self.invite = invite
        self.call_id: str | None = None
        self.state: str | None = None
        self.last_status = 0
        self.last_reason = ""
        self.events: list[dict] = []
        self.dtmf_received = ""

    def __repr__(self) -> str:
        return f"<Call {self._label} {self.state or 'NEW'} call_id={self.call_id}>"

    def wait_for(self, state: str, timeout: float = 10.0) -> None:
        """Return once the call has reached ``state`` (now or earlier).

        Raises CallerError after ``timeout`` seconds, when the call ends without reaching
        it, or when its worker fails.
        """
        if state not in STATES:
            raise ValueError(f"unknown call state {state!r}; one of {', '.join(STATES)}")
        deadline = time.monotonic() + timeout
        with self._cond:
            while state not in self._seen:
                if self._error is not None:
                    raise CallerError(f"call {self._label}: {self._error}")
                if "DISCONNECTED" in self._seen:
                    raise CallerError(f"call {self._label} ended before {state}: {self._status_text()}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise CallerError(f"call {self._label}: not {state} within {timeout:.3g} s "
                                      f"(state {self.state}, {self._status_text()})")
                self._cond.wait(remaining)

    def send_dtmf(self, digits: str, method: str = "rfc2833") -> None:
        """Send DTMF ``digits`` as RFC 4733 events ("rfc2833") or SIP INFO ("info")."""
        if method not in DTMF_METHODS:
            raise ValueError(f"unknown DTMF method {method!r}; one of {', '.join(DTMF_METHODS)}")
        self._request("dtmf", digits=digits, method=method)

    def hangup(self, status: int | None = None) -> None:
        """End the call (BYE, CANCEL, or a final ``status`` for an unanswered incoming call).

        Hanging up an ended call does nothing.
        """
        if "DISCONNECTED" not in self._seen:
            self._request("hangup", status=status)

    def answer(self, status: int = 200) -> None:
        """Answer an incoming call with ``status`` (180, 183, 200)."""
        self._request("answer", status=status)

    def _request(self, op: str, **fields) -> None:
        try:
            self._worker.request(op, call=self._key, **fields)
        except CallerError as error:
            raise CallerError(f"call {self._label}: {error}") from None

    def _status_text(self) -> str:
        if not self.last_status:
            return "no SIP response"
        return f"last status {self.last_status} {self.last_reason}".rstrip()

    def _on_event(self, message: dict) -> None:
        with self._cond:
            if message["ev"] == "state":
                self.call_id = message["call_id"] or self.call_id
                self.state = message["state"]
                self.last_status = message["status"] or self.last_status
                self.last_reason = message["reason"] or self.last_reason
                self._seen.add(self.state)
                self.events.append({"time": message["time"], "type": "state", "state": self.state,
                                    "status": message["status"], "reason": message["reason"]})
            elif message["ev"] == "dtmf":
                self.dtmf_received += message["digit"]
                self.events.append({"time": message["time"], "type": "dtmf",
                                    "digit": message["digit"], "method": message["method"]})
            elif message["ev"] == "error":
                self._error = message["message"]
            self._cond.notify_all()

    def _fail(self, message: str) -> None:
        with self._cond:
            if "DISCONNECTED" not in self._seen:
                self._error = message
            self._cond.notify_all()


class Listener:
    """A SIP user agent that receives calls at ``uri`` (see ``Caller.listen``).

    ``calls`` lists the incoming calls so far, oldest first; ``worker_pid`` is the process
    that answers them.
    """

    def __init__(self, uri: str, worker_pid: int) -> None:
        self.uri = uri
        self.worker_pid = worker_pid
        self.calls: list[Call] = []
        self._cond = threading.Condition()
        self._taken = 0
        self._error: str | None = None

    def __repr__(self) -> str:
        return f"<Listener {self.uri} calls={len(self.calls)}>"

    def wait_call(self, timeout: float = 10.0) -> Call:
        """The oldest incoming call not yet returned by ``wait_call``; CallerError after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._taken >= len(self.calls):
                if self._error is not None:
                    raise CallerError(f"listener {self.uri}: {self._error}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise CallerError(f"listener {self.uri}: no incoming call within {timeout:g} s")
                self._cond.wait(remaining)
            self._taken += 1
            return self.calls[self._taken - 1]

    def _add(self, call: Call) -> None:
        with self._cond:
            self.calls.append(call)
            self._cond.notify_all()

    def _fail(self, message: str) -> None:
        with self._cond:
            self._error = message
            self._cond.notify_all()
