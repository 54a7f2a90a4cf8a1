"""Run every benchmark and print one combined JSON object, then a Markdown table (figure,
value, target) for the README. Each benchmark runs as its own process, one after the other;
their progress goes to stderr.

    python bench/run_all.py [--quick] [--only NAME ...]

`--quick` runs each with smaller counts (a few minutes in all); the full run takes about ten.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
#: name -> (script, full arguments, quick arguments, timeout in seconds)
BENCHMARKS = {
    "update_latency": ("bench_update_latency.py", ["--updates", "200"], ["--updates", "200"], 600),
    "concurrent_calls": ("bench_concurrency.py", [], ["--calls", "50", "100", "--window", "5"], 1800),
    "setup_rate": ("bench_setup_rate.py", [], ["--rates", "50", "100", "--seconds", "4"], 1200),
    "analysis": ("bench_analysis.py", [], ["--calls", "20", "--seconds", "30", "--runs", "1"], 1800),
    "sip_core": ("bench_sip.py", [], ["--seconds", "2", "--rates", "100,200"], 600),
    "speech": ("bench_speech.py", [], ["--sentences", "20"], 900),
    "suite_parallel": ("bench_parallel.py", [], ["--shards", "2"], 1800),
    "cluster": ("bench_cluster.py", ["--rounds", "3", "--rates", "200", "250", "300", "350", "400",
                                     "450", "500", "600", "800", "--seconds", "6"],
                ["--rates", "100", "200", "--seconds", "4", "--calls", "50"], 3600),
}


def last_json(text: str) -> dict | None:
    """The last JSON object printed (objects start at the beginning of a line)."""
    decoder, found = json.JSONDecoder(), None
    for start in (i for i, ch in enumerate(text) if ch == "{" and (i == 0 or text[i - 1] == "\n")):
        try:
            found = decoder.raw_decode(text, start)[0]
        except ValueError:
            continue
    return found


def run(name: str, quick: bool) -> dict:
    script, full, short, timeout = BENCHMARKS[name]
    if not (BENCH / script).is_file():
        return {"error": f"{script} does not exist"}
    start = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, str(BENCH / script)] + (short if quick else full),
                              stdout=subprocess.PIPE, text=True, timeout=timeout, cwd=BENCH.parent)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    result = last_json(proc.stdout)
    if proc.returncode or result is None:
        return {"error": f"exit status {proc.returncode}", "output": proc.stdout[-2000:]}
    return {**result, "bench_seconds": round(time.monotonic() - start, 1)}


def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return {"cpus": os.cpu_count(), "cpu": model, "kernel": platform.release(),
            "python": platform.python_version(), "load_average": [round(x, 2) for x in os.getloadavg()]}


def rows(results: dict) -> list[tuple[str, str, str]]:
    """(figure, value, target) for each benchmark that produced its figures."""
    out = []
    r = results.get("update_latency", {})
    if "p99_ms" in r:
        out.append((f"update-to-wire latency over {r['measured']} updates of one call (Python handler)",
                    f"p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms", "p99 ≤ 25 ms"))
    r = results.get("concurrent_calls", {})
    if "max_calls" in r:
        best = next((s for s in r["steps"] if s["calls"] == r["max_calls"]), None)
        detail = f" (stub thread {best['stub_cpu_share'] or 0:.0%} of a core, p99 " \
                 f"{best['interval_deviation_ms_p99']} ms)" if best else ""
        tried = ", ".join(str(s["calls"]) for s in r["steps"])
        out.append((f"concurrent calls with media both ways: 0 lost, p99 of the packet interval's "
                    f"deviation from 20 ms ≤ 2 ms (tried {tried})", f"{r['max_calls']}{detail}", "≥ 500"))
    r = results.get("setup_rate", {})
    if "setups_per_s" in r:
        tried = ", ".join(str(x["rate"]) for x in r["runs"])
        out.append((f"call setups/s through the stub (handler plays, hangs up), 0 failed (tried {tried}/s)",
                    f"{r['setups_per_s']}/s", "≥ 200/s"))
    r = results.get("analysis", {})
    if "ours_packets_per_s" in r:
        out.append((f"pcap analysis (streams, RTCP, MOS) of {r['packets']:,} packets vs tshark rtp,streams",
                    f"{r['ours_packets_per_s']:,} vs {r['tshark_packets_per_s']:,} packets/s "
                    f"({r['ratio']}×), tables {'equal' if r['equal'] else 'DIFFER'}", "≥ 5×"))
    r = results.get("speech", {})
    if "found_share" in r:
        out.append((f"expected phrases found in {r['sentences']} sentences spoken by Speak, decoded from the wire; "
                    f"wrong phrases found (of {r['false_pairs']})",
                    f"{r['found_share']:.0%} found, {r['false_share']:.1%} false", "≥ 95 %, ≤ 2 %"))
    r = results.get("sip_core", {})
    if "call_setups_per_s" in r:
        out.append(("bare SIP core (no SMA, no media): parses/s, SIPp call setups/s",
                    f"{r['parse_per_s']:,}/s, {r['call_setups_per_s']}/s", "—"))
    r = results.get("suite_parallel", {})
    if "ratio" in r:
        out.append((f"the bundled suite ({r['profiles']} profiles), `run -j 4` vs one after the other; "
                    f"`--shard K/{len(r['shards'])}` merged",
                    f"{r['jobs_4_s']} s vs {r['sequential_s']} s: **{r['ratio']}×**, same verdicts: "
                    f"{'yes' if r['same_verdicts'] else 'NO'}; shards merged same verdicts: "
                    f"{'yes' if r['shards_merged_same_verdicts'] else 'NO'}", "≤ 0.4×"))
    r = results.get("cluster", {})
    if "summary" in r:
        ref = r["summary"]["sipp_vs_sipp"]["setups_per_s_kept"]
        calls = r["summary"]["workers_1"]["media_calls"]
        parts = [f"SIPp vs SIPp {ref}/s"]
        for name, m in r["summary"].items():
            if name.startswith("workers_"):
                parts.append(f"{name.split('_')[1]} worker(s) {m['setups_per_s_kept']}/s "
                             f"({r['ratios'][name]['setups_vs_1_worker']}× of 1), media p99 "
                             f"{m['media_p99_ms']} ms, {m['media_lost']} lost, {m['media_rounds_passed']} rounds passed")
        out.append((f"`serve --workers N` behind Kamailio: set-ups/s kept (median of {r['rounds']} interleaved "
                    f"rounds) and {calls} concurrent calls with media (p99 ≤ 2 ms, 0 lost); the load generator "
                    f"shares the {r['cores']} cores", "; ".join(parts), "—"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts, a few minutes")
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), help="run only these")
    args = parser.parse_args()
    about = {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "machine": machine(),
             "mode": "quick" if args.quick else "full"}
    results = {}
    for name in args.only or BENCHMARKS:
        print(f"[run_all] {name} ...", file=sys.stderr, flush=True)
        results[name] = run(name, args.quick)
        print(f"[run_all] {name}: {results[name].get('error', 'done')}", file=sys.stderr, flush=True)
    print(json.dumps({**about, "benchmarks": results}, indent=2))
    m = about["machine"]
    print(f"\nMeasured on {about['date']}, {m['cpus']} × {m['cpu']}, Linux {m['kernel']}, "
          f"Python {m['python']} ({about['mode']} run, load average {m['load_average'][0]} at the start).\n")
    print("| figure | value | target |\n|---|---|---|")
    for figure, value, target in rows(results):
        print(f"| {figure} | {value} | {target} |")
    failed = [name for name, r in results.items() if "error" in r]
    if failed:
        print(f"\nnot measured: {', '.join(failed)}")


if __name__ == "__main__":
    main()
