"""Load mode (`sip-harness load`): many calls into an embedded stub, from SIPp and from pjsua2,
a sample of them verified on the wire.

The stub serves a handler that plays a prompt and hangs up (by default `load_assets/
play_hangup.py`, with a 2 s 1000 Hz tone written into the run folder as its prompt; a handler,
a bucket folder and a SIPp scenario of your own can be passed in). SIPp (the scenario
`load_assets/uac_until_bye.xml`; `-rtp_echo` sends the stub's RTP back) and a pool of pjsua2
workers each place their calls at `rate` per second, with at most `concurrent` up at once
(`sipp -r R -l N`): a high rate and a limit keep N calls up.

The sample: the capture takes every SIP message plus the RTP of the lowest `sample` port pairs
of the stub's RTP range (the stub binds the lowest free pair, so the first calls and every call
that finds one of those pairs free land there); `verify.sampled_calls` judges those calls from
the capture alone. The driver prints a progress line a second; every loop is bounded by
`max_seconds`.
"""
from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..caller import Caller, CallerError
from ..journal_view import JournalView
from ..media.sources import read_wav, tone, write_wav
from ..stub import Stub
from ..wire.analysis import analyze_pcap
from ..wire.capture import Capture
from .setup import RTP_BASE, capturing, free_rtp_range, handler_config, udp_free
from .verify import sampled_calls

ASSETS = Path(__file__).resolve().parent / "load_assets"
HOST = "127.0.0.1"
TO, FROM = "+14345550101", "+14255550199"
SMA_ID = "load-sma"
#: the prompt load mode writes when no bucket folder is given
DEFAULT_PROMPT, DEFAULT_PROMPT_HZ, DEFAULT_PROMPT_S = "tone-1000hz.wav", 1000.0, 2.0
TICK_S = 0.05
JOURNAL_BYTES_PER_CALL = 32 * 1024  # journal kept per call, so the summary counts every call
SETUP_TIMEOUT_S = 10.0
#: SIPp's media ports lie below the stub's RTP ports
SIPP_MEDIA_BASE = 7000


class LoadError(RuntimeError):
    """The load cannot run as asked (SIPp missing, a prompt without its bucket folder)."""


@dataclass
class LoadSpec:
    """What to run. `rate` and `concurrent` apply to each source (SIPp, pjsua2) on its own;
    with `ramp_s`, SIPp's rate climbs in equal steps, one a second, to `rate` over that time.
    `realtime` runs the stub's thread under SCHED_FIFO (root), as a media server would run, so
    other processes on the machine cannot delay its media clock.

    `handler` plays `<bucket_dir>/prompts/<prompt>` `repeat` times (it reads BENCH_PROMPT and
    BENCH_REPEAT) and hangs up; `scenario` is SIPp's, a caller that waits for the stub's BYE.
    Without `bucket_dir`, the default prompt is written into the run folder."""

    sipp_calls: int = 100
    pjsua2_calls: int = 0
    rate: float = 10.0
    ramp_s: int = 0
    concurrent: int | None = None
    prompt: str = DEFAULT_PROMPT
    repeat: int = 1
    sample: int = 8
    max_seconds: float = 120.0
    echo: bool = True
    realtime: bool = False
    bucket_dir: Path | None = None
    handler: str = str(ASSETS / "play_hangup.py")
    scenario: Path = ASSETS / "uac_until_bye.xml"
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
    bucket = bucket_folder(spec, out)
    prompt_pcm = read_wav((bucket / "prompts" / spec.prompt).read_bytes())
    call_s = len(prompt_pcm) / 8000 * spec.repeat
    ports = spec.rtp_ports or free_rtp_range(_ports_needed(spec, call_s))
    sample_ports = (ports[0], ports[0] + 2 * spec.sample - 1)
    before = set(threading.enumerate())
    config = handler_config(spec.handler, bucket, out, sma_id=SMA_ID, name="load", rtp=ports,
                            environment={"BENCH_PROMPT": spec.prompt, "BENCH_REPEAT": str(spec.repeat)},
                            journal_max_bytes=JOURNAL_BYTES_PER_CALL * (spec.sipp_calls + spec.pjsua2_calls + 100))
    stub = Stub(config).start()
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
        summary["sample"] = sampled_calls(analyze_pcap(stats.path), JournalView(journal), HOST,
                                          stub.sip_port, sample_ports, spec.prompt, prompt_pcm,
                                          round(call_s / 0.02))
    summary["passed"] = _passed(summary)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return LoadResult(summary, journal, driver.cpu)


def bucket_folder(spec: LoadSpec, out: Path) -> Path:
    """The bucket folder the handler plays from: the spec's, or one in `out` holding the
    default prompt."""
    if spec.bucket_dir is not None:
        bucket = Path(spec.bucket_dir).resolve()
        if not (bucket / "prompts" / spec.prompt).is_file():
            raise LoadError(f"no prompt {bucket / 'prompts' / spec.prompt}")
        return bucket
    if spec.prompt != DEFAULT_PROMPT:
        raise LoadError(f"the prompt {spec.prompt!r} needs the bucket folder it is in "
                        f"(<bucket>/prompts/{spec.prompt}): give --bucket")
    bucket = out / "bucket"
    (bucket / "prompts").mkdir(parents=True, exist_ok=True)
    write_wav(bucket / "prompts" / DEFAULT_PROMPT, tone(DEFAULT_PROMPT_HZ, DEFAULT_PROMPT_S))
    return bucket


def _drive(spec: LoadSpec, stub: Stub, driver: "_Driver", pcap: Path, sample_ports: tuple[int, int],
           call_s: float):
    """Capture the sample, start the callers, run the driver; stop everything it started."""
    sipp = caller = None
    capture = Capture(pcap, bpf=f"udp and host {HOST} and (port {stub.sip_port} or "
                                f"portrange {sample_ports[0]}-{sample_ports[1]})") if spec.sample else None
    with capturing(capture) if capture is not None else contextlib.nullcontext():
        try:
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
    return sipp, capture.stats if capture is not None else None


def _ports_needed(spec: LoadSpec, call_s: float) -> int:
    """Ports for the calls that can be up at once, their RTCP, and some slack."""
    up = sum(min(calls, spec.concurrent or calls, int(spec.rate * (call_s + 5)) + 1)
             for calls in (spec.sipp_calls, spec.pjsua2_calls))
    return 2 * (up + spec.sample + 32)


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
            raise LoadError("sipp is not installed (Debian package sip-tester)")
        self.stats = out / "sipp-stats.csv"
        media_port = next(p for p in range(SIPP_MEDIA_BASE, RTP_BASE, 4)
                          if all(udp_free(p + i, HOST) for i in range(4)))
        argv = [sipp, "-sf", str(spec.scenario), "-s", TO, "-i", HOST, "-mi", HOST, "-p", "0",
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
                "stub": {**stub_figures(JournalView(journal)), "cpu_share": round(cpu, 3),
                         "left_open": leftovers}}


def stub_figures(journal: JournalView) -> dict:
    """Counts, peak concurrency and INVITE-to-answer times from the stub's journal."""
    arrivals, ended = journal.of_kind("call_arrived"), journal.of_kind("sip_ended")
    arrived = {e["transaction_id"]: e["time"] for e in arrivals}
    answered = [e["time"] - arrived[e["transaction_id"]] for e in journal.of_kind("answered")
                if e["transaction_id"] in arrived]
    up = peak = 0
    for _, step in sorted([(e["time"], 1) for e in arrivals] + [(e["time"], -1) for e in ended]):
        up += step
        peak = max(peak, up)
    setup = np.array(answered) * 1000 if answered else np.zeros(1)
    return {"calls_arrived": len(arrivals), "answered": len(answered),
            "ended": len(ended), "hung_up_by_stub": sum(1 for e in ended if e.get("by") == "local"),
            "peak_up": peak, "rejected": len(journal.of_kind("sip_rejected")),
            "internal_errors": len(journal.of_kind("internal_error")),
            "handler_failures": sum(1 for e in journal.of_kind("response") if e.get("failed")),
            "answer_ms_p50": round(float(np.percentile(setup, 50)), 2),
            "answer_ms_p99": round(float(np.percentile(setup, 99)), 2)}


def _passed(summary: dict) -> bool:
    sources = summary["sources"].values()
    placed = all(s["placed"] == s["requested"] and s["failed"] == 0 and s["succeeded"] == s["requested"]
                 for s in sources)
    sample = summary.get("sample")
    sampled = sample is None or (sample["calls"] > 0 and sample["verified"] == sample["calls"])
    stub = summary["stub"]
    return placed and sampled and not stub["left_open"] and not stub["internal_errors"]
