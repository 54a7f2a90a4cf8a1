"""The lines the Lambda platform writes around a function's own output, as CloudWatch shows
them: `INIT_START` before a cold start's init output, then per invocation `START`, the
function's output, `END` and `REPORT` (duration, billed duration, memory, init duration)."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field


def init_start_line(runtime: str, describe: str) -> str:
    return f"INIT_START Runtime Version: {runtime}\t(sip-harness: {describe})"


def start_line(request_id: str) -> str:
    return f"START RequestId: {request_id} Version: $LATEST"


def end_line(request_id: str) -> str:
    return f"END RequestId: {request_id}"


def timeout_line(request_id: str, timeout_s: float) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    return f"{stamp}.{int(time.time() * 1000) % 1000:03d}Z {request_id} Task timed out after {timeout_s:.2f} seconds"


def report_line(request_id: str, duration_ms: float, memory_mb: int, max_used_mb: int | None,
                init_ms: float | None = None, status: str | None = None) -> str:
    parts = [f"REPORT RequestId: {request_id}", f"Duration: {duration_ms:.2f} ms",
             f"Billed Duration: {math.ceil(duration_ms)} ms", f"Memory Size: {memory_mb} MB",
             f"Max Memory Used: {max_used_mb if max_used_mb is not None else '-'} MB"]
    if init_ms is not None:
        parts.append(f"Init Duration: {init_ms:.2f} ms")
    if status:
        parts.append(f"Status: {status}")
    return "\t".join(parts)


def peak_memory_mb(pid: int) -> int | None:
    """The process's peak resident memory (VmHWM) in MB, as REPORT's Max Memory Used."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return math.ceil(int(line.split()[1]) / 1024)
    except OSError:
        return None
    return None


JOURNAL_LINES = 200  # lines of one attempt kept with its result; the log file has them all


@dataclass
class InvocationLog:
    """One invocation's lines, START to REPORT (with INIT_START on a cold start)."""

    request_id: str
    lines: list[str] = field(default_factory=list)
    duration_ms: float = 0.0
    init_ms: float | None = None
    max_memory_mb: int | None = None
    status: str | None = None  # None when the function answered; "timeout", "error" otherwise
    started: float = field(default=0.0, repr=False)  # perf_counter() when the invocation began

    def to_json(self) -> dict:
        return {"request_id": self.request_id, "duration_ms": round(self.duration_ms, 3),
                "billed_duration_ms": math.ceil(self.duration_ms), "init_ms": self.init_ms and
                round(self.init_ms, 3), "max_memory_mb": self.max_memory_mb,
                "status": self.status, "log": _capped(self.lines)}


def _capped(lines: list[str]) -> list[str]:
    """The first and last lines of a long log, with how many were left out between them."""
    if len(lines) <= JOURNAL_LINES:
        return list(lines)
    half = JOURNAL_LINES // 2
    return [*lines[:half], f"... {len(lines) - 2 * half} more lines in the handler log ...",
            *lines[-half:]]
