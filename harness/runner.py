"""Runs profiles: starts the stub, the capture and the callers, performs the steps, tears
everything down, then judges the run from the capture (and the handler's journal for the
event sequence) and writes the artifacts into one folder per profile."""
from __future__ import annotations

import json
import os
import random
import re
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import botocore.session
import numpy as np
from botocore.config import Config

from botocore.exceptions import BotoCoreError, ClientError

from .caller import Call, Caller, CallerError, Listener
from .journal_view import JournalView
from .lanes import LANES, lane
from .profiles.checks import preflight
from .local_aws import LocalAwsConfig
from .media.sources import read_wav, read_wav_channels
from .profiles.schema import AwsSeed, Profile, Step, StubSpec, handler_path
from .sip.message import SipResponse
from .lambdas.lambda_env import layer_folder
from .sma.model import SipMediaApplication, SipRule, rule_id
from .netem import NetworkImpairment
from .aws_target import AwsSettings, AwsTarget, AwsTargetError
from .remote import RemoteAccess, RemoteStub, RemoteStubError
from .report import write_profile_reports
from .stub import Stub, StubConfig, Termination, TlsSettings
from .wire.analysis import WireAnalysis, analyze_pcap
from .wire.capture import Capture, CaptureError
from .wire.http_requests import HttpRequest
from .wire.sdp import parse_sdp_audio
from .wire.audio import dtmf_events, label_packets, prompts_in, segments, stream_pcm, tone_frequency
from .wire.switch import check_switch
from .wire.words import RecognitionError, Recognizer


class ProfileNotRunnable(RuntimeError):
    """A profile that cannot run here (its handler file or a prompt is missing, ...)."""


#: Errors whose message says all (no traceback kept): the harness's own and the service's.
EXPECTED_ERRORS = (CallerError, CaptureError, RemoteStubError, AwsTargetError, ClientError,
                   BotoCoreError, OSError, TimeoutError, ProfileNotRunnable)

RTP_PORTS_PER_RUN = 400
RTP_BASE, RTP_BASE_LIMIT = 10000, 32400


@dataclass
class Check:
    """One expectation and what was observed."""

    name: str
    passed: bool
    detail: str
    measured: dict = field(default_factory=dict)


@dataclass
class ProfileResult:
    profile: str
    path: str
    run_dir: str
    verdict: str = "error"  # pass, fail or error
    checks: list[Check] = field(default_factory=list)
    error: str | None = None
    duration_s: float = 0.0
    update_to_switch_ms: float | None = None
    #: what went wrong, from the journal (`journal_view.Problem.to_json()`), in time order
    problems: list[dict] = field(default_factory=list)
    #: the traceback of an error the harness did not expect (a bug to report)
    error_detail: str | None = None

    def to_json(self) -> dict:
        return asdict(self)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "profile"


def rtp_block() -> int:
    """The first port of a run's block of RTP ports (the stub's half, then the callers'):
    below the ephemeral ports (32768+), so no other process's socket falls into the capture
    filter, and in a lane of its own for each pytest-xdist worker (a random block of that
    lane, for runs in separate processes)."""
    blocks = (RTP_BASE_LIMIT - RTP_BASE) // RTP_PORTS_PER_RUN
    index = lane() + LANES * random.randrange(blocks // LANES)
    return RTP_BASE + RTP_PORTS_PER_RUN * index


def stub_config(profile: Profile, run_dir: Path) -> StubConfig:
    """The stub's configuration for a profile, on 127.0.0.1 with free ports."""
    spec, base = profile.stub, profile.path.parent
    sma = SipMediaApplication(spec.sip_media_application_id, handler_path(base, spec.handler),
                              name=spec.name, aws_account_id=spec.aws_account_id,
                              aws_region=spec.aws_region, environment=dict(spec.environment),
                              runtime=spec.runtime, memory_mb=spec.memory_size_mb,
                              layers=tuple(str(layer_folder(base, l)) for l in spec.layers),
                              interruptible=frozenset(spec.interruptible))
    rules = [SipRule(rule_id(f"{sma.sip_media_application_id}/{i + 1}"),
                     "ToPhoneNumber" if r.to_phone_number is not None else "RequestUriHostname",
                     r.to_phone_number if r.to_phone_number is not None else r.request_uri_hostname,
                     [(r.priority, sma.sip_media_application_id)])
             for i, r in enumerate(spec.sip_rules)]
    low = rtp_block()
    impairment = None
    if profile.network is not None:
        plain = asdict(profile.network)
        for kind in ("sip", "rtp"):
            plain[kind] = {d: {k: v for k, v in o.items() if v is not None}
                           for d, o in (plain[kind] or {}).items() if o is not None}
        impairment = NetworkImpairment.from_dict(plain)
    creds = spec.sip.credentials
    return StubConfig([sma], rules, (base / spec.bucket_dir).resolve(), run_dir=run_dir,
                      handler_timeout_s=spec.handler_timeout_ms / 1000,
                      handler_retries=spec.handler_retries,
                      rtp_port_range=(low, low + RTP_PORTS_PER_RUN // 2), impairment=impairment,
                      aws=local_aws_config(spec),
                      tls=tls_settings(spec.sip.tls, base, run_dir), srtp=spec.sip.srtp,
                      termination=Termination(creds.username, creds.password, creds.realm) if creds else None)


def tls_settings(spec, base: Path, run_dir: Path, host: str = "127.0.0.1") -> TlsSettings | None:
    """The stub's TLS files: the profile's, or a certificate for `host` issued by a throwaway
    CA (trustme) into `run_dir/tls/`, whose `ca.pem` the callers then trust."""
    if spec is None:
        return None
    if spec.certificate is not None:
        return TlsSettings((base / spec.certificate).resolve(), (base / spec.private_key).resolve(),
                           spec.port, (base / spec.ca_file).resolve() if spec.ca_file else None)
    import trustme
    folder = run_dir / "tls"
    folder.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="sip-harness throwaway CA")
    ca.issue_cert(host, "localhost").private_key_and_cert_chain_pem.write_to_path(str(folder / "stub.pem"))
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    return TlsSettings(folder / "stub.pem", folder / "stub.pem", spec.port, folder / "ca.pem")


def local_aws_config(spec: StubSpec) -> LocalAwsConfig | None:
    """The local AWS services a profile's stub asks for, with its seed as plain JSON."""
    if spec.aws is None:
        return None
    seed = spec.aws.seed or AwsSeed()
    return LocalAwsConfig(spec.aws_region, {
        "dynamodb": [{"name": t.name, "key": list(t.key.items()), "items": t.items,
                      "indexes": {n: list(k.items()) for n, k in t.indexes.items()}}
                     for t in seed.dynamodb],
        "s3": [{"name": b.name, "objects": [asdict(o) for o in b.objects]} for b in seed.s3],
        "ssm": [asdict(p) for p in seed.ssm]})


def api_client(stub: Stub, region: str, key: tuple[str, str] | None = None):
    """A botocore chime-sdk-voice client bound to the stub, as users make one, signing with
    `key` (access key id, secret) when given; against AWS, with the usual credential chain
    (environment, profile, role) and the region's endpoint unless another is given."""
    session = botocore.session.get_session()
    config = Config(retries={"max_attempts": 1})
    key_id, secret = key or ("sip-harness", "sip-harness")
    if isinstance(stub, AwsTarget):
        return session.create_client("chime-sdk-voice", region_name=stub.settings.region,
                                     endpoint_url=stub.api_url, config=config)
    return session.create_client(
        "chime-sdk-voice", region_name=region, endpoint_url=stub.api_url,
        aws_access_key_id=key_id, aws_secret_access_key=secret, config=config)


def not_observable(name: str, why: str) -> Check:
    """An expectation the run cannot judge (against AWS without the emulator's journal)."""
    return Check(name, True, f"not observable: {why}", {"observable": False})


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
        config = stub_config(self.profile, self.run_dir)
        # the callers' RTP ports: the other half of the run's block (against AWS, all of
        # it), never pjsua2's shared default, where another run's media could reach them
        low, high = config.rtp_port_range
        self.media_ports = (low, 2 * high - low) if self.aws is not None else (high, 2 * high - low)
        if self.aws is not None:
            stub = AwsTarget(self.aws, config).start()
        elif self.stub_url:
            stub = RemoteStub(self.stub_url, config, self.access).start(self.profile.path.resolve())
        else:
            stub = Stub(config).start()
        self._stub = stub
        try:
            cfg = stub.config
            if isinstance(stub, AwsTarget):
                bpf = (f"(host {cfg.host} and port {stub.tls_port or stub.sip_port}) or "
                       f"udp portrange {self.media_ports[0]}-{self.media_ports[1]}")
                iface = "lo" if cfg.host.startswith("127.") else "any"
            else:
                tls = f" or tcp port {stub.tls_port}" if getattr(stub, "tls_port", None) else ""
                bpf = (f"host {cfg.host} and (port {stub.sip_port} or tcp port {stub.api_port}{tls}"
                       f" or udp portrange {cfg.rtp_port_range[0]}-{cfg.rtp_port_range[1]})")
                iface = "lo"
            capture = Capture(str(self.run_dir / "capture.pcap"), iface=iface, bpf=bpf)
            capture.start()
            try:
                self._steps(stub)
            finally:
                time.sleep(0.3)  # let the last BYE/200 and RTP reach the capture
                capture.stop()
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
        return self._arrival(stub, call_name)["transaction_id"]

    def _arrival(self, stub: Stub, call_name: str) -> dict:
        """The stub's journal entry for a named call: its arrival, or the leg the stub placed."""
        sip_call_id = self._call(call_name).call_id
        for entry in self.journal or stub.journal_json():  # the kept journal once the run is over
            if entry["kind"] in ("call_arrived", "call_placed") and entry["sip_call_id"] == sip_call_id:
                return entry
        raise RuntimeError(f"the stub has no leg for call {call_name!r} ({sip_call_id})")

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
        checks = self.result.checks
        journal = self.journal
        unseen = None  # why the handler's side cannot be judged (against AWS without a trace)
        if isinstance(stub, AwsTarget) and not stub.observes_journal:
            unseen = "the handler's invocations are seen only by the service; give --trace"
        delivered = [e["event"]["ActionData"]["Parameters"]["Arguments"] for e in journal
                     if e["kind"] == "invocation"
                     and e["event"]["InvocationEventType"] == "CALL_UPDATE_REQUESTED"]
        accepted = [u["arguments"] for u in self.updates if u["status"] == 202]
        for u in self.updates:
            ok = u["status"] == u["expect_status"] and u["error"] == u["expect_error"]
            checks.append(Check("update response", ok,
                                f"HTTP {u['status']} {u['error'] or ''}".strip()
                                + ("" if ok else f", expected {u['expect_status']} {u['expect_error'] or ''}"),
                                {"status": u["status"], "error": u["error"]}))
        if accepted and unseen:
            checks.append(not_observable("update arguments delivered", unseen))
        elif accepted:
            checks.append(Check("update arguments delivered", delivered == accepted,
                                "the handler got each update's Arguments verbatim" if delivered == accepted
                                else f"sent {accepted}, the handler got {delivered}",
                                {"counts": [len(a) for a in delivered]}))
        expect = self.profile.expect
        if expect.events is not None and unseen:
            checks.append(not_observable("handler events", unseen))
        elif expect.events is not None:
            seen = JournalView(journal).event_types()
            checks.append(Check("handler events", seen == expect.events,
                                "as expected" if seen == expect.events
                                else f"expected {expect.events}, saw {seen}", {"events": seen}))
        if expect.prompts is not None:
            checks.append(self._check_prompts(stub, wire, expect.prompts,
                                              expect.prompts_call or self._first_call()))
        for call_name, expected in (expect.heard or {}).items():
            checks.append(self._check_prompts(stub, wire, expected, call_name))
        if expect.prompt_after_answer is not None:
            checks.append(self._check_prompt_after_answer(stub, wire, expect.prompt_after_answer))
        if expect.switch is not None:
            checks.append(self._check_switch(stub, wire, expect.switch))
        if expect.bye_from is not None:
            checks.append(self._check_bye(stub, wire, expect.bye_from))
        if expect.received_digits is not None:
            checks.append(self._check_received_digits(stub, wire, journal, expect.received_digits))
        if expect.dtmf_to_caller is not None:
            checks.append(self._check_dtmf_to_caller(stub, wire, expect.dtmf_to_caller))
        for name, status in (expect.final_status or {}).items():
            seen = self._call(name).last_status
            checks.append(Check(f"final status of {name}", seen == status,
                                f"SIP {seen}" + ("" if seen == status else f", expected {status}"),
                                {"status": seen}))
        local = not isinstance(stub, AwsTarget)
        why_s3 = "the recording is in the service's S3 bucket, not in a folder of this run"
        if expect.recording_tone_hz is not None:
            checks.append(self._check_recording(journal, expect.recording_tone_hz) if local
                          else not_observable("recording", why_s3))
        if expect.call_recording is not None:
            checks.append(_check_call_recording(journal, expect.call_recording) if local
                          else not_observable("call recording", why_s3))
        for table, items in (expect.dynamodb or {}).items():
            checks.append(_check_table(table, self.tables.get(table), items) if local
                          else not_observable(f"DynamoDB table {table}", "the table is in your AWS account"))
        if expect.said is not None:
            checks.append(self._check_said(stub, wire, expect.said, expect.said_call or self._first_call()))
        if self.profile.network is not None and local:
            checks.append(self._check_impairment(stub, wire, journal))
        if any(e.srtp for e in self.profile.endpoints.values()) or wire.srtp:
            checks.append(_check_srtp(wire))
        if wire.logged_sip:
            checks.append(Check("SIP over TLS", True,
                                f"the capture cannot read SIP over TLS: {wire.logged_sip} SIP messages "
                                f"(ladder, SDP, SRTP keys) come from the callers' own message logs "
                                f"({', '.join(p.name for p in self.message_logs)})",
                                {"logged_messages": wire.logged_sip,
                                 "message_logs": [str(p) for p in self.message_logs]}))
        checks.append(check_nothing_after_last_hangup(journal) if not unseen
                      else not_observable("nothing invoked after the last HANGUP", unseen))
        checks.append(Check("nothing left behind", not self.leftovers,
                            f"left open: {self.leftovers}" if self.leftovers else "no dialog, stream or task left",
                            dict(self.leftovers)))
        self.result.verdict = "pass" if all(c.passed for c in checks) else "fail"

    def _check_impairment(self, stub: Stub, wire: WireAnalysis, journal: list[dict]) -> Check:
        """The loss the stub's edge made is the loss the capture shows on its RTP streams."""
        touched = [e["packet"] for e in journal if e["kind"] == "impairment"]
        dropped = sum(1 for p in touched if p["kind"] == "rtp" and p["direction"] == "outgoing"
                      and p["action"] == "dropped")
        ports = [e["rtp_port"] for e in journal if e["kind"] in ("call_arrived", "call_placed")]
        lost = sum(st.stats.lost for port in ports for st in wire.streams(src=(stub.config.host, port)))
        sip = sum(1 for p in touched if p["kind"] == "sip" and p["action"] == "dropped")
        return Check("network impairment", dropped == lost,
                     f"the stub's edge dropped {dropped} outgoing RTP packets, the capture shows "
                     f"{lost} lost; {sip} SIP datagrams dropped", {"rtp_dropped": dropped,
                                                                   "rtp_lost_on_wire": lost, "sip_dropped": sip})

    def _check_bye(self, stub: Stub, wire: WireAnalysis, who: str) -> Check:
        ours = {leg.sip_call_id for leg in JournalView(self.journal).legs()} \
            | {call.call_id for call in self.calls.values()}
        byes = [m for m in wire.sip if getattr(m.message, "method", None) == "BYE"
                and m.message.call_id in ours]
        if not byes:
            return Check("BYE", False, f"no BYE on the wire, expected one from the {who}")
        sender = "stub" if byes[0].src[1] in (stub.sip_port, getattr(stub, "tls_port", None)) else "caller"
        return Check("BYE", sender == who, f"first BYE sent by the {sender}"
                     + ("" if sender == who else f", expected the {who}"),
                     {"bye_from": sender, "time": byes[0].time})

    def _far_media(self, stub: Stub, wire: WireAnalysis, call_name: str):
        """The media address of the far end (the stub, or the service) of a named call: from
        the stub's journal, else from the SDP the far end answered with on the wire."""
        if not isinstance(stub, AwsTarget):
            return stub.config.host, self._arrival(stub, call_name)["rtp_port"]
        sip_call_id = self._call(call_name).call_id
        offers = [parse_sdp_audio(m.message.body) for m in wire.sip if m.message.call_id == sip_call_id
                  and getattr(m.message, "method", None) == "INVITE" and m.message.body]
        ours = {(o.address, o.port) for o in offers if o is not None}  # the caller's own media
        theirs = [s.src for s in wire.rtp_streams if s.dst in ours and s.src not in ours]
        return theirs[0] if theirs else None

    def _stub_stream(self, stub: Stub, wire: WireAnalysis, call_name: str):
        """The RTP stream the stub (or the service) sent to a named call, found in the capture."""
        far = self._far_media(stub, wire, call_name)
        streams = wire.streams(src=far) if far else []
        return streams[0] if streams else None

    def _first_call(self) -> str:
        return next((s.call.name for s in self.profile.steps if s.call), None) or \
            self.profile.callees[0].name

    def _check_received_digits(self, stub: Stub, wire: WireAnalysis, journal: list[dict],
                               expected: list[str]) -> Check:
        got = [e["event"]["ActionData"]["ReceivedDigits"] for e in journal
               if e["kind"] == "invocation" and e["event"].get("ActionData", {}).get("ReceivedDigits")]
        far = self._far_media(stub, wire, self._first_call())
        on_wire = "".join(d.digit or "" for s in (wire.streams(dst=far) if far else [])
                          for d in dtmf_events(s))
        reached = _in_order("".join(got), on_wire)
        ok = got == expected and reached
        return Check("received digits", ok,
                     f"the handler got {got}; the caller's RFC 4733 digits on the wire: {on_wire!r}"
                     + ("" if got == expected else f"; expected {expected}")
                     + ("" if reached else "; not every digit the handler got crossed the wire"),
                     {"received": got, "on_wire": on_wire})

    def _check_dtmf_to_caller(self, stub: Stub, wire: WireAnalysis, expected: str) -> Check:
        stream = self._stub_stream(stub, wire, self._first_call())
        digits = "".join(d.digit or "" for d in dtmf_events(stream)) if stream else ""
        return Check("digits sent to the caller", digits == expected,
                     f"RFC 4733 digits on the wire: {digits!r}" + ("" if digits == expected else f", expected {expected!r}"),
                     {"digits": digits})

    def _check_recording(self, journal: list[dict], tone_hz: float) -> Check:
        paths = [Path(e["path"]) for e in journal if e["kind"] == "recording_stopped"]
        if not paths or not paths[-1].is_file():
            return Check("recording", False, "no recording was written")
        pcm = read_wav(paths[-1].read_bytes())
        heard = _median_tone(pcm[len(pcm) // 4: 3 * len(pcm) // 4])
        ok = heard is not None and abs(heard - tone_hz) <= 10
        return Check("recording", ok, f"{paths[-1].name}: {len(pcm) / 8000:.2f} s, tone "
                     f"{heard and round(heard)} Hz" + ("" if ok else f", expected {tone_hz} Hz"),
                     {"path": str(paths[-1]), "seconds": len(pcm) / 8000, "tone_hz": heard})

    def _prompt_segments(self, stub: Stub, wire: WireAnalysis, call_name: str):
        """The prompt segments on the stub's stream to a named call, or None without RTP."""
        stream = self._stub_stream(stub, wire, call_name)
        if stream is None:
            return None
        return [seg for seg in segments(label_packets(stream, load_prompts(stub.config.bucket_dir)))
                if seg.kind == "prompt"]

    def _check_prompts(self, stub: Stub, wire: WireAnalysis, expected: list[str], call_name: str) -> Check:
        name = f"prompts heard by {call_name}"
        found = self._prompt_segments(stub, wire, call_name)
        if found is None:
            return Check(name, False, f"no RTP from the stub to {call_name} on the wire")
        heard = prompts_in(found)
        return Check(name, heard == expected,
                     f"the stub played {heard}" + ("" if heard == expected else f", expected {expected}"),
                     {"prompts": heard})

    def _check_said(self, stub: Stub, wire: WireAnalysis, phrases: list[str], call_name: str) -> Check:
        """Each phrase recognised (pocketsphinx) in the stub's audio to the call, in order."""
        stream = self._stub_stream(stub, wire, call_name)
        if stream is None:
            return Check("said", False, "no RTP from the stub on the wire")
        pcm, rate, origin = stream_pcm(stream)
        recognizer, heard, after = Recognizer(), [], 0.0
        for phrase in phrases:
            try:
                match = recognizer.find_phrase(pcm, rate, phrase, after)
            except RecognitionError as exc:
                return Check("said", False, str(exc))
            heard.append({"phrase": phrase, "at_s": None if match is None else round(
                (origin - wire.start_ns) / 1e9 + match.start_s, 3)})
            if match is None:
                where = "after the phrase before it" if after else ""
                return Check("said", False, f"{phrase!r} was not heard {where} in the stub's speech to call "
                             f"{call_name!r}".replace("  ", " "), {"said": heard})
            after = match.end_s
        return Check("said", True, "heard " + ", ".join(f"{h['phrase']!r} at {h['at_s']:.2f} s" for h in heard),
                     {"said": heard})

    def _check_prompt_after_answer(self, stub: Stub, wire: WireAnalysis, spec) -> Check:
        name = f"{spec.prompt} after the answer"
        sip_call_id = self._call(spec.call).call_id
        answers = [m for m in wire.sip if m.message.call_id == sip_call_id
                   and isinstance(m.message, SipResponse) and m.message.status == 200
                   and m.message.cseq[1] == "INVITE"]
        found = [seg for seg in self._prompt_segments(stub, wire, spec.call) or [] if seg.prompt == spec.prompt]
        if not answers or not found:
            return Check(name, False, "no 200 OK for the call on the wire" if not answers
                         else f"{spec.prompt} was not heard")
        delay_ms = (found[0].start_ts_ns / 1e9 - answers[0].time) * 1000
        ok = delay_ms <= spec.within_ms
        return Check(name, ok, f"{spec.prompt} started {delay_ms:.1f} ms after the stub's 200 OK"
                     + ("" if ok else f", more than the {spec.within_ms} ms allowed"), {"delay_ms": round(delay_ms, 2)})

    def _check_switch(self, stub: Stub, wire: WireAnalysis, spec) -> Check:
        prompts = load_prompts(stub.config.bucket_dir)
        missing = [p for p in (spec.from_prompt, spec.to_prompt) if p not in prompts]
        if missing:
            return Check("switch", False, f"prompt {missing[0]!r} is not a WAV in {stub.config.bucket_dir}")
        if isinstance(stub, AwsTarget):  # HTTPS: the update's time is the harness's own clock
            requests = [HttpRequest(0, int(u["time"] * 1e9), ("", 0), ("", 0), "POST", "", (), b"")
                        for u in self.updates if u["status"] == 202]
        else:
            requests = wire.update_requests(self._arrival(stub, spec.call)["transaction_id"])
        stream = self._stub_stream(stub, wire, spec.call)
        if not requests or stream is None:
            return Check("switch", False, "no update request on the wire" if not requests
                         else "no RTP from the stub on the wire")
        result = check_switch(wire, stream, requests[0], spec.from_prompt, spec.to_prompt, prompts)
        measured = {"latency_ms": result.latency_ms, "old_reappears": result.old_reappears,
                    "continuous": result.continuous, "first_new_frame": result.first_new_number}
        if result.latency_ms is not None:
            self.result.update_to_switch_ms = round(result.latency_ms, 2)
        passed = result.ok and result.latency_ms <= spec.within_ms
        detail = result.reason
        if result.ok and not passed:
            detail = f"{result.reason}; slower than the {spec.within_ms} ms allowed"
        return Check("switch", passed, detail, measured)

    def _write_json(self, name: str, data) -> None:
        (self.run_dir / name).write_text(json.dumps(data, indent=2, default=str))


def _os_error(exc: OSError) -> str:
    """One line for an OSError: the file it concerns and why (`No space left on device`)."""
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc}"


def _check_table(table: str, found: list[dict] | None, expected: list[dict]) -> Check:
    """Each expected item is in the table: found by its key, every attribute given equal (or,
    for {matches: REGEX}, its text matching)."""
    if found is None:
        return Check(f"dynamodb {table}", False, "no such table after the run")
    problems = []
    for want in expected:
        key = want["key"]
        item = next((i for i in found if all(i.get(k) == v for k, v in key.items())), None)
        if item is None:
            problems.append(f"no item with key {key}")
            continue
        for name, value in want.items():
            if name == "key":
                continue
            got = item.get(name)
            if isinstance(value, dict) and set(value) == {"matches"}:
                ok = got is not None and re.fullmatch(str(value["matches"]), str(got)) is not None
            else:
                ok = got == value
            if not ok:
                problems.append(f"item {key}: {name} is {got!r}, expected {value!r}")
    return Check(f"dynamodb {table}", not problems,
                 "; ".join(problems) if problems else f"{len(expected)} expected item(s) found "
                 f"among {len(found)}", {"items": found})


def _check_call_recording(journal: list[dict], spec) -> Check:
    """Both channels of the last call recording hold their party's tone in its last quarter:
    the recording kept both directions through everything that played before."""
    paths = [Path(e["path"]) for e in journal if e["kind"] == "recording_stopped"]
    if not paths or not paths[-1].is_file():
        return Check("call recording", False, "no recording was written")
    channels = read_wav_channels(paths[-1].read_bytes(), paths[-1].name)
    if len(channels) != 2:
        return Check("call recording", False, f"{paths[-1].name} has {len(channels)} channel(s), not 2")
    seen, ok = {}, True
    for side, pcm, want in (("incoming", channels[0], spec.incoming_tone_hz),
                            ("outgoing", channels[1], spec.outgoing_tone_hz)):
        seen[side] = _median_tone(pcm[-(len(pcm) // 4):])
        ok = ok and seen[side] is not None and abs(seen[side] - want) <= 10
    detail = (f"{paths[-1].name}: {len(channels[0]) / 8000:.2f} s; its last quarter: "
              + ", ".join(f"{side} {f and round(f)} Hz" for side, f in seen.items()))
    if not ok:
        detail += f"; expected incoming {spec.incoming_tone_hz} Hz, outgoing {spec.outgoing_tone_hz} Hz"
    return Check("call recording", ok, detail, {"path": str(paths[-1]), "tones_hz": seen})


def _check_srtp(wire: WireAnalysis) -> Check:
    """Every SRTP flow of the capture decrypted with the SDES key its SDP announced: none
    failed authentication, and there was SRTP in both directions."""
    flows = list(wire.srtp)
    ok = len([f for f in flows if f.packets]) >= 2 and all(f.ok for f in flows if f.packets)
    detail = "; ".join(f.describe() for f in flows) or "no SRTP key announced in any SDP"
    if flows and not ok and any(f.failed for f in flows):
        detail = "SRTP does not decrypt with the keys of the SDP: " + detail
    return Check("SRTP", ok, detail, {"flows": [{"src": list(f.src), "packets": f.packets,
                                                 "decrypted": f.decrypted, "failed": f.failed}
                                                for f in flows]})


def _median_tone(pcm) -> float | None:
    """The median tone frequency of the 20 ms frames of `pcm` that hold one, or None."""
    freqs = [f for i in range(0, len(pcm) - 160, 160) if (f := tone_frequency(pcm[i:i + 160])) is not None]
    return float(np.median(freqs)) if freqs else None


def check_nothing_after_last_hangup(journal: list[dict]) -> Check:
    """No transaction invokes its handler after the HANGUP of its last leg (the service's
    transaction ends there; sma-reference §6.1)."""
    ended: set[str] = set()
    late: list[str] = []
    for entry in journal:
        if entry["kind"] != "invocation":
            continue
        tx, event = entry["transaction_id"], entry["event"]
        if tx in ended:
            late.append(f"{event['InvocationEventType']} (Sequence {event['Sequence']})")
        elif event["InvocationEventType"] == "HANGUP" and all(
                p.get("Status") == "Disconnected" for p in event["CallDetails"]["Participants"]):
            ended.add(tx)
    return Check("nothing invoked after the last HANGUP", not late,
                 f"invoked after the transaction ended: {', '.join(late[:5])}"
                 + (f" and {len(late) - 5} more" if len(late) > 5 else "") if late
                 else "no invocation after a transaction's last HANGUP", {"late_invocations": len(late)})


def _alive(pid: int) -> bool:
    """Whether a process still exists (a caller worker that outlived its Caller)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _in_order(needle: str, haystack: str) -> bool:
    """Whether the characters of `needle` appear in `haystack` in order."""
    it = iter(haystack)
    return all(ch in it for ch in needle)


def load_prompts(bucket_dir: Path) -> dict[str, object]:
    """Every WAV under the bucket folder, by file name, as 8 kHz int16 PCM."""
    return {p.name: read_wav(p.read_bytes(), p.name) for p in sorted(bucket_dir.rglob("*.wav"))}


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
