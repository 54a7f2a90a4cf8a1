"""Load mode (`sip-harness load`): many calls from SIPp and from pjsua2 into an embedded stub,
or into a stub (or a cluster of them, `serve --workers N`) that is already served; a sample of
them verified on the wire.

The embedded stub serves a handler that plays a prompt and hangs up (by default `load_assets/
play_hangup.py`, with a 2 s 1000 Hz tone written into the run folder as its prompt; a handler,
a bucket folder and a SIPp scenario of your own can be passed in). A served stub (`target`)
runs its own handler: the callers wait for its BYE, or hang up after `hold_ms`. SIPp (the
scenario `load_assets/uac_until_bye.xml`, or SIPp's own `uac` with a hold; `-rtp_echo` sends
the far end's RTP back) and a pool of pjsua2 workers each place their calls at `rate` per
second, with at most `concurrent` up at once (`sipp -r R -l N`): a high rate and a limit keep N
calls up.

The sample, judged from the capture alone (`verify.sampled_calls`): into the embedded stub, the
capture takes every SIP message plus the RTP of the lowest `sample` port pairs of the stub's RTP
range (the stub binds the lowest free pair, so the first calls and every call that finds one of
those pairs free land there); into a served target, every SIP message to its address and the
media the callers receive, and the first `sample` calls are judged. Which far end answered each
call (the Contact of its 200 OK: a cluster's worker) is counted for every call on the wire.
The driver prints a progress line a second; every loop is bounded by `max_seconds`.
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
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from ..caller import Caller, CallerError
from ..journal_entries import Answered, HandlerResponded, InternalError, SipEnded, SipRejected
from ..journal_view import JournalView
from ..media.sources import read_wav, tone, write_wav
from ..stub import Stub
from ..wire.analysis import analyze_pcap
from ..wire.capture import Capture
from .setup import RTP_BASE, capturing, free_rtp_range, handler_config, udp_free
from .verify import answered_by, sampled_calls, wire_calls

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
    BENCH_REPEAT) and hangs up; `scenario` is SIPp's, a caller that waits for the stub's BYE
    (default: the bundled one; with `hold_ms`, SIPp's own `uac` holding that long). Without
    `bucket_dir`, the default prompt is written into the run folder.

    With `target` (host, SIP port) no stub is started: the calls go to `number` there, a stub
    or a cluster already served (whose API `api_url`, when given, must answer `/ready` first);
    its own handler answers them, and the prompt is checked only when `bucket_dir` is given."""

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
    scenario: Path | None = None
    hold_ms: int | None = None
    target: tuple[str, int] | None = None
    api_url: str | None = None
    number: str = TO
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
    if spec.scenario is None and spec.hold_ms is None:
        spec = replace(spec, scenario=ASSETS / "uac_until_bye.xml")
    result = _served(spec, out, progress) if spec.target else _embedded(spec, out, progress)
    result.summary["passed"] = _passed(result.summary)
    (out / "summary.json").write_text(json.dumps(result.summary, indent=2))
    return result


def _embedded(spec: LoadSpec, out: Path, progress: Callable[[str], None]) -> LoadResult:
    """The load into a stub of this process, which serves the spec's handler."""
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
        target = (HOST, stub.sip_port)
        driver = _Driver(spec, target, out, call_s, progress, _stub_status(stub),
                         time.pthread_getcpuclockid(thread.ident))
        capture = Capture(out / "capture.pcap", bpf=f"udp and host {HOST} and (port {stub.sip_port} or "
                          f"portrange {sample_ports[0]}-{sample_ports[1]})") if spec.sample else None
        sipp, stats = _drive(spec, driver, capture, call_s)
        leftovers = {k: v for k, v in stub.resources().items() if v and k != "handler_workers"}
        drops = udp_drops(stub.sip_port, ports)
    finally:
        stub.stop()
    journal = stub.journal_json()
    (out / "journal.json").write_text(json.dumps(journal, default=str))
    summary = driver.summary(sipp)
    cpu = driver.cpu
    summary["stub"] = {**stub_figures(JournalView(journal)), "left_open": leftovers, "socket_drops": drops,
                       "cpu_share": round((cpu[-1][1] - cpu[0][1]) / max(cpu[-1][0] - cpu[0][0], 1e-6), 3)
                       if len(cpu) > 1 else 0.0}
    summary["rtp_ports"] = list(ports)
    if stats is not None:
        _judge_capture(summary, stats, target, lambda media: sample_ports[0] <= media[1] <= sample_ports[1],
                       None, True, spec.prompt, prompt_pcm, round(call_s / 0.02))
    return LoadResult(summary, journal, cpu)


def _served(spec: LoadSpec, out: Path, progress: Callable[[str], None]) -> LoadResult:
    """The load into a stub (or a cluster) already served at `spec.target`."""
    host, port = spec.target
    prompt_pcm = read_wav((bucket_folder(spec, out) / "prompts" / spec.prompt).read_bytes()) \
        if spec.bucket_dir is not None else None
    ready = served_ready(spec.api_url) if spec.api_url else None
    call_s = spec.hold_ms / 1000 if spec.hold_ms is not None else spec.max_seconds
    callers = free_rtp_range(2 * (min(spec.pjsua2_calls, spec.concurrent or spec.pjsua2_calls) + 16)) \
        if spec.pjsua2_calls else None
    driver = _Driver(spec, (host, port), out, call_s, progress, caller_ports=callers)
    capture = None
    if spec.sample:  # the SIP to the target and the media the callers receive
        media = f"dst portrange {driver.sipp_media}-{driver.sipp_media + 3}" if spec.sipp_calls else ""
        if callers:
            media += f"{' or ' if media else ''}dst portrange {callers[0]}-{callers[1]}"
        capture = Capture(out / "capture.pcap", iface="lo" if host.startswith("127.") else "any",
                          bpf=f"udp and (port {port}" + (f" or {media})" if media else ")"))
    sipp, stats = _drive(spec, driver, capture, call_s)
    summary = driver.summary(sipp)
    summary["target"] = {"sip": f"{host}:{port}", "api": spec.api_url, "ready": ready}
    if stats is not None:
        _judge_capture(summary, stats, (host, port), lambda media: True, spec.sample,
                       spec.hold_ms is None, spec.prompt if prompt_pcm is not None else None,
                       prompt_pcm, round(len(prompt_pcm) / 160) if prompt_pcm is not None else 0)
    return LoadResult(summary, [], driver.cpu)


def served_ready(api_url: str) -> dict:
    """What a served stub's (or a cluster front's) `/ready` answers; LoadError unless ready."""
    try:
        with urllib.request.urlopen(api_url.rstrip("/") + "/ready", timeout=5) as resp:
            return json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        raise LoadError(f"{api_url} is not ready: HTTP {exc.code} {exc.read()[:200].decode(errors='replace')}") from None
    except (OSError, ValueError) as exc:
        raise LoadError(f"{api_url} does not answer: {exc}") from None


def _judge_capture(summary: dict, stats, target: tuple[str, int], sampled, limit, bye_from_target,
                   prompt, prompt_pcm, packets) -> None:
    """The capture's part of the summary: its counts, every call on the wire and who answered
    it, and the sample's verdicts."""
    wire = analyze_pcap(stats.path)
    calls = wire_calls(wire, target)
    summary["capture"] = {"path": stats.path, "packets": stats.packets, "kernel_drops": stats.kernel_drops}
    summary["wire"] = {"calls": len(calls), "answered": sum(1 for c in calls if c.media is not None),
                       "answered_by": answered_by(calls)}
    summary["sample"] = sampled_calls(wire, target, sampled=sampled, limit=limit,
                                      bye_from_target=bye_from_target, prompt=prompt,
                                      prompt_pcm=prompt_pcm, packets=packets)


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


def _drive(spec: LoadSpec, driver: "_Driver", capture: Capture | None, call_s: float):
    """Start the capture and the callers, run the driver; stop everything it started."""
    sipp = caller = None
    with capturing(capture) if capture is not None else contextlib.nullcontext():
        try:
            if spec.sipp_calls:
                sipp = _Sipp(spec, driver.target, driver.sipp_media, driver.out, call_s)
            if spec.pjsua2_calls:
                caller = Caller(workdir=driver.out / "caller", media_ports=driver.caller_ports)
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


def _stub_status(stub: Stub) -> Callable[[], str]:
    def status() -> str:
        res = stub.resources()
        return f"; stub: {res['dialogs']} dialogs, {res['handler_workers']} handler workers"
    return status


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

    def __init__(self, spec: LoadSpec, target: tuple[str, int], media_port: int, out: Path, call_s: float):
        sipp = shutil.which("sipp")
        if sipp is None:
            raise LoadError("sipp is not installed (Debian package sip-tester)")
        self.stats = out / "sipp-stats.csv"
        if spec.scenario is None and spec.hold_ms is not None:
            scenario = ["-sn", "uac", "-d", str(spec.hold_ms)]
        else:
            scenario = ["-sf", str(spec.scenario)]
        local = HOST if target[0].startswith("127.") else None  # else the address SIPp finds
        argv = [sipp, *scenario, "-s", spec.number, *(["-i", local, "-mi", local] if local else []),
                "-p", "0", "-mp", str(media_port), "-m", str(spec.sipp_calls),
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
            self.proc = subprocess.Popen(argv + [f"{target[0]}:{target[1]}"], cwd=out, stdin=subprocess.DEVNULL,
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


def sipp_media_port() -> int:
    """The first of four free UDP ports for SIPp's media, below the runs' RTP ports."""
    return next(p for p in range(SIPP_MEDIA_BASE, RTP_BASE, 4) if all(udp_free(p + i, HOST) for i in range(4)))


class _Driver:
    """The main loop: paces the pjsua2 calls, watches SIPp, prints progress, samples the
    embedded stub's CPU time (`cpu_clock`)."""

    def __init__(self, spec: LoadSpec, target: tuple[str, int], out: Path, call_s: float,
                 progress: Callable[[str], None], status: Callable[[], str] = lambda: "",
                 cpu_clock: int | None = None, caller_ports: tuple[int, int] | None = None):
        self.spec, self.target, self.out, self.call_s, self.progress = spec, target, out, call_s, progress
        self.status, self.cpu_clock, self.caller_ports = status, cpu_clock, caller_ports
        self.sipp_media = sipp_media_port() if spec.sipp_calls else None
        self.uri = f"sip:{spec.number}@{target[0]}:{target[1]}"
        self.cpu: list[tuple[float, float]] = []
        self.calls: list = []  # pjsua2 Calls and when each was placed; outcomes by index
        self.placed_at: list[float] = []
        self.confirmed_at: dict[int, float] = {}
        self.hung_up: set[int] = set()  # the calls whose caller hung up after `hold_ms`
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
            self.calls.append(caller.call(self.uri, from_uri=f"sip:{FROM}@{HOST}"))
            self.placed_at.append(now)
        except CallerError as exc:
            self.refused += 1
            self.progress(f"[load] pjsua2 refused a call: {exc}")
        return max(next_call + 1 / spec.rate, now - 1 / spec.rate)

    def _watch(self, now: float) -> None:
        """Judge every pjsua2 call that ended, or took too long to answer or to end; hang up
        the calls held for `hold_ms`."""
        hold_s = self.spec.hold_ms / 1000 if self.spec.hold_ms is not None else None
        for i, call in enumerate(self.calls):
            if i in self.outcomes:
                continue
            states = [e["state"] for e in call.events if e["type"] == "state"]
            age = now - self.placed_at[i]
            if "CONFIRMED" in states:
                self.confirmed_at.setdefault(i, now)
            if "DISCONNECTED" in states:
                self.outcomes[i] = "ok" if "CONFIRMED" in states else \
                    f"ended before it was answered: {call.last_status} {call.last_reason}"
            elif "CONFIRMED" not in states and age > SETUP_TIMEOUT_S:
                self._fail(i, f"not answered within {SETUP_TIMEOUT_S:g} s")
            elif hold_s is not None and now - self.confirmed_at[i] >= hold_s:
                if now - self.confirmed_at[i] > hold_s + SETUP_TIMEOUT_S:
                    self._fail(i, "did not end after the caller's BYE")
                elif i not in self.hung_up:
                    self.hung_up.add(i)
                    call.hangup()
            elif hold_s is None and age > self.call_s + SETUP_TIMEOUT_S + 20:
                self._fail(i, "the far end did not hang up")

    def _fail(self, i: int, reason: str) -> None:
        self.outcomes[i] = reason
        try:
            self.calls[i].hangup()
        except CallerError:  # its worker is gone: the call is over anyway
            pass

    def _report(self, sipp: _Sipp | None) -> None:
        now = time.monotonic()
        share = ""
        if self.cpu_clock is not None:
            self.cpu.append((time.time(), time.clock_gettime(self.cpu_clock)))
            if len(self.cpu) > 1:
                (t0, c0), (t1, c1) = self.cpu[-2], self.cpu[-1]
                share = f", cpu {(c1 - c0) / max(t1 - t0, 1e-6):.0%}"
        s = sipp.counts() if sipp is not None else None
        ok = sum(o == "ok" for o in self.outcomes.values())
        pj = f"pjsua2 {len(self.calls)} placed {ok} ok {len(self.outcomes) - ok} failed"
        sp = f"sipp {s['placed']} placed {s['succeeded']} ok {s['failed']} failed; " if s else ""
        self.progress(f"[load {now - self.start:5.1f} s] {sp}{pj}{self.status()}{share}")

    def summary(self, sipp: _Sipp | None) -> dict:
        """The spec, the run's length and what each source placed, with its outcomes."""
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
        return {"spec": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(spec).items()},
                "out_dir": str(self.out), "seconds": round(elapsed, 2), "sources": sources}


def stub_figures(journal: JournalView) -> dict:
    """Counts, peak concurrency and INVITE-to-answer times from the stub's journal."""
    arrivals, ended = journal.arrivals(), journal.of(SipEnded)
    arrived = {e.transaction_id: e.time for e in arrivals}
    answered = [e.time - arrived[e.transaction_id] for e in journal.of(Answered)
                if e.transaction_id in arrived]
    up = peak = 0
    for _, step in sorted([(e.time, 1) for e in arrivals] + [(e.time, -1) for e in ended]):
        up += step
        peak = max(peak, up)
    setup = np.array(answered) * 1000 if answered else np.zeros(1)
    return {"calls_arrived": len(arrivals), "answered": len(answered),
            "ended": len(ended), "hung_up_by_stub": sum(1 for e in ended if e.by == "local"),
            "peak_up": peak, "rejected": len(journal.of(SipRejected)),
            "internal_errors": len(journal.of(InternalError)),
            "handler_failures": sum(1 for e in journal.of(HandlerResponded) if e.failed),
            "answer_ms_p50": round(float(np.percentile(setup, 50)), 2),
            "answer_ms_p99": round(float(np.percentile(setup, 99)), 2)}


def _passed(summary: dict) -> bool:
    """Every call of every source succeeded, every call on the wire was answered, every sampled
    call verified, and the embedded stub left nothing open and had no internal error."""
    placed = all(s["placed"] == s["requested"] and s["failed"] == 0 and s["succeeded"] == s["requested"]
                 for s in summary["sources"].values())
    sample, wire = summary.get("sample"), summary.get("wire")
    sampled = sample is None or (sample["calls"] > 0 and sample["verified"] == sample["calls"])
    answered = wire is None or wire["answered"] == wire["calls"]
    stub = summary.get("stub")
    clean = stub is None or (not stub["left_open"] and not stub["internal_errors"])
    return placed and sampled and answered and clean
