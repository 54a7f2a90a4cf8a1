"""Trace an SMA handler: one structured log line per invocation, with its event and response.

Wrap your real handler, unchanged otherwise::

    from sip_harness.trace import traced

    @traced
    def handler(event, context):
        ...

Each invocation then writes one JSON line ``{"sip_harness_trace": 1, "time": ..., "duration_ms":
..., "request_id": ..., "function": ..., "event": {...}, "response": {...}}`` (``"error"``
instead of ``"response"`` when the handler raised; the exception still propagates). In
Lambda the line goes to standard output, so to CloudWatch Logs; where the environment
variable ``SIP_HARNESS_TRACE_FILE`` names a file, it is appended there instead. Only the
standard library is used, so the module runs in any Python Lambda runtime (as the layer
``sip-harness fidelity layer`` builds, or copied beside your handler).

``sip-harness fidelity compare TRACE PROFILE`` compares such a trace with the emulator.
"""
from __future__ import annotations

import functools
import json
import os
import sys
import time

MARK = "sip_harness_trace"
VERSION = 1
TRACE_FILE_ENV = "SIP_HARNESS_TRACE_FILE"


def traced(handler):
    """`handler(event, context)` that also logs each invocation as one trace line."""

    @functools.wraps(handler)
    def wrapper(event, context=None):
        start = time.time()
        record = {MARK: VERSION, "time": start,
                  "request_id": getattr(context, "aws_request_id", None),
                  "function": getattr(context, "function_name", None), "event": event}
        try:
            response = handler(event, context)
        except Exception as exc:
            record.update(duration_ms=round((time.time() - start) * 1000, 3),
                          error=f"{type(exc).__name__}: {exc}")
            _emit(record)
            raise
        record.update(duration_ms=round((time.time() - start) * 1000, 3), response=response)
        _emit(record)
        return response

    return wrapper


def _emit(record: dict) -> None:
    line = json.dumps(record, default=str, separators=(",", ":")) + "\n"
    path = os.environ.get(TRACE_FILE_ENV)
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())  # one write: lines of concurrent workers never mix
        finally:
            os.close(fd)
    else:
        sys.stdout.write(line)
        sys.stdout.flush()
