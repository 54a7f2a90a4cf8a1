"""The log of a served stub: one line per call (when it arrives or is placed, and when it
ends), per API request and per handler invocation (when its response is in), and one per
problem (a media or call placement failure, an internal error), as text or JSON lines.

`ServeLog` is a journal watcher (`Stub.watch`): it formats entries, nothing more.
"""
from __future__ import annotations

import json
import sys
import time
from typing import TextIO

from . import journal_entries as je
from .journal_entries import parse_entry
from .journal_view import event_error
from .report.json_report import response_summary

FORMATS = ("text", "json")


class ServeLog:
    """Writes log lines to `stream`; `session` tags the lines of a remote run's session."""

    def __init__(self, stream: TextIO = sys.stdout, fmt: str = "text", session: str | None = None):
        if fmt not in FORMATS:
            raise ValueError(f"log format {fmt!r} is not one of {', '.join(FORMATS)}")
        self.stream, self.fmt, self.session = stream, fmt, session
        self._invocations: dict[tuple[str | None, int], je.HandlerInvoked] = {}
        self._started: dict[str, float] = {}  # SIP Call-ID -> when its dialog began

    def __call__(self, data: dict) -> None:
        entry = parse_entry(data)
        tx = entry.transaction_id if entry is not None else None
        if isinstance(entry, je.HandlerInvoked):
            self._invocations[(tx, entry.sequence)] = entry
        elif isinstance(entry, je.HandlerResponded):
            self._invocation(entry, self._invocations.pop((tx, entry.sequence), None))
        elif isinstance(entry, je.CallArrived):
            self._started[entry.sip_call_id] = entry.time
            self.line(entry.time, "call", "arrived", transaction_id=tx, call_id=entry.call_id,
                      sip_call_id=entry.sip_call_id, from_=entry.from_, to=entry.to,
                      sma=entry.sip_media_application_id, transport=entry.transport)
        elif isinstance(entry, je.CallPlaced):
            self._started[entry.sip_call_id] = entry.time
            self.line(entry.time, "call", "placed", transaction_id=tx, call_id=entry.call_id,
                      sip_call_id=entry.sip_call_id, target=entry.target)
        elif isinstance(entry, je.SipEnded):
            began = self._started.pop(entry.sip_call_id, None)
            self.line(entry.time, "call", "ended", transaction_id=tx, sip_call_id=entry.sip_call_id,
                      by=entry.by, status=entry.status, reason=entry.reason,
                      seconds=None if began is None else round(entry.time - began, 3))
        elif isinstance(entry, je.SipRejected):
            self.line(entry.time, "call", "refused", sip_call_id=entry.sip_call_id,
                      status=entry.status, reason=entry.reason)
        elif isinstance(entry, je.ApiRequest):
            self.line(entry.time, "api", entry.operation or "request", method=entry.method,
                      path=entry.path, status=entry.status, ms=entry.duration_ms,
                      transaction_id=tx, remote=entry.remote)
        elif isinstance(entry, (je.MediaFailed, je.PlaceFailed)):
            self.line(entry.time, "problem", entry.kind, transaction_id=tx, call_id=entry.call_id,
                      reason=entry.reason)
        elif isinstance(entry, je.InternalError):
            self.line(entry.time, "problem", entry.kind, transaction_id=tx, reason=entry.error)

    def _invocation(self, response: je.HandlerResponded, invocation: je.HandlerInvoked | None) -> None:
        event = invocation.event if invocation is not None else {}
        self.line(response.time, "invocation", event.get("InvocationEventType", "?"),
                  transaction_id=response.transaction_id, sequence=response.sequence,
                  action=(event.get("ActionData") or {}).get("Type"), error=event_error(event),
                  ms=response.duration_ms, attempts=response.attempts,
                  response=response_summary(response))

    def line(self, at: float, event: str, what: str, **fields) -> None:
        """Write one line for what happened at `at` (Unix time); fields that are None are left out."""
        fields = {k.rstrip("_"): v for k, v in fields.items() if v is not None}
        if self.session:
            fields = {"session": self.session, **fields}
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at * 1000) % 1000:03d}Z"
        if self.fmt == "json":
            text = json.dumps({"time": stamp, "event": event, "what": what, **fields}, default=str)
        else:
            text = f"{stamp} {event} {what} " + " ".join(f"{k}={_text(v)}" for k, v in fields.items())
        self.stream.write(text.rstrip() + "\n")
        self.stream.flush()


def _text(value) -> str:
    """A field for a text line: quoted when it holds a space, so the line splits cleanly."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return json.dumps(text) if (" " in text or not text or '"' in text) else text
