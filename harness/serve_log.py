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

from .journal_view import event_error
from .report.json_report import response_summary

FORMATS = ("text", "json")


class ServeLog:
    """Writes log lines to `stream`; `session` tags the lines of a remote run's session."""

    def __init__(self, stream: TextIO = sys.stdout, fmt: str = "text", session: str | None = None):
        if fmt not in FORMATS:
            raise ValueError(f"log format {fmt!r} is not one of {', '.join(FORMATS)}")
        self.stream, self.fmt, self.session = stream, fmt, session
        self._invocations: dict[tuple[str, int], dict] = {}
        self._started: dict[str, float] = {}  # SIP Call-ID -> when its dialog began

    def __call__(self, entry: dict) -> None:
        kind, tx = entry["kind"], entry.get("transaction_id")
        if kind == "invocation":
            self._invocations[(tx, entry["sequence"])] = entry
        elif kind == "response":
            self._invocation(entry, self._invocations.pop((tx, entry["sequence"]), None))
        elif kind == "call_arrived":
            self._started[entry["sip_call_id"]] = entry["time"]
            self.line(entry, "call", "arrived", transaction_id=tx, call_id=entry["call_id"],
                      sip_call_id=entry["sip_call_id"], from_=entry.get("from_"), to=entry.get("to"),
                      sma=entry.get("sip_media_application_id"), transport=entry.get("transport"))
        elif kind == "call_placed":
            self._started[entry["sip_call_id"]] = entry["time"]
            self.line(entry, "call", "placed", transaction_id=tx, call_id=entry["call_id"],
                      sip_call_id=entry["sip_call_id"], target=entry.get("target"))
        elif kind == "sip_ended":
            began = self._started.pop(entry["sip_call_id"], None)
            self.line(entry, "call", "ended", transaction_id=tx, sip_call_id=entry["sip_call_id"],
                      by=entry.get("by"), status=entry.get("status"), reason=entry.get("reason"),
                      seconds=None if began is None else round(entry["time"] - began, 3))
        elif kind == "sip_rejected":
            self.line(entry, "call", "refused", sip_call_id=entry.get("sip_call_id"),
                      status=entry.get("status"), reason=entry.get("reason"))
        elif kind == "api_request":
            self.line(entry, "api", entry.get("operation") or "request", method=entry["method"],
                      path=entry["path"], status=entry["status"], ms=entry["duration_ms"],
                      transaction_id=tx, remote=entry.get("remote"))
        elif kind in ("media_failed", "place_failed", "internal_error"):
            self.line(entry, "problem", kind, transaction_id=tx, call_id=entry.get("call_id"),
                      reason=entry.get("reason") or entry.get("error"))

    def _invocation(self, response: dict, invocation: dict | None) -> None:
        event = (invocation or {}).get("event") or {}
        self.line(response, "invocation", event.get("InvocationEventType", "?"),
                  transaction_id=response.get("transaction_id"), sequence=response["sequence"],
                  action=(event.get("ActionData") or {}).get("Type"), error=event_error(event),
                  ms=response.get("duration_ms"), attempts=response.get("attempts"),
                  response=response_summary(response))

    def line(self, entry: dict, event: str, what: str, **fields) -> None:
        """Write one line for `entry` (fields that are None are left out)."""
        fields = {k.rstrip("_"): v for k, v in fields.items() if v is not None}
        if self.session:
            fields = {"session": self.session, **fields}
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(entry["time"])) \
            + f".{int(entry['time'] * 1000) % 1000:03d}Z"
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
