"""Soak: many sequential calls, then many concurrent ones, through the whole stub (SIP, a
Python handler that plays a prompt, RTP); resources counted before and after.

Prints one JSON object: calls completed and failed per phase (SIPp's own counts), and for the
stub process before/after: open file descriptors, threads, RSS, live transactions, dialogs,
media sessions, asyncio tasks, handler worker processes. The concurrent phase runs twice: the
first grows the warm handler pool (as Lambda scales out), the second must grow nothing. The
journal keeps its newest 1 MB of entries, as a long-running `serve` keeps a bounded journal.

    python bench/bench_soak.py [--sequential 10000] [--concurrent 100] [--hold-ms 2000]
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.sma.model import SipMediaApplication, SipRule  # noqa: E402
from harness.stub import Stub, StubConfig  # noqa: E402

HANDLER = ROOT / "sip_profiles" / "handlers" / "update_prompt.py"


def process_counts(stub: Stub) -> dict:
    gc.collect()
    status = Path("/proc/self/status").read_text()
    rss_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    return {"fds": len(os.listdir("/proc/self/fd")), "threads": int(
        next(line.split()[1] for line in status.splitlines() if line.startswith("Threads"))),
            "rss_mb": round(rss_kb / 1024, 1), **stub.resources()}


def sipp_phase(port: int, calls: int, rate: int, limit: int, hold_ms: int, work: Path) -> dict:
    """`sipp -sn uac`: `calls` calls at `rate`/s, at most `limit` at once; its final counts."""
    stats = work / f"stats-{calls}-{limit}.csv"
    done = subprocess.run(
        [shutil.which("sipp"), "-sn", "uac", "-s", "+14345550101", "-i", "127.0.0.1", "-p", "0",
         "-m", str(calls), "-r", str(rate), "-l", str(limit), "-d", str(hold_ms),
         "-timeout", str(max(60, calls // max(rate, 1) * 3)), "-timeout_error", "-trace_stat",
         "-stf", str(stats), "-fd", "3600", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    rows = [line.split(";") for line in stats.read_text().splitlines()]
    last = dict(zip(rows[0], rows[-1]))
    return {"calls": calls, "rate": rate, "max_concurrent": limit, "hold_ms": hold_ms,
            "successful": int(last["SuccessfulCall(C)"]), "failed": int(last["FailedCall(C)"]),
            "sipp_exit": done.returncode}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sequential", type=int, default=10000)
    parser.add_argument("--concurrent", type=int, default=100)
    parser.add_argument("--hold-ms", type=int, default=2000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    sma = SipMediaApplication("soak-sma", str(HANDLER), name="soak")
    config = StubConfig([sma], [SipRule("r", "ToPhoneNumber", "*", [(1, "soak-sma")])],
                        ROOT / "sip_profiles" / "bucket", run_dir=work, journal_max_bytes=1_000_000)
    started = time.monotonic()
    with Stub(config) as stub:
        warm = sipp_phase(stub.sip_port, 10, 10, 10, 200, work)  # workers and caches warm
        time.sleep(1)
        before = process_counts(stub)
        sequential = sipp_phase(stub.sip_port, args.sequential, 100, 1, 0, work)
        concurrent = sipp_phase(stub.sip_port, args.concurrent, 50, args.concurrent, args.hold_ms, work)
        time.sleep(2)  # the last BYEs, HANGUP invocations and transaction ends
        after = process_counts(stub)
        again = sipp_phase(stub.sip_port, args.concurrent, 50, args.concurrent, args.hold_ms, work)
        time.sleep(2)
        after_again = process_counts(stub)
    print(json.dumps({"benchmark": "soak", "warm_up": warm, "sequential": sequential,
                      "concurrent": concurrent, "concurrent_again": again, "before": before,
                      "after": after, "after_again": after_again,
                      "seconds": round(time.monotonic() - started, 1)}))


if __name__ == "__main__":
    main()
