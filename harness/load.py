"""Load mode: many calls into an embedded stub, from SIPp and from pjsua2, a sample on the wire.

The stub serves `bench/handlers/play_hangup.py`: every call hears a prompt and is hung up by
the stub. SIPp (`bench/scenarios/uac_until_bye.xml`, `-rtp_echo` sends the stub's RTP back)
and a pool of pjsua2 workers each place their calls at `rate` per second, with at most
`concurrent` up at once (`sipp -r R -l N`): a high rate and a limit keep N calls up.

The sample: the capture takes every SIP message plus the RTP of the lowest `sample` port pairs
of the stub's RTP range (the stub binds the lowest free pair, so the first calls and every call
that finds one of those pairs free land there); those calls are judged from the capture alone:
a complete ladder with the stub's BYE, the stub's stream without loss, the prompt recognised.
The driver prints a progress line a second; every loop is bounded by `max_seconds`.

    python -m harness.load --calls 200 --rate 20 --pjsua2 8 --sample 8
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .caller import Caller, CallerError
from .media.sources import read_wav
from .sma.model import SipMediaApplication, SipRule, rule_id
from .stub import Stub, StubConfig
from .wire.analysis import WireAnalysis, analyze_pcap
from .wire.audio import PromptMatcher, label_packets
from .wire.capture import Capture

ROOT = Path(__file__).resolve().parent.parent
HANDLER = ROOT / "bench" / "handlers" / "play_hangup.py"
SCENARIO = ROOT / "bench" / "scenarios" / "uac_until_bye.xml"
BUCKET = ROOT / "sip_profiles" / "bucket"
HOST = "127.0.0.1"
TO, FROM = "+14345550101", "+14255550199"
SMA_ID = "load-sma"
TICK_S = 0.05
JOURNAL_PER_CALL = 20  # journal entries kept per call, so the summary counts every call
SETUP_TIMEOUT_S = 10.0
#: The stub's RTP ports lie below the kernel's ephemeral range (no SIP or API socket falls in
#: them) and above SIPp's media ports.
SIPP_MEDIA_BASE, RTP_BASE, RTP_TOP = 7000, 10000, 32000


@dataclass
class LoadSpec:
    """What to run. `rate` and `concurrent` apply to each source (SIPp, pjsua2) on its own;
    with `ramp_s`, SIPp's rate climbs in equal steps, one a second, to `rate` over that time.
    `realtime` runs the stub's thread under SCHED_FIFO (root), as a media server would run, so
    other processes on the machine cannot delay its media clock."""

    sipp_calls: int = 100
    pjsua2_calls: int = 0
    rate: float = 10.0
    ramp_s: int = 0
    concurrent: int | None = None
    prompt: str = "tone-1000hz.wav"
    repeat: int = 1
    sample: int = 8
    max_seconds: float = 120.0
    echo: bool = True
    realtime: bool = False
    bucket_dir: Path = BUCKET
    rtp_ports: tuple[int, int] | None = None
    out_dir: Path | None = None
    progress_s: float = 1.0


@dataclass
class LoadResult:
    """The JSON summary, the stub's journal, and samples (wall-clock time, CPU seconds) of the
    stub thread's CPU time, one per progress line."""

    summary: dict
    journal: list[dict]
    cpu: list[tuple[float, float]] = field(default_factory=list)


def run_load(spec: LoadSpec, progress: Callable[[str], None] = print) -> LoadResult:
    """Run the load described by `spec`; returns when every call ended or time ran out."""
    out = Path(spec.out_dir or tempfile.mkdtemp(prefix="sip-harness-load-")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    prompt_s = len(read_wav((spec.bucket_dir / "prompts" / spec.prompt).read_bytes())) / 8000
    call_s = prompt_s * spec.repeat
    ports = spec.rtp_ports or _rtp_range(_ports_needed(spec, call_s))
    sample_ports = (ports[0], ports[0] + 2 * spec.sample - 1)
    before = set(threading.enumerate())
    stub = Stub(_stub_config(spec, out, ports)).start()
    try:
        thread = next(t for t in threading.enumerate() if t not in before and t.name == "sma-stub")
        if spec.realtime:  # the handler processes the thread starts get the normal policy back
            os.sched_setscheduler(thread.native_id, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK,
                                  os.sched_param(10))
        driver = _Driver(spec, stub, out, call_s, progress, time.pthread_getcpuclockid(thread.ident))
        sipp, stats = _drive(spec, stub, driver, out / "capture.pcap", sample_ports, call_s)
        leftovers = {k: v for k, v in stub.resources().items() if v and k != "handler_workers"}
        drops = udp_drops(stub.sip_port, ports)
    finally:
        stub.stop()
    journal = stub.journal_json()
    (out / "journal.json").write_text(json.dumps(journal, default=str))
    summary = driver.summary(sipp, journal, leftovers)
    summary["stub"]["socket_drops"] = drops
    summary["rtp_ports"] = list(ports)
    if stats is not None:
        summary["capture"] = {"path": stats.path, "packets": stats.packets,
                              "kernel_drops": stats.kernel_drops}
        summary["sample"] = verify_sample(analyze_pcap(stats.path), journal, stub.sip_port,
                                          sample_ports, spec, prompt_s)
    summary["passed"] = _passed(summary)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return LoadResult(summary, journal, driver.cpu)


def _stub_config(spec: LoadSpec, out: Path, ports: tuple[int, int]) -> StubConfig:
    sma = SipMediaApplication(SMA_ID, str(HANDLER), name="load", environment={
        "BENCH_PROMPT": spec.prompt, "BENCH_REPEAT": str(spec.repeat)})
    return StubConfig([sma], [SipRule(rule_id("load"), "ToPhoneNumber", "*", [(1, SMA_ID)])],
                      spec.bucket_dir.resolve(), run_dir=out, rtp_port_range=ports,
                      journal_limit=JOURNAL_PER_CALL * (spec.sipp_calls + spec.pjsua2_calls) + 1000)


def _drive(spec: LoadSpec, stub: Stub, driver: "_Driver", pcap: Path, sample_ports: tuple[int, int],
           call_s: float):
    """Capture the sample, start the callers, run the driver; stop everything it started."""
    capture = sipp = caller = None
    stats = None
    try:
        if spec.sample:
            capture = Capture(pcap, bpf=f"udp and host {HOST} and (port {stub.sip_port} or "
                                         f"portrange {sample_ports[0]}-{sample_ports[1]})")
            capture.start()
        if spec.sipp_calls:
            sipp = _Sipp(spec, stub.sip_port, pcap.parent, call_s)
        if spec.pjsua2_calls:
            caller = Caller(workdir=pcap.parent / "caller")
        driver.run(sipp, caller)
    finally:
        if sipp is not None:
            sipp.stop()
        if caller is not None:
            caller.close()
        if capture is not None:
            time.sleep(0.3)  # the last BYE/200 and RTP reach the capture
            stats = capture.stop()
    return sipp, stats


def _ports_needed(spec: LoadSpec, call_s: float) -> int:
    """Ports for the calls that can be up at once, their RTCP, and some slack."""
    up = sum(min(calls, spec.concurrent or calls, int(spec.rate * (call_s + 5)) + 1)
             for calls in (spec.sipp_calls, spec.pjsua2_calls))
    return 2 * (up + spec.sample + 32)


def _rtp_range(size: int) -> tuple[int, int]:
    """A random range of `size` ports below the ephemeral range whose first ports are free."""
    for _ in range(50):
        lo = random.randrange(RTP_BASE, RTP_TOP - size, 2)
        if all(_udp_free(port) for port in range(lo, lo + 8)):
            return lo, lo + size - 1
    raise OSError("no free RTP port range")


def _udp_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def udp_drops(sip_port: int, rtp_ports: tuple[int, int]) -> dict:
    """Datagrams the kernel dropped (receive buffer full) at the stub's SIP socket and at the
    open sockets of its RTP range, from /proc/net/udp."""
    found = {"sip": 0, "rtp": 0}
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        port = int(fields[1].rsplit(":", 1)[1], 16)
        if port == sip_port:
            found["sip"] += int(fields[-1])
        elif rtp_ports[0] <= port <= rtp_ports[1]:
            found["rtp"] += int(fields[-1])
    return found


class _Sipp:
    """One SIPp process placing the SIPp share of the calls; its counts come from `-trace_stat`."""

    def __init__(self, spec: LoadSpec, port: int, out: Path, call_s: float):
        sipp = shutil.which("sipp")
        if sipp is None:
            raise RuntimeError("sipp is not installed (Debian package sip-tester)")
        self.stats = out / "sipp-stats.csv"
        media_port = next(p for p in range(SIPP_MEDIA_BASE, RTP_BASE, 4)
                          if all(_udp_free(p + i) for i in range(4)))
        argv = [sipp, "-sf", str(SCENARIO), "-s", TO, "-i", HOST, "-mi", HOST, "-p", "0",
                "-mp", str(media_port), "-m", str(spec.sipp_calls),
                "-recv_timeout", str(int((call_s + 30) * 1000)),
                "-timeout", f"{int(spec.max_seconds) + 5}s", "-timeout_error",
                "-trace_stat", "-stf", str(self.stats), "-fd", "1",
                "-trace_err", "-error_file", str(out / "sipp-errors.log"), "-nostdin"]
        if spec.ramp_s:
            step = max(1, round(spec.rate / spec.ramp_s))  # SIPp takes whole steps
            argv += ["-r", str(step), "-rate_increase", str(step), "-rate_interval", "1s",
                     "-rate_max", f"{spec.rate:g}", "-no_rate_quit"]
        else:
            argv += ["-r", f"{spec.rate:g}"]
        argv += ["-rtp_echo"] if spec.echo else []
        argv += ["-l", str(spec.concurrent)] if spec.concurrent else []
        with open(out / "sipp.stderr", "wb") as stderr:
            self.proc = subprocess.Popen(argv + [f"{HOST}:{port}"], cwd=out, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=stderr)

    def counts(self) -> dict:
        """Calls created, up, successful and failed so far, and retransmissions."""
        try:
            with self.stats.open() as f:
                rows = list(csv.DictReader(f, delimiter=";"))
        except FileNotFoundError:
            rows = []
        if not rows:
            return {"placed": 0, "up": 0, "succeeded": 0, "failed": 0, "retransmissions": 0}
        last = rows[-1]
        return {"placed": int(last["TotalCallCreated"]), "up": int(last["CurrentCall"]),
                "succeeded": int(last["SuccessfulCall(C)"]), "failed": int(last["FailedCall(C)"]),
                "retransmissions": int(last["Retransmissions(C)"])}

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class _Driver:
    """The main loop: paces the pjsua2 calls, watches SIPp, prints progress, samples CPU."""

    def __init__(self, spec: LoadSpec, stub: Stub, out: Path, call_s: float,
                 progress: Callable[[str], None], cpu_clock: int):
        self.spec, self.stub, self.out, self.call_s, self.progress = spec, stub, out, call_s, progress
        self.cpu_clock = cpu_clock
        self.cpu: list[tuple[float, float]] = []
        self.calls: list = []  # pjsua2 Calls and when each was placed; outcomes by index
        self.placed_at: list[float] = []
        self.outcomes: dict[int, str] = {}
        self.refused = 0
        self.start = time.monotonic()

    def run(self, sipp: _Sipp | None, caller: Caller | None) -> None:
        spec = self.spec
        deadline = self.start + spec.max_seconds
        next_call = next_report = self.start
        while time.monotonic() < deadline:
            now = time.monotonic()
            if caller is not None:
                next_call = self._place(caller, now, next_call)
                self._watch(now)
            if now >= next_report:
                self._report(sipp)
                next_report += spec.progress_s
            pjsua2_done = len(self.calls) + self.refused >= spec.pjsua2_calls and \
                len(self.outcomes) == len(self.calls)
            if pjsua2_done and (sipp is None or not sipp.running):
                break
            time.sleep(TICK_S)
        else:
            self.progress(f"[load] stopped after {spec.max_seconds:g} s with calls still up")
        for i, call in enumerate(self.calls):
            if i not in self.outcomes:
                self._fail(i, f"still {call.state} at the end")
        self._report(sipp)

    def _place(self, caller: Caller, now: float, next_call: float) -> float:
        spec = self.spec
        up = len(self.calls) - len(self.outcomes)
        if now < next_call or len(self.calls) + self.refused >= spec.pjsua2_calls or \
                (spec.concurrent and up >= spec.concurrent):
            return next_call
        try:
            self.calls.append(caller.call(self.stub.sip_uri(TO), from_uri=f"sip:{FROM}@{HOST}"))
            self.placed_at.append(now)
        except CallerError as exc:
            self.refused += 1
            self.progress(f"[load] pjsua2 refused a call: {exc}")
        return max(next_call + 1 / spec.rate, now - 1 / spec.rate)

    def _watch(self, now: float) -> None:
        """Judge every pjsua2 call that ended, or took too long to answer or to end."""
        for i, call in enumerate(self.calls):
            if i in self.outcomes:
                continue
            states = [e["state"] for e in call.events if e["type"] == "state"]
            age = now - self.placed_at[i]
            if "DISCONNECTED" in states:
                self.outcomes[i] = "ok" if "CONFIRMED" in states else \
                    f"ended before it was answered: {call.last_status} {call.last_reason}"
            elif "CONFIRMED" not in states and age > SETUP_TIMEOUT_S:
                self._fail(i, f"not answered within {SETUP_TIMEOUT_S:g} s")
            elif age > self.call_s + SETUP_TIMEOUT_S + 20:
                self._fail(i, "the stub did not hang up")

    def _fail(self, i: int, reason: str) -> None:
        self.outcomes[i] = reason
        try:
            self.calls[i].hangup()
        except CallerError:  # its worker is gone: the call is over anyway
            pass

    def _report(self, sipp: _Sipp | None) -> None:
        now = time.monotonic()
        self.cpu.append((time.time(), time.clock_gettime(self.cpu_clock)))
        share = 0.0
        if len(self.cpu) > 1:
            (t0, c0), (t1, c1) = self.cpu[-2], self.cpu[-1]
            share = (c1 - c0) / max(t1 - t0, 1e-6)
        s = sipp.counts() if sipp is not None else None
        ok = sum(o == "ok" for o in self.outcomes.values())
        pj = f"pjsua2 {len(self.calls)} placed {ok} ok {len(self.outcomes) - ok} failed"
        sp = f"sipp {s['placed']} placed {s['succeeded']} ok {s['failed']} failed; " if s else ""
        res = self.stub.resources()
        self.progress(f"[load {now - self.start:5.1f} s] {sp}{pj}; stub: {res['dialogs']} dialogs, "
                      f"{res['handler_workers']} handler workers, cpu {share:.0%}")

    def summary(self, sipp: _Sipp | None, journal: list[dict], leftovers: dict) -> dict:
        spec, elapsed = self.spec, time.monotonic() - self.start
        ok = sum(o == "ok" for o in self.outcomes.values())
        failures = [o for o in self.outcomes.values() if o != "ok"]
        sources = {}
        if sipp is not None:
            sources["sipp"] = {**sipp.counts(), "requested": spec.sipp_calls,
                               "exit_status": sipp.proc.returncode}
            if sipp.proc.returncode not in (0, 1):  # 1: some calls failed; others: SIPp did
                sources["sipp"]["stderr"] = (self.out / "sipp.stderr").read_text()[-500:]
        if spec.pjsua2_calls:
            sources["pjsua2"] = {"requested": spec.pjsua2_calls, "placed": len(self.calls) + self.refused,
                                 "succeeded": ok, "failed": len(failures) + self.refused,
                                 "first_failures": failures[:3]}
        cpu = (self.cpu[-1][1] - self.cpu[0][1]) / max(self.cpu[-1][0] - self.cpu[0][0], 1e-6) \
            if len(self.cpu) > 1 else 0.0
        return {"spec": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(spec).items()},
                "out_dir": str(self.out), "seconds": round(elapsed, 2), "sources": sources,
                "stub": {**stub_figures(journal), "cpu_share": round(cpu, 3), "left_open": leftovers}}


def stub_figures(journal: list[dict]) -> dict:
    """Counts, peak concurrency and INVITE-to-answer times from the stub's journal."""
    kinds: dict[str, int] = {}
    arrived, answered, steps = {}, [], []
    for e in journal:
        kinds[e["kind"]] = kinds.get(e["kind"], 0) + 1
        if e["kind"] == "call_arrived":
            arrived[e["transaction_id"]] = e["time"]
            steps.append((e["time"], 1))
        elif e["kind"] == "answered" and e["transaction_id"] in arrived:
            answered.append(e["time"] - arrived[e["transaction_id"]])
        elif e["kind"] == "sip_ended":
            steps.append((e["time"], -1))
    up = peak = 0
    for _, step in sorted(steps):
        up += step
        peak = max(peak, up)
    setup = np.array(answered) * 1000 if answered else np.zeros(1)
    by_stub = sum(1 for e in journal if e["kind"] == "sip_ended" and e.get("by") == "local")
    return {"calls_arrived": kinds.get("call_arrived", 0), "answered": len(answered),
            "ended": kinds.get("sip_ended", 0), "hung_up_by_stub": by_stub, "peak_up": peak,
            "rejected": kinds.get("sip_rejected", 0), "internal_errors": kinds.get("internal_error", 0),
            "handler_failures": sum(1 for e in journal if e["kind"] == "response" and e.get("failed")),
            "answer_ms_p50": round(float(np.percentile(setup, 50)), 2),
            "answer_ms_p99": round(float(np.percentile(setup, 99)), 2)}


def verify_sample(wire: WireAnalysis, journal: list[dict], sip_port: int, ports: tuple[int, int],
                  spec: LoadSpec, prompt_s: float) -> dict:
    """Judge, from the capture alone, every call whose stub RTP port lies in `ports`."""
    pcm = read_wav((spec.bucket_dir / "prompts" / spec.prompt).read_bytes())
    matcher = PromptMatcher({spec.prompt: pcm})
    expected = round(prompt_s * spec.repeat / 0.02)
    calls = [e for e in journal if e["kind"] == "call_arrived" and ports[0] <= e["rtp_port"] <= ports[1]]
    next_use: dict[str, float] = {}  # a call's port serves the next call from that call's arrival
    last: dict[int, dict] = {}
    for call in calls:
        if call["rtp_port"] in last:
            next_use[last[call["rtp_port"]]["sip_call_id"]] = call["time"]
        last[call["rtp_port"]] = call
    failures, deviations, lost = [], [], 0
    for call in calls:
        problem, stream = _check_call(wire, call, next_use.get(call["sip_call_id"]), sip_port)
        if stream is not None:
            lost += stream.stats.lost
            ts = np.array([f.ts_ns for f in stream.packets], dtype=np.int64)
            deviations.append(np.abs(np.diff(ts) / 1e6 - 20.0))
            heard = sum(1 for p in label_packets(stream, matcher=matcher)
                        if p.kind == "prompt" and p.prompt == spec.prompt)
            if problem is None and heard < 0.95 * expected:
                problem = f"{spec.prompt} heard in {heard} packets of the {expected} it takes"
        if problem is not None:
            failures.append(f"{call['sip_call_id']}: {problem}")
    dev = np.concatenate(deviations) if deviations else np.zeros(1)
    return {"ports": list(ports), "calls": len(calls), "verified": len(calls) - len(failures),
            "failures": failures[:5], "rtp_lost": lost,
            "interval_deviation_ms_p99": round(float(np.percentile(dev, 99)), 3),
            "interval_deviation_ms_max": round(float(dev.max()), 3)}


def _check_call(wire: WireAnalysis, call: dict, until: float | None, sip_port: int):
    """(problem or None, the stub's RTP stream to the caller or None) for one sampled call whose
    port serves the next call from `until` on."""
    dialog = wire.dialogs.get(call["sip_call_id"], [])
    seen = {_label(m) for m in dialog}
    missing = [step for step in ("INVITE", "200 INVITE", "ACK", "BYE", "200 BYE") if step not in seen]
    if missing:
        return f"not on the wire: {', '.join(missing)}", None
    bye = next(m for m in dialog if _label(m) == "BYE")
    if bye.src[1] != sip_port:
        return "the BYE did not come from the stub", None
    end = until or float("inf")
    streams = [s for s in wire.streams(src=(HOST, call["rtp_port"]))
               if call["time"] <= s.start_ts_ns / 1e9 < end]
    if len(streams) != 1:
        return f"{len(streams)} RTP streams from the stub's port {call['rtp_port']}", None
    stream = streams[0]
    if stream.stats.lost or stream.stats.sequence_errors:
        return f"{stream.stats.lost} RTP packets lost, {stream.stats.sequence_errors} sequence errors", stream
    return None, stream


def _label(msg) -> str:
    m = msg.message
    return m.method if hasattr(m, "method") else f"{m.status} {m.cseq[1]}"


def _passed(summary: dict) -> bool:
    sources = summary["sources"].values()
    placed = all(s["placed"] == s["requested"] and s["failed"] == 0 and s["succeeded"] == s["requested"]
                 for s in sources)
    sample = summary.get("sample")
    sampled = sample is None or (sample["calls"] > 0 and sample["verified"] == sample["calls"])
    stub = summary["stub"]
    return placed and sampled and not stub["left_open"] and not stub["internal_errors"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="sip-harness load", description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=100, help="calls SIPp places (0: none)")
    p.add_argument("--pjsua2", type=int, default=0, help="calls pjsua2 workers place")
    p.add_argument("--rate", type=float, default=10.0, help="new calls per second, per source")
    p.add_argument("--ramp", type=int, default=0, help="seconds SIPp takes to climb to --rate")
    p.add_argument("--concurrent", type=int, help="at most this many calls up, per source")
    p.add_argument("--prompt", default="tone-1000hz.wav", help="key under <bucket>/prompts")
    p.add_argument("--repeat", type=int, default=1, help="times the prompt plays before the hangup")
    p.add_argument("--sample", type=int, default=8, help="RTP port pairs captured (0: no capture)")
    p.add_argument("--max-seconds", type=float, default=120.0, help="stop after this long")
    p.add_argument("--no-echo", action="store_true", help="SIPp sends no RTP back")
    p.add_argument("--realtime", action="store_true", help="stub thread under SCHED_FIFO (root)")
    p.add_argument("--bucket", type=Path, default=BUCKET)
    p.add_argument("--out", type=Path, help="artifact folder (default: a new temporary one)")
    args = p.parse_args(argv)
    spec = LoadSpec(sipp_calls=args.calls, pjsua2_calls=args.pjsua2, rate=args.rate, ramp_s=args.ramp,
                    concurrent=args.concurrent, prompt=args.prompt, repeat=args.repeat,
                    sample=args.sample, max_seconds=args.max_seconds, echo=not args.no_echo,
                    realtime=args.realtime,
                    bucket_dir=args.bucket, out_dir=args.out)
    result = run_load(spec, progress=lambda line: print(line, file=sys.stderr, flush=True))
    print(json.dumps(result.summary, indent=2))
    return 0 if result.summary["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
