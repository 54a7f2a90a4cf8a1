"""Concurrent calls with media on the stub's one event-loop thread: the largest N whose RTP
stays within bounds.

For each N (rising; the first N that fails ends the run), load mode (`harness.run.load`) has SIPp
place N calls into the embedded stub at `--ramp` calls/s with `-rtp_echo` (so the stub also
receives 50 packets/s per call) while the stub plays a prompt long enough to cover the ramp and
a `--window` of seconds with all N calls up; then the stub hangs up. tshark captures every
packet the stub sends from its RTP ports. Over the window, with all N up: lost packets and
|interval - 20 ms| from our analysis of that capture, tshark's `rtp,streams` over the whole
capture as referee, and the stub thread's CPU share (its CPU seconds per wall second; the
stub's loop is one thread, so one core at most). N passes with every call successful, no
packet lost (ours and tshark's) or skipped (a media clock stall) and p99 |interval - 20| <= 2 ms.
Prints one JSON object.

    python bench/bench_concurrency.py [--calls 50 100 200 300 400 500] [--window 10] [--ramp 100]
        [--realtime]
"""
from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path

from common import TsharkCapture, cpu_share, keep_if_failed, pacing, tshark_rtp_streams

from harness.journal_entries import Answered, Hangup
from harness.journal_view import JournalView
from harness.run.load import LoadSpec, run_load
from harness.run.setup import free_rtp_range
from harness.wire.analysis import analyze_pcap

PROMPT, PROMPT_S = "tone-1000hz.wav", 2.0
P99_BOUND_MS = 2.0


def step(n: int, window: float, ramp: float, sample: int, realtime: bool) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"bench-concurrency-{n}-"))
    size = 2 * (n + sample + 64)
    lo, hi = free_rtp_range(size)
    repeat = math.ceil((n / ramp + window + 4) / PROMPT_S)
    capture = TsharkCapture(work / "rtp.pcap", f"udp and src portrange {lo}-{hi}")
    try:
        result = run_load(LoadSpec(sipp_calls=n, rate=ramp, concurrent=n, prompt=PROMPT,
                                   repeat=repeat, sample=sample, rtp_ports=(lo, hi),
                                   realtime=realtime,
                                   max_seconds=n / ramp + repeat * PROMPT_S + 60,
                                   out_dir=work / "load"), progress=lambda line: None)
    finally:
        capture.stop()
    journal, summary = result.journal, result.summary
    view = JournalView(journal)
    answered = sorted(e.time for e in view.of(Answered))
    hangups = [e.time for e in view.of(Hangup)]
    start = answered[n - 1] + 1.0 if len(answered) >= n else None
    end = min(hangups) - 0.5 if hangups else None
    figures = {"calls": n, "succeeded": summary["sources"]["sipp"]["succeeded"],
               "failed": summary["sources"]["sipp"]["failed"]}
    if start is None or end is None or end - start < window / 2:
        return {**figures, "meets": False, "artifacts": str(work),
                "reason": "the N calls were never all up for the window"}
    wire = analyze_pcap(str(work / "rtp.pcap"))
    figures.update(window_s=round(end - start, 2), streams=len(wire.rtp_streams),
                   **pacing(list(wire.rtp_streams), start, end),
                   stub_cpu_share=cpu_share(result.cpu, start, end),
                   tshark=tshark_rtp_streams(work / "rtp.pcap"))
    if "sample" in summary:
        figures["sample_verified"] = f"{summary['sample']['verified']}/{summary['sample']['calls']}"
    figures["meets"] = (figures["succeeded"] == n and figures["lost"] == 0
                        and figures["skipped"] == 0 and figures["tshark"]["lost"] == 0
                        and figures["interval_deviation_ms_p99"] <= P99_BOUND_MS)
    return keep_if_failed(figures, work, figures["meets"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, nargs="+", default=[50, 100, 200, 300, 400, 500])
    parser.add_argument("--window", type=float, default=10.0, help="seconds measured with all N up")
    parser.add_argument("--ramp", type=float, default=100.0, help="calls per second while ramping up")
    parser.add_argument("--sample", type=int, default=4, help="calls load mode verifies on the wire")
    parser.add_argument("--realtime", action="store_true",
                        help="run the stub's thread under SCHED_FIFO (root), as a media server would")
    args = parser.parse_args()
    steps = []
    for n in args.calls:
        steps.append(step(n, args.window, args.ramp, args.sample, args.realtime))
        if not steps[-1]["meets"]:
            break
    best = max((s["calls"] for s in steps if s["meets"]), default=0)
    print(json.dumps({"benchmark": "concurrent_calls", "max_calls": best, "target_calls": 500,
                      "realtime": args.realtime,
                      "p99_bound_ms": P99_BOUND_MS, "steps": steps}, indent=2))


if __name__ == "__main__":
    main()
