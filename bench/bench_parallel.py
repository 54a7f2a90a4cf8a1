"""The bundled suite sequential and with `run -j N`, side by side in one run: wall times, their
ratio (the aim: -j 4 in at most 0.4 of the sequential time) and whether the verdicts are the
same; then the suite in `--shard 1/3`, `2/3`, `3/3` merged with `report merge`, whose verdict
set must be the sequential run's. Prints one JSON object.

    python bench/bench_parallel.py [--jobs 4] [--shards 3] [PROFILES...]
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLI = [str(Path(sys.executable).parent / "sip-harness")]
TARGET_RATIO = 0.4


def timed_run(args: list[str], out: Path) -> tuple[float, dict[str, str], int]:
    started = time.monotonic()
    done = subprocess.run(CLI + ["run", *args, "--out", str(out)], cwd=ROOT, capture_output=True,
                          text=True, timeout=3600)
    seconds = time.monotonic() - started
    report = out / "run.json"
    verdicts = {p["path"]: p["verdict"] for p in json.loads(report.read_text())["profiles"]} \
        if report.is_file() else {}
    return round(seconds, 1), verdicts, done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profiles", nargs="*", default=["sip_profiles"])
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--shards", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-parallel-"))
    try:
        seq_s, seq, seq_exit = timed_run(args.profiles, work / "sequential")
        par_s, par, par_exit = timed_run([*args.profiles, "-j", str(args.jobs)], work / "parallel")
        shard_runs = [timed_run([*args.profiles, "--shard", f"{k}/{args.shards}"], work / f"shard-{k}")
                      for k in range(1, args.shards + 1)]
        merged = subprocess.run(CLI + ["report", "merge", *(str(work / f"shard-{k}")
                                                            for k in range(1, args.shards + 1)),
                                       "--out", str(work / "merged")], capture_output=True, text=True)
        merged_verdicts = {p["path"]: p["verdict"] for p in json.loads(
            (work / "merged" / "run.json").read_text())["profiles"]} if merged.returncode in (0, 1) else {}
        ratio = round(par_s / seq_s, 3) if seq_s else None
        print(json.dumps({
            "benchmark": "suite_parallel_and_sharded", "profiles": len(seq),
            "sequential_s": seq_s, f"jobs_{args.jobs}_s": par_s, "ratio": ratio,
            "target_ratio": TARGET_RATIO, "ratio_met": ratio is not None and ratio <= TARGET_RATIO,
            "same_verdicts": seq == par, "passed": sum(v == "pass" for v in seq.values()),
            "exit_codes": {"sequential": seq_exit, "parallel": par_exit},
            "shards": [{"shard": f"{k}/{args.shards}", "seconds": s, "profiles": len(v)}
                       for k, (s, v, _) in enumerate(shard_runs, 1)],
            "shards_merged_same_verdicts": merged_verdicts == seq,
        }, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
