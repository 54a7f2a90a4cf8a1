"""Runs profiles: starts the stub, the capture and the callers, performs the steps, tears
everything down, then has `verify` judge the run from the capture (and the handler's journal
for the event sequence) and writes the artifacts into one folder per profile."""
from __future__ import annotations

import json
import os
import re
import shutil
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from ..aws_target import AwsSettings, AwsTarget, AwsTargetError
from ..caller import Call, Caller, CallerError, Listener
from ..journal_view import JournalView
from ..profiles.checks import preflight
from ..profiles.schema import Profile, Step
from ..remote import RemoteAccess, RemoteStub, RemoteStubError
from ..report import write_profile_reports
from ..results import ProfileResult
from ..stub import Stub
from ..wire.analysis import WireAnalysis, analyze_pcap
from ..wire.audio import load_prompts
from ..wire.capture import CaptureError
from . import verify
from .setup import RtpPorts, api_client, capturing, stub_config, target_capture


class ProfileNotRunnable(RuntimeError):
    """A profile that cannot run here (its handler file or a prompt is missing, ...)."""


#: Errors whose message says all (no traceback kept): the harness's own and the service's.
EXPECTED_ERRORS = (CallerError, CaptureError, RemoteStubError, AwsTargetError, ClientError,
                   BotoCoreError, OSError, TimeoutError, ProfileNotRunnable)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "profile"


class ProfileRun:
    """One execution of one profile."""

    def __init__(self, profile: Profile, out_dir: Path, progress: Callable[[str], None],
                 stub_url: str | None = None, access: RemoteAccess = RemoteAccess(),
                 aws: AwsSettings | None = None):
        self.profile, self.progress, self.stub_url, self.aws = profile, progress, stub_url, aws
        self.access = access
        self.run_dir = out_dir / slug(profile.name)
        self.result = ProfileResult(profile.name, str(profile.path), str(self.run_dir))
        self.calls: dict[str, Call] = {}
        self.listeners: dict[str, Listener] = {}
        self.created: list[str] = []  # TransactionIds of CreateSipMediaApplicationCall
        self.updates: list[dict] = []
        self.leftovers: dict[str, int] = {}
        self.caller_leftovers: dict[str, int] = {}
        self.tables: dict[str, list[dict]] = {}  # the local DynamoDB tables after the run
        self.message_logs: list[Path] = []  # the callers' SIP message logs (SIP over TLS)
        self.placed_at: dict[str, float] = {}  # call name -> when its INVITE left
        self.media_ports: tuple[int, int] | None = None  # the callers' RTP ports
        self.journal: list[dict] = []
        self.doing: str | None = None  # the step under way, named in an error
        self._stub: Stub | RemoteStub | AwsTarget | None = None

    def execute(self) -> ProfileResult:
        """Run the profile; whatever goes wrong becomes this profile's ERROR (with its message),
        never an exception. The capture is analysed, the journal kept and the reports written
        for every run, ERROR runs included."""
        start = time.monotonic()
        try:
            # this run's files only: an earlier run's message logs, recordings or handler
            # logs left here would be read as this run's (a second `make run` did so)
            shutil.rmtree(self.run_dir, ignore_errors=True)
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._run()
        except Exception as exc:  # one profile never aborts the suite
            self._fail(exc)
        wire = self._analyse()
        if self.result.error is None and wire is not None:
            try:
                self._judge(self._stub, wire)
            except Exception as exc:
                self._fail(exc, "judging the run")
        self.result.problems = [p.to_json() for p in JournalView(self.journal).problems()]
        self.result.duration_s = round(time.monotonic() - start, 3)
        try:
            write_profile_reports(self.result, wire, self.journal, self.run_dir, self.updates,
                                  load_prompts(self.profile.path.parent / self.profile.stub.bucket_dir))
        except Exception as exc:
            self._fail(exc, "writing the report")
        return self.result

    def _run(self) -> None:
        """Start the stub and the capture, perform the steps, stop everything, keep the journal."""
        blockers = preflight(self.profile)
        if blockers:
            raise ProfileNotRunnable("; ".join(blockers))
        ports = RtpPorts.for_run()
        config = stub_config(self.profile, self.run_dir, ports.stub)
        self.media_ports = ports.whole if self.aws is not None else ports.callers
        if self.aws is not None:
            stub = AwsTarget(self.aws, config).start()
        elif self.stub_url:
            stub = RemoteStub(self.stub_url, config, self.access).start(self.profile.path.resolve())
        else:
            stub = Stub(config).start()
        self._stub = stub
        try:
            with capturing(target_capture(self.run_dir / "capture.pcap", stub, self.media_ports)):
                self._steps(stub)
            if self.profile.stub.aws is not None:
                self.tables = self._final_tables(stub)
            self.leftovers = {k: v for k, v in stub.resources().items()
                              if v and k != "handler_workers"} | self.caller_leftovers
        finally:
            try:
                stub.stop()  # what the stub notes while stopping (its impairment records) counts
            finally:
                self.journal = stub.journal_json()
                self._write_json("journal.json", self.journal)

    def _fail(self, exc: Exception, during: str | None = None) -> None:
        """Make the run an ERROR with `exc`'s message (kept with an earlier error)."""
        during = during or self.doing
        message = str(exc) if isinstance(exc, ProfileNotRunnable) else _os_error(exc) \
            if isinstance(exc, OSError) else f"{type(exc).__name__}: {exc}"
        if during:
            message = f"{during}: {message}"
        self.result.verdict = "error"
        self.result.error = f"{self.result.error}; {message}" if self.result.error else message
        if not isinstance(exc, EXPECTED_ERRORS):
            self.result.error_detail = "".join(traceback.format_exception(exc))

    def _analyse(self) -> WireAnalysis | None:
        """The analysis of the run's capture, and its ladder.txt (None without a capture)."""
        pcap = self.run_dir / "capture.pcap"
        if not pcap.is_file():
            return None
        try:
            wire = analyze_pcap(str(pcap), self.message_logs)
            (self.run_dir / "ladder.txt").write_text(wire.ladder_text())
            return wire
        except Exception as exc:
            self._fail(exc, "analysing the capture")
            return None

    # ---- steps ------------------------------------------------------------------------
    def _steps(self, stub: Stub) -> None:
        callers: dict[str, Caller] = {}

        def caller_for(endpoint: str) -> Caller:
            if endpoint not in callers:
                spec = self.profile.endpoints[endpoint]
                tls = stub.config.tls
                ca_file = tls.ca_file if tls is not None else self.aws.ca_file if self.aws else None
                transport = (self.aws.transport if self.aws else None) or spec.transport
                callers[endpoint] = Caller(
                    transport=transport, codecs=tuple(spec.codecs),
                    workdir=self.run_dir / f"caller-{endpoint}", srtp=spec.srtp,
                    ca_file=ca_file if transport == "tls" else None,
                    credentials=[asdict(spec.credentials)] if spec.credentials else None,
                    media_ports=self.media_ports)
            return callers[endpoint]
        try:
            for callee in self.profile.callees:
                self.doing = f"starting callee {callee.name!r}"
                listener = caller_for(callee.endpoint).listen(
                    user=callee.number, answer=callee.answer, ring_ms=callee.ring_ms,
                    play=self._file(callee.play),
                    record_dir=self.run_dir / f"callee-{callee.name}")
                self.listeners[callee.name] = listener
                stub.add_route(callee.number, listener.uri)
            client = api_client(stub, self.profile.stub.aws_region, self.access.key)
            for number, step in enumerate(self.profile.steps, 1):
                self.doing = f"step {number}/{len(self.profile.steps)} ({step.kind})"
                self.progress(f"  {self.doing}")
                self._step(step, stub, caller_for, client)
            self.doing = None
        finally:
            for call in self.calls.values():
                if call.state != "DISCONNECTED":
                    call.hangup()
                    call.wait_for("DISCONNECTED", timeout=10)
            pids = [pid for caller in callers.values() for pid in caller.worker_pids]
            for caller in callers.values():
                caller.close()
                self.message_logs += caller.message_logs()
            alive = sum(1 for pid in pids if _alive(pid))
            if alive:
                self.caller_leftovers = {"caller_workers": alive}

    @property
    def sma_id(self) -> str:
        """The SMA that updates and created calls address: the real one against AWS."""
        return self.aws.sip_media_application_id if self.aws else self.profile.stub.sip_media_application_id

    def _file(self, relative: str | None) -> Path | None:
        return (self.profile.path.parent / relative).resolve() if relative else None

    def _call(self, name: str, timeout: float = 10.0) -> Call:
        """A named call: placed by a call step, or received by a callee (waited for)."""
        if name not in self.calls:
            self.calls[name] = self.listeners[name].wait_call(timeout)
        return self.calls[name]

    def _step(self, step: Step, stub: Stub, caller_for, client) -> None:
        kind = step.kind
        if kind == "call":
            s = step.call
            uri = stub.sip_uri(s.to, self.profile.endpoints[s.endpoint].transport)
            self.placed_at[s.name] = time.time()
            self.calls[s.name] = caller_for(s.endpoint).call(
                uri, from_uri=f"sip:{s.from_}@{stub.config.host}", headers=s.headers,
                play=self._file(s.play), record_to=self.run_dir / f"caller-{s.name}-heard.wav")
        elif kind == "wait":
            start, timeout = time.monotonic(), step.wait.timeout_ms / 1000
            call = self._call(step.wait.call, timeout)
            call.wait_for(step.wait.state, timeout=max(0.1, timeout - (time.monotonic() - start)))
        elif kind == "sleep_ms":
            time.sleep(step.sleep_ms / 1000)
        elif kind == "update":
            self._update(step.update, stub, client)
        elif kind == "send_dtmf":
            self._call(step.send_dtmf.call).send_dtmf(step.send_dtmf.digits)
        elif kind == "hangup":
            self._call(step.hangup.call).hangup()
        elif kind == "create_call":
            s = step.create_call
            resp = client.create_sip_media_application_call(
                SipMediaApplicationId=self.sma_id,
                FromPhoneNumber=s.from_, ToPhoneNumber=s.to, SipHeaders=s.sip_headers,
                ArgumentsMap=s.arguments)
            self.created.append(resp["SipMediaApplicationCall"]["TransactionId"])

    def _update(self, s, stub: Stub, client) -> None:
        tx = s.transaction_id or self._transaction_of(stub, s.call)
        sma_id = s.sip_media_application_id or self.sma_id
        record = {"time": time.time(), "transaction_id": tx, "arguments": s.arguments,
                  "expect_status": s.expect_status, "expect_error": s.expect_error}
        try:
            resp = client.update_sip_media_application_call(
                SipMediaApplicationId=sma_id, TransactionId=tx, Arguments=s.arguments)
            record["status"] = resp["ResponseMetadata"]["HTTPStatusCode"]
            record["error"] = None
        except client.exceptions.ClientError as exc:
            record["status"] = exc.response["ResponseMetadata"]["HTTPStatusCode"]
            record["error"] = exc.response["Error"]["Code"]
        self.updates.append(record)

    def _transaction_of(self, stub: Stub, call_name: str) -> str:
        if call_name in self.listeners and call_name not in self.calls and self.created:
            return self.created[-1]
        if isinstance(stub, AwsTarget):
            return stub.transaction_of(self.placed_at[call_name])
        sip_call_id = self._call(call_name).call_id
        tx = JournalView(stub.journal_json()).transaction_of(sip_call_id)
        if tx is None:
            raise RuntimeError(f"the stub has no leg for call {call_name!r} ({sip_call_id})")
        return tx

    def _final_tables(self, stub: Stub) -> dict[str, list[dict]]:
        """The DynamoDB tables once the last invocation (the HANGUP's put) has answered,
        written to `aws/dynamodb/<table>.json`."""
        spec = self.profile.stub
        deadline = time.monotonic() + spec.handler_timeout_ms / 1000 * (spec.handler_retries + 1) + 2
        while stub.resources()["transactions"] and time.monotonic() < deadline:
            time.sleep(0.05)
        tables = stub.dynamodb_tables()
        folder = self.run_dir / "aws" / "dynamodb"
        folder.mkdir(parents=True, exist_ok=True)
        for name, items in tables.items():
            (folder / f"{name}.json").write_text(json.dumps(items, indent=2))
        return tables

    # ---- verdict ----------------------------------------------------------------------
    def _judge(self, stub: Stub, wire: WireAnalysis) -> None:
        local = not isinstance(stub, AwsTarget)
        unseen = None if local or stub.observes_journal else \
            "the handler's invocations are seen only by the service; give --trace"
        evidence = verify.Evidence(
            wire, JournalView(self.journal), stub.config.host,
            frozenset({stub.sip_port, getattr(stub, "tls_port", None)}) - {None},
            stub.config.bucket_dir, self._first_call(), self._call, self.calls, local, unseen,
            self.updates, self.tables, self.leftovers, self.message_logs,
            srtp_offered=any(e.srtp for e in self.profile.endpoints.values()),
            impaired=self.profile.network is not None)
        self.result.checks = verify.judge(evidence, self.profile.expect)
        latency = next((c.measured.get("latency_ms") for c in self.result.checks if c.name == "switch"), None)
        if latency is not None:
            self.result.update_to_switch_ms = round(latency, 2)
        self.result.verdict = "pass" if all(c.passed for c in self.result.checks) else "fail"

    def _first_call(self) -> str:
        return next((s.call.name for s in self.profile.steps if s.call), None) or \
            self.profile.callees[0].name

    def _write_json(self, name: str, data) -> None:
        (self.run_dir / name).write_text(json.dumps(data, indent=2, default=str))


def _os_error(exc: OSError) -> str:
    """One line for an OSError: the file it concerns and why (`No space left on device`)."""
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc}"


def _alive(pid: int) -> bool:
    """Whether a process still exists (a caller worker that outlived its Caller)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def run_profiles(profiles: list[Profile], out_dir: Path, progress: Callable[[str], None] = print,
                 stub_url: str | None = None, access: RemoteAccess | None = None,
                 aws: AwsSettings | None = None) -> list[ProfileResult]:
    """Run each profile in turn (against the embedded stub, the `sip-harness serve` at
    `stub_url` authenticated with `access`, or the real service); one folder of artifacts
    per profile under `out_dir`."""
    results = []
    for i, profile in enumerate(profiles, 1):
        progress(f"[{i}/{len(profiles)}] {profile.name}")
        results.append(ProfileRun(profile, out_dir, progress, stub_url,
                                  access or RemoteAccess(), aws).execute())
    return results
