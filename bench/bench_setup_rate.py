"""Call setups per second through the whole stub: SIPp at rising `-r` rates, each call answered
by the handler (a Python worker process), played a 200 ms beep and hung up by the stub.

For each rate, load mode (`harness.run.load`) has SIPp place `rate x --seconds` calls (with
`-rtp_echo`) into the embedded stub, climbing to the rate over `--ramp` seconds while the
handler's warm pool grows (a cold start per worker, as Lambda scales out); a sample of the calls
is verified on the wire. `setups_per_s` is the answer rate of the calls that arrived after the
ramp: their number less one over the time from the first of their answers to the last. A rate passes when every call succeeded (SIPp and
the stub's journal agree) and `setups_per_s` is at least 95 % of the rate. Stops at the first
rate that fails. `answer_ms_*` is the stub's time from INVITE to 200 OK, which includes the
NEW_INBOUND_CALL invocation. Prints one JSON object.

    python bench/bench_setup_rate.py [--rates 100 200 300 400] [--seconds 10] [--ramp 2]
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from common import cpu_share, keep_if_failed

from harness.journal_entries import Answered
from harness.journal_view import JournalView
from harness.run.load import LoadSpec, run_load
from harness.media.sources import tone, write_wav

BEEP = "beep-200ms.wav"
KEPT_PACE = 0.95


def run_rate(rate: int, seconds: float, ramp: int, bucket: Path, sample: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"bench-setup-{rate}-"))
    calls = int(rate * seconds)
    result = run_load(LoadSpec(sipp_calls=calls, rate=rate, ramp_s=ramp, prompt=BEEP, sample=sample,
                               bucket_dir=bucket, max_seconds=seconds + ramp + 60, out_dir=work),
                      progress=lambda line: None)
    s, journal = result.summary, result.journal
    view = JournalView(journal)
    arrived = {e.transaction_id: e.time for e in view.arrivals()}
    start = min(arrived.values(), default=0.0) + ramp
    answered = sorted(e.time for e in view.of(Answered)
                      if arrived.get(e.transaction_id, 0.0) >= start)
    span = answered[-1] - answered[0] if len(answered) > 1 else 0.0
    sipp = s["sources"]["sipp"]
    figures = {"rate": rate, "calls": calls, "succeeded": sipp["succeeded"], "failed": sipp["failed"],
               "retransmissions": sipp["retransmissions"], "steady_seconds": round(span, 2),
               "setups_per_s": round((len(answered) - 1) / span, 1) if span else 0.0,
               "answer_ms_p50": s["stub"]["answer_ms_p50"], "answer_ms_p99": s["stub"]["answer_ms_p99"],
               "peak_up": s["stub"]["peak_up"], "handler_failures": s["stub"]["handler_failures"],
               "stub_cpu_share": cpu_share(result.cpu, start, answered[-1] if answered else start),
               "sample_verified": f"{s['sample']['verified']}/{s['sample']['calls']}"
               if "sample" in s else None}
    figures["passed"] = s["passed"] and figures["setups_per_s"] >= KEPT_PACE * rate
    return keep_if_failed(figures, work, figures["passed"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=int, nargs="+", default=[100, 200, 300, 400])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each rate's run")
    parser.add_argument("--ramp", type=int, default=2, help="seconds SIPp takes to reach the rate")
    parser.add_argument("--sample", type=int, default=8, help="RTP port pairs verified on the wire")
    args = parser.parse_args()
    bucket = Path(tempfile.mkdtemp(prefix="bench-setup-bucket-"))
    (bucket / "prompts").mkdir()
    write_wav(bucket / "prompts" / BEEP, tone(1000, 0.2))
    runs = []
    try:
        for rate in args.rates:
            runs.append(run_rate(rate, args.seconds, args.ramp, bucket, args.sample))
            if not runs[-1]["passed"]:
                break
    finally:
        shutil.rmtree(bucket, ignore_errors=True)
    best = max((r for r in runs if r["passed"]), key=lambda r: r["setups_per_s"], default=None)
    print(json.dumps({"benchmark": "call_setups_through_stub",
                      "setups_per_s": best["setups_per_s"] if best else 0.0,
                      "at_rate": best["rate"] if best else None, "target_setups_per_s": 200,
                      "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
