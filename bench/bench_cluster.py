"""Calls through `sip-harness serve --workers N` (stub workers behind Kamailio), side by side in
one run for N = 1, 2, ... (`--workers`, default up to the machine's cores), with SIPp against
SIPp on the same machine as the reference:

- set-ups per second: SIPp places `rate x --seconds` calls at each rate (rising; the first rate
  a configuration cannot keep ends its climb); each call is answered by the handler, hears a
  200 ms beep and is hung up by the stub (the reference: `sipp -sn uas` answers, the caller
  hangs up after 200 ms). A rate is kept when every call succeeded and the calls took at most
  10 % longer than the rate allows.
- concurrent calls with media: `--calls` calls held with `-rtp_echo` (so each worker also
  receives 50 packets/s per call) while the stub plays a tone; over a window with all of them
  up, from a capture of the workers' RTP: lost packets and p99 |interval - 20 ms|
  (`common.pacing`), passing with 0 lost and p99 <= 2 ms.

Ratios are to `--workers 1`. The load generator shares the cores with the stub workers, so
on a 2-core machine a second worker cannot double anything: the figures show how far the work
spreads, and on a bigger machine `--workers` up to its cores shows the scaling. Prints one
JSON object.

    python bench/bench_cluster.py [--workers 1 2] [--rates 100 200 300 400] [--seconds 8]
        [--calls 200] [--window 6] [--rounds 1]

With `--rounds R` every configuration runs R times, the rounds one after the other (so a
noisy minute hits every configuration alike), and the summary gives medians.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import TsharkCapture, pacing

from harness.media.sources import tone, write_wav
from harness.run.load import ASSETS
from harness.wire.analysis import analyze_pcap

SIPP = shutil.which("sipp") or "sipp"
UNTIL_BYE = ASSETS / "uac_until_bye.xml"
HANDLER = ASSETS / "play_hangup.py"
KEPT = 1.10
P99_BOUND_MS = 2.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def profile(work: Path, prompt: str, repeat: int) -> Path:
    bucket = work / "bucket" / "prompts"
    bucket.mkdir(parents=True, exist_ok=True)
    write_wav(bucket / "beep-200ms.wav", tone(1000, 0.2))
    write_wav(bucket / "tone-2s.wav", tone(440, 2.0))
    path = work / "bench-cluster.yaml"
    path.write_text(f"name: bench cluster\nstub:\n  handler: {HANDLER}\n  bucket_dir: {work / 'bucket'}\n"
                    f"  environment: {{BENCH_PROMPT: {prompt}, BENCH_REPEAT: '{repeat}'}}\n"
                    "steps:\n  - sleep_ms: 1\n")
    return path


@contextlib.contextmanager
def cluster(workers: int, profile_path: Path, work: Path, rtp: tuple[int, int]):
    """`serve --workers N` on free ports; yields its SIP port."""
    sip, api = free_port(), free_port()
    log = work / f"cluster-{workers}.log"
    proc = subprocess.Popen([str(Path(sys.executable).parent / "sip-harness"), "serve",
                             "--workers", str(workers), "--profile", str(profile_path),
                             "--sip-port", str(sip), "--api-port", str(api),
                             "--rtp-ports", f"{rtp[0]}-{rtp[1]}", "--out", str(work / f"cluster-{workers}"),
                             "--no-transaction-artifacts", "--log-format", "json"],
                            stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while "cluster started" not in log.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the cluster did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield sip
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(90)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@contextlib.contextmanager
def sipp_uas():
    """`sipp -sn uas` in the background (it prints its PID), answering every call."""
    port = free_port()
    started = subprocess.run([SIPP, "-sn", "uas", "-i", "127.0.0.1", "-p", str(port), "-bg"],
                             stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=10)
    pid = int(re.search(r"PID=\[(\d+)\]", started.stdout).group(1))
    time.sleep(0.5)
    try:
        yield port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


def sipp_calls(port: int, rate: float, calls: int, work: Path, media_port: int, *,
               until_bye: bool, echo: bool = False, hold_ms: int = 200, limit: int | None = None,
               timeout_s: float = 120) -> dict:
    """SIPp places `calls` at `rate`; successes, failures and elapsed seconds."""
    stats = work / f"sipp-{port}-{rate}-{calls}.csv"
    scenario = ["-sf", str(UNTIL_BYE)] if until_bye else ["-sn", "uac", "-d", str(hold_ms)]
    argv = [SIPP, *scenario, "-s", "+14345550101", "-i", "127.0.0.1", "-mi", "127.0.0.1", "-p", "0",
            "-mp", str(media_port), "-m", str(calls), "-r", str(rate), "-recv_timeout", "30000",
            "-timeout", f"{int(timeout_s)}s", "-timeout_error", "-trace_stat", "-stf", str(stats),
            "-fd", "1", "-nostdin"]
    if echo:
        argv += ["-rtp_echo"]
    if limit:
        argv += ["-l", str(limit)]
    started = time.monotonic()
    done = subprocess.run(argv + [f"127.0.0.1:{port}"], stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout_s + 30)
    elapsed = time.monotonic() - started
    with stats.open() as f:
        last = list(csv.DictReader(f, delimiter=";"))[-1]
    return {"succeeded": int(last["SuccessfulCall(C)"]), "failed": int(last["FailedCall(C)"]),
            "elapsed_s": round(elapsed, 2), "exit": done.returncode}


def climb(target, rates: list[int], seconds: float, work: Path, media_port: int, until_bye: bool) -> dict:
    runs, best = [], 0
    for rate in rates:
        calls = int(rate * seconds)
        r = sipp_calls(target, rate, calls, work, media_port, until_bye=until_bye)
        r["rate"] = rate
        r["kept"] = r["failed"] == 0 and r["succeeded"] == calls and r["elapsed_s"] <= KEPT * seconds + 2
        runs.append(r)
        if not r["kept"]:
            break
        best = rate
    return {"setups_per_s_kept": best, "runs": runs}


def concurrency(sip_port: int, calls: int, window: float, work: Path, rtp: tuple[int, int],
                media_port: int, name: str) -> dict:
    pcap = work / f"media-{name}.pcap"
    capture = TsharkCapture(pcap, f"udp and src portrange {rtp[0]}-{rtp[1]}")
    ramp = 100.0
    start = time.time()
    try:
        r = sipp_calls(sip_port, ramp, calls, work, media_port, until_bye=True, echo=True,
                       limit=calls, timeout_s=calls / ramp + window + 60)
    finally:
        capture.stop()
    wire = analyze_pcap(str(pcap))
    streams = [s for s in wire.rtp_streams if s.src[0].startswith("127.0.0.")]
    window_start = start + calls / ramp + 1.0
    figures = {"calls": calls, **r, **pacing(streams, window_start, window_start + window)}
    figures["passed"] = figures["failed"] == 0 and figures["lost"] == 0 \
        and figures["interval_deviation_ms_p99"] <= P99_BOUND_MS
    return figures


def one_round(args, work: Path, rtp: tuple[int, int], media_port: int) -> dict:
    """SIPp against SIPp, then every `--workers` count, one after the other."""
    results: dict = {}
    with sipp_uas() as uas:
        results["sipp_vs_sipp"] = {"setups": climb(uas, args.rates, args.seconds, work,
                                                   media_port, until_bye=False)}
    repeat = int((args.calls / 100.0 + args.window + 6) / 2.0) + 1
    for n in args.workers:
        entry: dict = {}
        with cluster(n, profile(work / f"setups-{n}", "beep-200ms.wav", 1), work, rtp) as sip:
            entry["setups"] = climb(sip, args.rates, args.seconds, work, media_port, until_bye=True)
        with cluster(n, profile(work / f"media-{n}", "tone-2s.wav", repeat), work, rtp) as sip:
            entry["media"] = concurrency(sip, args.calls, args.window, work, rtp, media_port, f"w{n}")
        results[f"workers_{n}"] = entry
    return results


def summary(rounds: list[dict]) -> dict:
    """Per configuration over the rounds: the median rate kept, and for the media runs the
    median p99 and how many rounds passed."""
    out = {}
    for name in rounds[0]:
        kept = [r[name]["setups"]["setups_per_s_kept"] for r in rounds]
        entry = {"setups_per_s_kept": statistics.median(kept), "setups_per_s_kept_each_round": kept}
        media = [r[name]["media"] for r in rounds if "media" in r[name]]
        if media:
            entry["media_calls"] = media[0]["calls"]
            entry["media_p99_ms"] = statistics.median(m["interval_deviation_ms_p99"] for m in media)
            entry["media_lost"] = sum(m["lost"] for m in media)
            entry["media_rounds_passed"] = f"{sum(m['passed'] for m in media)}/{len(media)}"
        out[name] = entry
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+",
                        default=list(range(1, max(2, os.cpu_count() or 1) + 1)))
    parser.add_argument("--rates", type=int, nargs="+", default=[100, 200, 300, 400])
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each rate's run")
    parser.add_argument("--calls", type=int, default=200, help="concurrent calls with media")
    parser.add_argument("--window", type=float, default=6.0, help="seconds with all calls up")
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat every configuration this often, interleaved, and report medians")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    rtp = (26000, 26000 + 4 * (args.calls + 64))
    media_port = 40000
    rounds = [one_round(args, work, rtp, media_port) for _ in range(args.rounds)]
    medians = summary(rounds)
    base = medians.get("workers_1", {}).get("setups_per_s_kept") or 0
    ref = medians["sipp_vs_sipp"]["setups_per_s_kept"] or 0
    out = {"benchmark": "stub_cluster", "cores": os.cpu_count(), "rounds": args.rounds,
           "summary": medians,
           "ratios": {name: {"setups_vs_1_worker": round(m["setups_per_s_kept"] / base, 2) if base else None,
                             "setups_vs_sipp": round(m["setups_per_s_kept"] / ref, 3) if ref else None}
                      for name, m in medians.items() if name.startswith("workers_")},
           "results": rounds}
    print(json.dumps(out, indent=2))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
