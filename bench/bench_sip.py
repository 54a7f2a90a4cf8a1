"""Benchmark of the SIP core; prints one JSON object.

- `parse_per_s`: SIP messages (an INVITE with SDP, a 200 OK) parsed per second.
- `call_setups_per_s`: calls per second completed by `sipp -sn uac -r RATE` (INVITE, 100,
  180, 200, ACK, BYE, 200) against the SIP core on UDP answering with `AutoAnswer` (no SMA,
  no media), at rising rates; the figure is the best rate that ended with 0 failed calls.

    python bench/bench_sip.py [--seconds 4] [--rates 100,200,400,800]
"""
from __future__ import annotations

import argparse
import asyncio
import csv
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.testing.autoanswer import AutoAnswer  # noqa: E402
from harness.sip.message import parse_message  # noqa: E402
from harness.sip.sdp import build_offer  # noqa: E402
from harness.sip.transport import UdpSipTransport  # noqa: E402

INVITE = (b"INVITE sip:+14345550101@127.0.0.1:5080 SIP/2.0\r\n"
          b"Via: SIP/2.0/UDP 127.0.0.1:5062;rport;branch=z9hG4bKPj3c2a\r\n"
          b"Max-Forwards: 70\r\n"
          b"From: \"Caller\" <sip:+14255550199@127.0.0.1>;tag=a8c3f1\r\n"
          b"To: <sip:+14345550101@127.0.0.1>\r\n"
          b"Contact: <sip:caller@127.0.0.1:5062;ob>\r\n"
          b"Call-ID: 5b1e0f9c-bench@127.0.0.1\r\nCSeq: 4711 INVITE\r\n"
          b"Allow: PRACK, INVITE, ACK, BYE, CANCEL, UPDATE, INFO, SUBSCRIBE, NOTIFY, REFER\r\n"
          b"Supported: replaces, 100rel, timer, norefersub\r\nUser-Agent: bench\r\n"
          b"X-Test-Value: String\r\nContent-Type: application/sdp\r\n")
SDP = build_offer("127.0.0.1", 4000, 1)
INVITE += b"Content-Length: %d\r\n\r\n" % len(SDP) + SDP
OK = parse_message(INVITE).reply(200, "OK", "b7d2").serialize()


def parse_rate(seconds: float) -> float:
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(500):
            parse_message(INVITE)
            parse_message(OK)
        count += 1000
    return count / elapsed


async def sipp_run(port: int, rate: int, calls: int, workdir: Path) -> dict:
    """One SIPp run at `rate` calls/s; its final statistics."""
    stats = workdir / f"stats-{rate}.csv"
    proc = await asyncio.create_subprocess_exec(
        shutil.which("sipp"), "-sn", "uac", "-i", "127.0.0.1", "-p", "0", "-r", str(rate),
        "-m", str(calls), "-d", "0", "-timeout", "60", "-timeout_error", "-trace_stat",
        "-stf", str(stats), "-fd", "1", f"127.0.0.1:{port}",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL, cwd=workdir)
    start = time.monotonic()
    try:
        await asyncio.wait_for(proc.wait(), 90)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    elapsed = time.monotonic() - start
    with stats.open() as f:
        last = list(csv.DictReader(f, delimiter=";"))[-1]
    ok, failed = int(last["SuccessfulCall(C)"]), int(last["FailedCall(C)"])
    return {"rate": rate, "calls": calls, "successful": ok, "failed": failed,
            "retransmissions": int(last["Retransmissions(C)"]), "seconds": round(elapsed, 2),
            "setups_per_s": round(ok / elapsed, 1), "exit_status": proc.returncode}


async def call_setups(rates: list[int], seconds: float) -> dict:
    loop = asyncio.get_running_loop()
    ua = AutoAnswer(loop.time)
    sip = await UdpSipTransport.listen("127.0.0.1", 0, ua)
    ua.endpoint = sip.endpoint
    runs = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for rate in rates:
                run = await sipp_run(sip.port, rate, int(rate * seconds), Path(tmp))
                runs.append(run)
                if run["failed"] or run["exit_status"]:
                    break
    finally:
        sip.close()
    clean = [r for r in runs if not r["failed"] and not r["exit_status"]]
    best = max(clean, key=lambda r: r["setups_per_s"], default=None)
    return {"call_setups_per_s": best["setups_per_s"] if best else 0.0,
            "at_rate": best["rate"] if best else None, "runs": runs,
            "malformed": sip.endpoint.malformed_count}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each SIPp run")
    parser.add_argument("--rates", default="100,200,400,800",
                        help="call rates to try, in order, until one has failed calls")
    args = parser.parse_args()
    if shutil.which("sipp") is None:
        sys.exit("sipp is not installed (Debian package sip-tester)")
    result = {"parse_per_s": round(parse_rate(2.0))}
    result.update(asyncio.run(call_setups([int(r) for r in args.rates.split(",")], args.seconds)))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
