"""The SMA stub: SIP, RTP, handler invocations and the REST API on one asyncio event loop.

This is the edge that wires the sans-IO cores together: SIP events become SMA engine inputs,
engine commands become SIP requests and responses, media and handler invocations. It runs
either on the caller's loop (`await stub.start_async()`, used by `sip-harness serve`) or
embedded in a background thread (`stub.start()`), which is what tests and the runner use.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from .api import access as api_access
from .api.server import VERIFIER, ApiSettings, build_app
from .api.serving import ApiRunner
from .media.dtmf import SOURCE_SIP_INFO, DigitReceived
from .media.engine import MediaEngine, MediaSession
from .media.g711 import SILENCE_BYTE
from .media.recording import Recording
from .media.sources import FRAME_SAMPLES, RATE, InvalidAudioSource, wav_frames
from .media.speech import SpeechError, speech_frames
from .netem import NetworkImpairment
from .sip import events as sip_events
from .sip.endpoint import uri_of
from .sip.sdp import AudioAnswer, SdpError, answer_offer, build_answer, build_offer, parse_sdp
from .sip.digest import ANSWER_HEADER, CHALLENGE_STATUS, DigestChallenger
from .sip.sdes import SdesCrypto
from .sip.transport import TcpSipTransport, TlsSipTransport, UdpSipTransport, server_context
from .media.srtp import SrtpContext
from .sip.uri import SipUri, UriError
from .routes import RouteError, expand
from .sma import commands as cmd
from .sma.buckets import valid_bucket_name
from .sma.engine import CallTransaction
from .control import ControlSettings, add_control_routes
from .journal import DEFAULT_MAX_BYTES, Journal, MalformedTally
from .local_aws import LocalAws, LocalAwsConfig
from .sma.errors import BadRequest, NotFound, ResourceLimitExceeded, ServiceUnavailable
from .sma.handlers import FunctionConfig, HandlerRunner, InvocationResult, create_handler
from .sma.lambda_env import LOCAL_CREDENTIALS, Endpoints, RoleCredentials
from .sma.model import Leg, SipMediaApplication, SipRule, new_id
from .sma.service import SmaService

log = logging.getLogger(__name__)
FORWARDED_HEADERS = ("user-to-user", "diversion")
OUTBOUND_DTMF_PT = 101
SYSTEM_ERROR = ("SystemException", "System error while running action.")


@dataclass
class TlsSettings:
    """SIP over TLS: the stub's certificate chain and key (PEM files), and its port (5061 by
    convention; 0 = a free one). `ca_file` is the CA of this TLS set-up: callers verify the
    stub's certificate with it, and the stub the far ends of the legs it places."""

    certificate: Path
    private_key: Path
    port: int = 0
    ca_file: Path | None = None


SRTP_MODES = ("optional", "required", "off")


@dataclass
class Termination:
    """Digest credentials every INVITE must answer (a Voice Connector's termination
    credentials): an INVITE without them gets 407 with a challenge."""

    username: str
    password: str
    realm: str = "sip-harness"


@dataclass
class StubConfig:
    """Everything the stub needs to serve.

    `bucket_dir/<BucketName>/<Key>` stands for S3; objects the stub writes (recordings) go to
    `written_dir/<BucketName>/<Key>` (the run's folder, never the profile's), and are read
    from there first. `routes` says where the legs the SMA
    places go (CallAndBridge, CreateSipMediaApplicationCall): a number, or a Voice Connector
    ARN, or "*" -> a SIP URI template where `{user}` is the number dialled. `aws`, when
    given, starts local AWS services for the handlers' own SDK calls.
    """

    applications: list[SipMediaApplication]
    rules: list[SipRule]
    bucket_dir: Path
    host: str = "127.0.0.1"
    sip_port: int = 0
    api_port: int = 0
    run_dir: Path | None = None
    handler_timeout_s: float = 5.0
    handler_retries: int = 1
    codecs: tuple[str, ...] = ("PCMU", "PCMA")
    rtp_port_range: tuple[int, int] | None = None
    routes: dict[str, str] = field(default_factory=dict)
    api: ApiSettings = field(default_factory=ApiSettings)
    control: ControlSettings | None = None  # the /_harness/ routes: off unless given
    impairment: NetworkImpairment | None = None
    journal_max_bytes: int = DEFAULT_MAX_BYTES  # the newest entries kept in memory
    journal_path: Path | None = None  # also append each entry to this JSON-lines file
    worker_index: int | None = None  # in a cluster: carried in every TransactionId (model.new_id)
    aws: LocalAwsConfig | None = None
    #: SIP over TLS as well as UDP and TCP (None: no TLS listener)
    tls: TlsSettings | None = None
    #: "optional": an RTP/SAVP offer gets SRTP, a plain one RTP; "required" (a Voice
    #: Connector with encryption on): a plain offer gets 488; "off": an SRTP offer gets 488
    srtp: str = "optional"
    termination: Termination | None = None

    @property
    def written_dir(self) -> Path | None:
        return self.run_dir / "s3" if self.run_dir else None

    def read_path(self, bucket: str, key: str) -> Path:
        """The file standing for s3://bucket/key: written by this stub, else in the bucket folder."""
        if self.written_dir is not None:
            written = _bucket_path(self.written_dir, bucket, key, must_exist=False)
            if written.is_file():
                return written
        return _bucket_path(self.bucket_dir, bucket, key)


@dataclass
class _SipCall:
    """The stub's view of one SIP dialog and the SMA leg it carries."""

    sip_call_id: str
    leg: Leg
    transaction: CallTransaction
    transport: UdpSipTransport | TcpSipTransport | TlsSipTransport
    media: MediaSession | None = None
    audio: AudioAnswer | None = None
    sdp: bytes = b""
    outbound: bool = False
    answered: bool = False
    hangup_code: int = 0
    target: str = ""  # the SIP URI a placed leg goes to
    recordings: dict[object, Recording] = field(default_factory=dict)


class SetupFailed(Exception):
    """A call could not be set up: `status` is the SIP answer (or the placed leg's failure
    code), `reason` says why, `headers` go with the answer (a digest challenge); whatever
    the set-up took has been released."""

    def __init__(self, status: int, reason: str, headers: list[tuple[str, str]] | None = None):
        super().__init__(reason)
        self.status, self.reason, self.headers = status, reason, list(headers or [])


RETRY_AFTER_S = 5  # what a 503 for lack of RTP ports, or while draining, asks callers to wait


class Stub:
    """The local SMA emulator.

    `configurator`, when given, lets a remote runner switch the stub to another profile's
    SMA, rules and handler (`POST /_harness/configure {"profile": PATH}`, see `control.py`).
    """

    def __init__(self, config: StubConfig,
                 configurator: Callable[[Path], StubConfig] | None = None):
        self.config = config
        self.configurator = configurator
        self.journal = Journal(config.journal_max_bytes, config.journal_path)
        self.malformed = MalformedTally()
        self._watchers: list[Callable[[dict], None]] = []
        self.sessions = None  # a served stub's SessionManager (remote runs), see sessions.py
        self.draining = False
        self._prepared: dict[str, _SipCall] = {}  # placed legs set up before their PlaceCall
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._calls: dict[str, _SipCall] = {}  # by SIP Call-ID
        self._legs: dict[str, _SipCall] = {}  # by SMA CallId
        self._handlers: dict[str, HandlerRunner] = {}
        self._tasks: set[asyncio.Task] = set()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self.udp: UdpSipTransport | None = None
        self.tcp: TcpSipTransport | None = None
        self.tls: TlsSipTransport | None = None
        self.media: MediaEngine | None = None
        t = config.termination
        self._challenger = DigestChallenger(t.realm, t.username, t.password) if t else None
        self.service: SmaService | None = None
        self._api_runner: ApiRunner | None = None
        self.api_port = 0
        self.local_aws: LocalAws | None = None
        #: the functions' execution roles the API accepts (see `SigV4Verifier.roles`)
        self._roles: dict[str, tuple[str, str, str]] = {}

    # ---- life cycle ---------------------------------------------------------------------
    async def start_async(self) -> None:
        """Bind SIP (UDP and TCP on one port number), RTP and the API on the running loop."""
        self._loop = asyncio.get_running_loop()
        cfg = self.config
        if cfg.run_dir is not None:
            cfg.run_dir.mkdir(parents=True, exist_ok=True)
        api_socket = _tcp_listener(cfg.host, cfg.api_port)  # bound first: handlers get its URL
        self.api_port = api_socket.getsockname()[1]
        try:
            await self._load_applications(cfg)
            self.media = MediaEngine(cfg.host, cfg.rtp_port_range, impairment=cfg.impairment)
            await self._listen_sip(cfg)
            if cfg.tls is not None:
                client = ssl.create_default_context(cafile=str(cfg.tls.ca_file) if cfg.tls.ca_file else None)
                self.tls = await TlsSipTransport.listen_tls(
                    cfg.host, cfg.tls.port, self._on_tls,
                    server_context(str(cfg.tls.certificate), str(cfg.tls.private_key)), client)
            app = build_app(self, cfg.api)
            if app[VERIFIER] is not None:
                app[VERIFIER].roles = self._roles
            if cfg.control is not None:
                if cfg.control.token is None and not cfg.api.credentials:
                    raise ValueError("the control routes need a token or API credentials")
                add_control_routes(app, self, cfg.control)
            app[api_access.NOTE] = self._note
            self._api_runner = ApiRunner(app, access_log=api_access.LOGGER,
                                         access_log_class=api_access.JournalAccessLog,
                                         keepalive_timeout=cfg.api.idle_timeout_s)
            await self._api_runner.setup()
        except BaseException:
            api_socket.close()
            raise
        await web.SockSite(self._api_runner, api_socket).start()

    async def _listen_sip(self, cfg: StubConfig, attempts: int = 20) -> None:
        """UDP and TCP on one port number; with port 0, a number free for both."""
        for attempt in range(attempts):
            self.udp = await UdpSipTransport.listen(cfg.host, cfg.sip_port, self._on_udp,
                                                    impairment=cfg.impairment)
            try:
                self.tcp = await TcpSipTransport.listen(cfg.host, self.udp.port, self._on_tcp)
                return
            except OSError:
                self.udp.close()
                if cfg.sip_port or attempt == attempts - 1:
                    raise

    async def _load_applications(self, cfg: StubConfig) -> None:
        """A fresh service model with the SMAs, rules and handlers of `cfg`, and its local AWS
        services. Handlers reach those and this stub's API through their endpoint variables."""
        self.service = SmaService(self._loop.time, lambda: int(time.time() * 1000),
                                  cfg.worker_index)
        if cfg.aws is not None:
            log_path = None
            if cfg.run_dir is not None:
                (cfg.run_dir / "aws").mkdir(parents=True, exist_ok=True)
                log_path = cfg.run_dir / "aws" / "moto.log"
            self.local_aws = await LocalAws.start(cfg.aws, log_path)
        endpoints = Endpoints(self.local_aws.endpoint if self.local_aws else None,
                              self.handler_api_url)
        self._roles.clear()
        for sma in cfg.applications:
            self.service.add_application(sma)
            role = LOCAL_CREDENTIALS
            if cfg.api.credentials:  # the API checks signatures: the role's must pass
                role = RoleCredentials.issue()
                self._roles[role.access_key_id] = (role.secret_access_key, role.session_token,
                                                   sma.aws_account_id)
            log_path = cfg.run_dir / f"handler-{sma.name}.log" if cfg.run_dir else None
            self._handlers[sma.sip_media_application_id] = create_handler(FunctionConfig(
                sma.handler, function_name=sma.name, env=sma.environment, runtime=sma.runtime,
                memory_mb=sma.memory_mb, layers=sma.layers, endpoints=endpoints, credentials=role,
                timeout_s=cfg.handler_timeout_s, retries=cfg.handler_retries,
                log_path=log_path, region=sma.aws_region, account=sma.aws_account_id))
        for rule in cfg.rules:
            self.service.add_rule(rule)

    async def _unload_applications(self) -> None:
        """Stop the handlers' workers and the local AWS services (each one even when another
        fails to stop; the failures are logged)."""
        for handler in self._handlers.values():
            await _released(handler.close())
        self._handlers.clear()
        if self.local_aws is not None:
            await _released(self.local_aws.close())
            self.local_aws = None

    async def dynamodb_tables_async(self) -> dict[str, list[dict]]:
        """Every table of the local AWS services with its items now ({} without them)."""
        return await self.local_aws.dynamodb_tables() if self.local_aws else {}

    def dynamodb_tables(self) -> dict[str, list[dict]]:
        """`dynamodb_tables_async()` from another thread."""
        return asyncio.run_coroutine_threadsafe(self.dynamodb_tables_async(), self._loop).result(60)

    async def reconfigure(self, profile: Path) -> None:
        """Serve another profile's SMA, rules, handler and bucket; the journal starts anew.
        Only while no call is up (ServiceUnavailable otherwise)."""
        if self.configurator is None:
            raise ServiceUnavailable("this stub was started without a profile configurator")
        if self.service.transactions or self._calls:
            raise ServiceUnavailable("calls are still up; reconfigure between runs")
        new = self.configurator(profile)
        await self._unload_applications()
        self.config.applications, self.config.rules = new.applications, new.rules
        self.config.bucket_dir, self.config.routes = new.bucket_dir, {}
        self.config.handler_timeout_s = new.handler_timeout_s
        self.config.handler_retries = new.handler_retries
        self.config.aws = new.aws
        await self._load_applications(self.config)
        self.journal.clear()
        self.malformed = MalformedTally()

    async def drain(self, timeout_s: float) -> int:
        """Stop taking calls (INVITEs get 503, the API answers 503) and end every call up:
        BYE (480 or CANCEL before an answer), so that each transaction's HANGUP is invoked.
        Waits until the transactions and invocations are over, at most `timeout_s`; returns
        how many calls were up."""
        self.draining = True
        calls = list(self._calls.values())
        now = self._loop.time()
        for call in calls:
            call.transport.endpoint.hangup(call.sip_call_id, now)
        for transport in self._transports:
            transport.flush()
        self._note("draining", None, calls=len(calls))
        deadline = now + timeout_s
        while (self._calls or self.service.transactions or self._tasks) \
                and self._loop.time() < deadline:
            await asyncio.sleep(0.05)
        return len(calls)

    async def stop_async(self) -> None:
        """Drain (the API answers 503), then release everything: sockets, workers, tasks.
        Every release runs even when another fails (each failure is logged)."""
        self.draining = True
        for handle in self._timers.values():
            handle.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._api_runner is not None:
            await _released(self._api_runner.cleanup())
        for transport in self._transports:
            await _released(_closed(transport))
        if self.media is not None:
            await _released(self.media.close())
        await self._unload_applications()
        if self.config.impairment is not None:
            for record in self.config.impairment.records:
                self._note("impairment", None, packet=record.to_json())
        if self.malformed.total:
            self._note("sip_malformed_summary", None, **self.malformed.to_json())
        self.journal.close()

    def start(self) -> "Stub":
        """Run the stub embedded, on its own event loop in a background thread."""
        loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=loop.run_forever, name="sma-stub", daemon=True)
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self.start_async(), loop).result(90)
        except BaseException:
            self.stop()  # what did start is released; the error is the caller's
            raise
        return self

    def stop(self) -> None:
        """Stop an embedded stub and join its thread."""
        loop = self._loop
        if loop is None or self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self.stop_async(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(10)
        loop.close()
        self._thread = None

    def __enter__(self) -> "Stub":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def run_in_loop(self, fn, *args, timeout: float = 10.0):
        """Call `fn(*args)` on the stub's loop from another thread and return its result."""
        async def call():
            return fn(*args)
        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(timeout)

    @property
    def sip_port(self) -> int:
        return self.udp.port

    @property
    def tls_port(self) -> int | None:
        """The SIP over TLS port, or None without TLS."""
        return self.tls.port if self.tls is not None else None

    @property
    def _transports(self) -> list:
        return [t for t in (self.udp, self.tcp, self.tls) if t is not None]

    @property
    def api_url(self) -> str:
        return f"http://{self.config.host}:{self.api_port}"

    @property
    def handler_api_url(self) -> str:
        """The API as handlers on this machine reach it (loopback for a wildcard address)."""
        host = self.config.host
        host = "127.0.0.1" if host in ("", "0.0.0.0") else "[::1]" if host == "::" else \
            f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.api_port}"

    def sip_uri(self, user: str, transport: str = "udp") -> str:
        return sip_uri(user, self.config.host, self.sip_port, self.tls_port, transport)

    def add_route(self, number: str, uri: str) -> None:
        """Send the legs the SMA places to `number` (or "*", or a Voice Connector ARN) to `uri`."""
        self.config.routes[number] = uri

    def resources(self) -> dict[str, int]:
        """Open dialogs, media sessions, transactions, tasks and handler workers (leak checks)."""
        return self.run_in_loop(self.count_resources)

    def count_resources(self) -> dict[str, int]:
        """`resources()` on the stub's own loop."""
        return {"dialogs": sum(t.endpoint.active_dialogs() for t in self._transports),
                "media_sessions": self.media.session_count,
                "transactions": len(self.service.transactions), "tasks": len(self._tasks),
                "handler_workers": sum(h.worker_count for h in self._handlers.values())}

    def live_calls(self) -> list[dict]:
        """The transactions up now: TransactionId, SMA and each leg (what `sip-harness calls`
        prints, to find a live call's TransactionId)."""
        sip_ids = {c.leg.call_id: c.sip_call_id for c in self._calls.values()}
        return [{"transaction_id": tx.transaction_id,
                 "sip_media_application_id": tx.sma.sip_media_application_id,
                 "legs": [{**leg.to_event(), "SipCallId": sip_ids.get(leg.call_id)} for leg in tx.legs]}
                for tx in self.service.transactions.values() if not tx.ended]

    # ---- the API backend ------------------------------------------------------------------
    def update_call(self, sma_id: str, transaction_id: str, arguments: dict[str, str]) -> str:
        """UpdateSipMediaApplicationCall: queue CALL_UPDATE_REQUESTED, answer at once."""
        tx = self.service.find_transaction(sma_id, transaction_id)
        if tx.invocations_exhausted:
            raise ResourceLimitExceeded(f"Transaction {transaction_id} has used its 1000 invocations")
        self._note("update_requested", tx.transaction_id, arguments=arguments)
        tx.update_requested(arguments)
        self._dispatch(tx)
        return tx.transaction_id

    def create_call(self, sma_id: str, from_number: str, to_number: str,
                    sip_headers: dict[str, str], arguments: dict[str, str]) -> str:
        """CreateSipMediaApplicationCall: a new transaction whose LEG-A we place. The leg is
        set up (route, RTP ports) before the API answers, so a failure is the API's error."""
        sma = self.service.applications.get(sma_id)
        if sma is None:
            raise NotFound(f"SIP media application {sma_id} not found")
        if self.draining:
            raise ServiceUnavailable("The service is shutting down")
        tx = self.service.new_transaction(sma, None)
        leg = Leg(new_id(), "LEG-A", to_number, from_number, "Outbound", int(time.time() * 1000))
        try:
            self._prepared[leg.call_id] = self._outbound_leg(tx, leg, to_number, None)
        except SetupFailed as exc:
            self.service.drop(tx.transaction_id)
            self._note("place_failed", tx.transaction_id, call_id=leg.call_id, reason=exc.reason)
            if exc.status == 503:
                raise ServiceUnavailable(exc.reason) from None
            raise BadRequest(exc.reason) from None
        self._note("call_created", tx.transaction_id, call_id=leg.call_id, to=to_number,
                   from_=from_number, arguments=arguments)
        tx.outbound_call(leg, arguments, sip_headers)
        self._dispatch(tx)
        return tx.transaction_id

    # ---- SIP events -------------------------------------------------------------------------
    def _on_udp(self, event: object) -> None:
        self._on_sip(event, self.udp)

    def _on_tcp(self, event: object) -> None:
        self._on_sip(event, self.tcp)

    def _on_tls(self, event: object) -> None:
        self._on_sip(event, self.tls)

    def _on_sip(self, event: object, transport) -> None:
        if isinstance(event, sip_events.IncomingCall):
            self._incoming(event, transport)
            return
        if isinstance(event, sip_events.MalformedMessage):
            if self.malformed.count(event.kind, event.source[0], event.answered):
                # only the first of each reason: junk must not flood the journal
                self._note("sip_malformed", None, source=list(event.source),
                           reason=event.kind, example=event.reason, answered=event.answered)
            return
        call = self._calls.get(event.call_id)
        if call is None:
            return
        tx = call.transaction
        if isinstance(event, sip_events.CallConfirmed):
            self._note("sip_confirmed", tx.transaction_id, sip_call_id=event.call_id)
        elif isinstance(event, sip_events.CallProgress):
            tx.leg_ringing(call.leg.call_id)
        elif isinstance(event, sip_events.CallAnswered):
            call.audio, call.answered = event.audio, True
            call.media.start((event.audio.remote_host, event.audio.remote_port))
            self._note("answered", tx.transaction_id, call_id=call.leg.call_id, sip_call_id=event.call_id)
            tx.leg_answered(call.leg.call_id)
        elif isinstance(event, sip_events.MediaUpdated):
            (call.media.pause if event.held else call.media.resume)()
            self._note("held" if event.held else "resumed", tx.transaction_id, call_id=call.leg.call_id)
        elif isinstance(event, sip_events.DtmfInfo):
            self._digit(call, DigitReceived(event.digit, event.duration_ms, SOURCE_SIP_INFO))
        elif isinstance(event, sip_events.CallEnded):
            self._call_ended(call, event)
        self._dispatch(tx)

    def _incoming(self, event: sip_events.IncomingCall, transport) -> None:
        """A new INVITE: set the call up and start its transaction, or answer it with the
        error that says why not (488, 404, 503 with Retry-After, 500), releasing what the
        set-up had taken."""
        try:
            call = self._inbound_leg(event, transport)
        except SetupFailed as exc:
            retry = [("Retry-After", str(RETRY_AFTER_S))] if exc.status == 503 else []
            self._refuse(transport, event.call_id, exc.status, exc.reason, exc.headers + retry)
            return
        tx, leg = call.transaction, call.leg
        self._note("call_arrived", tx.transaction_id, sip_call_id=event.call_id, call_id=leg.call_id,
                   sip_media_application_id=tx.sma.sip_media_application_id, to=leg.to,
                   from_=leg.from_, rtp_port=call.media.local_port,
                   transport=transport.endpoint.transport.lower(),
                   srtp=call.audio.remote_crypto is not None)
        tx.inbound_call(leg)
        self._dispatch(tx)

    def _inbound_leg(self, event: sip_events.IncomingCall, transport) -> _SipCall:
        """The tracked call, its transaction and media for an INVITE; SetupFailed otherwise."""
        if self.draining:
            raise SetupFailed(503, "the stub is shutting down")
        req = event.request
        if self._challenger is not None:
            why = self._challenger.verify("INVITE", req.headers.get(ANSWER_HEADER))
            if why is not None:
                self._note("sip_challenged", None, sip_call_id=event.call_id, reason=why)
                raise SetupFailed(CHALLENGE_STATUS, why, [self._challenger.challenge()])
        try:
            offer = parse_sdp(req.body)
            audio = answer_offer(offer, self.config.codecs)
        except SdpError as exc:
            raise SetupFailed(488, str(exc)) from None
        mode = self.config.srtp
        if (mode == "required" and audio.remote_crypto is None) or (mode == "off" and audio.remote_crypto):
            raise SetupFailed(488, "SRTP is required" if mode == "required" else "SRTP is off on this stub")
        to, request_uri = _sip_uri(uri_of(req.headers.get("to"))), _sip_uri(req.uri)
        caller = _sip_uri(uri_of(req.headers.get("from")))
        to_user = to.user if to else ""
        targets = self.service.route(to_user, request_uri.host if request_uri else "")
        if not targets:
            raise SetupFailed(404, f"no SIP rule matches {to_user}")
        sma, rule = targets[0]
        leg = Leg(call_id=new_id(), participant_tag="LEG-A", to=to_user,
                  from_=caller.user if caller else "", direction="Inbound",
                  start_time_ms=int(time.time() * 1000), sip_headers=_sip_headers(req.headers))
        with self._set_up() as undo:
            tx = self.service.new_transaction(sma, rule, [target for target, _ in targets[1:]])
            undo.callback(self.service.drop, tx.transaction_id)
            call = _SipCall(event.call_id, leg, tx, transport, audio=audio)
            crypto = SdesCrypto.generate() if audio.remote_crypto is not None else None
            self._open_media(call, undo, crypto)
            call.sdp = build_answer(offer, audio, self.config.host, call.media.local_port,
                                    int(time.time()), 1, crypto)
            self._track(call, undo)
        return call

    def _outbound_leg(self, tx: CallTransaction, leg: Leg, number: str, arn: str | None) -> _SipCall:
        """A leg the SMA places, routed and with its media open; SetupFailed otherwise."""
        try:
            target = self._route(number, arn)
        except RouteError as exc:
            raise SetupFailed(404, str(exc)) from None
        if target is None:
            raise SetupFailed(404, f"no route for {number}: give the stub a route for it")
        codec = self._codec_for(tx)
        lowered = target.lower()
        transport = self.tls if ";transport=tls" in lowered and self.tls is not None else \
            self.tcp if ";transport=tcp" in lowered else self.udp
        call = _SipCall("", leg, tx, transport, outbound=True, target=target, audio=AudioAnswer(
            self.config.host, 0, 0 if codec == "PCMU" else 8, codec, OUTBOUND_DTMF_PT, 20, "sendrecv"))
        with self._set_up() as undo:
            self._open_media(call, undo)
        return call

    @contextlib.contextmanager
    def _set_up(self):
        """Steps of a call set-up register how to undo themselves on the `ExitStack` given;
        if a step fails, every undo runs and SetupFailed says why (503: no RTP ports)."""
        with contextlib.ExitStack() as undo:
            try:
                yield undo
            except SetupFailed:
                raise
            except OSError as exc:
                raise SetupFailed(503, f"no media resources: {exc}") from None
            except Exception as exc:
                log.exception("call set-up failed")
                self._note("internal_error", None, error=repr(exc))
                raise SetupFailed(500, f"call set-up failed: {type(exc).__name__}") from None
            undo.pop_all()  # set up: keep everything

    def _refuse(self, transport, call_id: str, status: int, reason: str,
                headers: list[tuple[str, str]] = ()) -> None:
        self._note("sip_rejected", None, sip_call_id=call_id, status=status, reason=reason)
        transport.endpoint.reject(call_id, status, self._loop.time(), headers)
        transport.flush()

    def _call_ended(self, call: _SipCall, event: sip_events.CallEnded) -> None:
        """The dialog is over: release its media (a failing release is noted, the call still
        ends) and tell the transaction."""
        self._calls.pop(call.sip_call_id, None)
        self._legs.pop(call.leg.call_id, None)
        tx = call.transaction
        for key in list(call.recordings):  # a recording still open ends with its leg
            self._stop_recording(tx, call, key)
        try:
            call.media.close()
        except Exception as exc:  # a recording that cannot be written: the leg still ends
            log.error("releasing the media of %s failed", call.sip_call_id, exc_info=exc)
            self._note("media_failed", tx.transaction_id, call_id=call.leg.call_id,
                       reason=f"closing the media failed: {exc}")
        self._note("sip_ended", tx.transaction_id, sip_call_id=event.call_id, by=event.by,
                   reason=event.reason, status=event.status)
        if call.outbound and not call.answered:
            tx.leg_failed(call.leg.call_id, event.status)
        else:
            tx.leg_ended(call.leg.call_id, call.hangup_code if event.by == "local" else 0)

    def _open_media(self, call: _SipCall, undo: contextlib.ExitStack,
                    crypto: SdesCrypto | None = None) -> MediaSession:
        """The RTP session of a call, in the codec of `call.audio`, reporting to the call;
        SRTP with our key `crypto` and the remote's key when the call agreed on it. OSError
        when no port pair is free."""
        a = call.audio
        srtp = SrtpContext(crypto, a.remote_crypto) if crypto is not None else None
        call.media = self.media.open(
            a.payload_type, a.codec, a.dtmf_payload_type,
            on_playback_done=lambda token: self._media_done(call, token),
            on_digit=lambda digit: self._digit(call, digit),
            on_recording_failed=lambda rec, exc: self._recording_stopped_by_disk(call, rec, exc),
            srtp=srtp)
        undo.callback(call.media.close)
        return call.media

    def _track(self, call: _SipCall, undo: contextlib.ExitStack) -> None:
        self._calls[call.sip_call_id] = call
        self._legs[call.leg.call_id] = call
        undo.callback(self._legs.pop, call.leg.call_id, None)
        undo.callback(self._calls.pop, call.sip_call_id, None)

    def _media_done(self, call: _SipCall, token: object) -> None:
        call.transaction.media_done(token)
        self._dispatch(call.transaction)

    def _digit(self, call: _SipCall, digit: DigitReceived) -> None:
        tx = call.transaction
        self._note("dtmf_received", tx.transaction_id, call_id=call.leg.call_id, digit=digit.digit,
                   duration_ms=digit.duration_ms, source=digit.source)
        tx.digit_received(call.leg.call_id, digit.digit)
        self._dispatch(tx)

    # ---- engine commands ----------------------------------------------------------------------
    def _dispatch(self, tx: CallTransaction) -> None:
        """Execute the engine's commands until it emits no more.

        Executing a command can feed the engine at once (a PlayAudio of a missing object fails
        while it starts), and what the engine emits then is executed in the same pass. A command
        that raises fails only itself: its action gets ACTION_FAILED (SystemException) and the
        rest of the batch still runs.
        """
        while commands := tx.take_commands():
            for command in commands:
                try:
                    self._execute(tx, command)
                except Exception as exc:  # one command's failure must not strand the others
                    self._command_failed(tx, command, exc)
        self._arm_timer(tx)
        for transport in self._transports:
            transport.flush()

    def _command_failed(self, tx: CallTransaction, c: object, exc: Exception) -> None:
        log.error("engine command %s failed", type(c).__name__, exc_info=exc)
        self._note("internal_error", tx.transaction_id, command=type(c).__name__, error=f"{type(exc).__name__}: {exc}")
        token = getattr(c, "token", None)
        if isinstance(token, int) and token > 0:
            tx.media_done(token, SYSTEM_ERROR)

    def _execute(self, tx: CallTransaction, c: object) -> None:
        if isinstance(c, cmd.Invoke):
            self._spawn(self._invoke(tx, c))
            return
        if isinstance(c, cmd.TransactionEnded):
            self.service.drop(c.transaction_id)
            self._note("transaction_ended", c.transaction_id)
            return
        if isinstance(c, cmd.PlaceCall):
            self._spawn(self._place_call(tx, c))
            return
        if isinstance(c, cmd.Bridge):
            self._bridge(tx, c)
            return
        call = self._legs.get(c.call_id)
        if call is None:
            return
        now, endpoint, session = self._loop.time(), call.transport.endpoint, call.media
        if isinstance(c, cmd.Ring):
            endpoint.ring(call.sip_call_id)
        elif isinstance(c, cmd.Answer):
            if not call.outbound and not call.answered:
                endpoint.answer(call.sip_call_id, call.sdp, now)
                call.answered = True
                session.start((call.audio.remote_host, call.audio.remote_port))
                self._note("answered", tx.transaction_id, call_id=c.call_id)
        elif isinstance(c, cmd.PlayAudio):
            self._play_audio(tx, call, c)
        elif isinstance(c, cmd.PlaySilence):
            frames = [bytes([SILENCE_BYTE[call.audio.codec]]) * FRAME_SAMPLES] * max(
                1, round(c.duration_ms * RATE / 1000 / FRAME_SAMPLES))
            session.sender.play(frames, c.token)
            self._note("media_started", tx.transaction_id, call_id=c.call_id, token=c.token,
                       media="silence", duration_ms=c.duration_ms)
        elif isinstance(c, cmd.Speak):
            self._spawn(self._speak(tx, call, c))
        elif isinstance(c, cmd.SendDigits):
            session.send_digits(c.digits, c.tone_ms, c.token)
            self._note("media_started", tx.transaction_id, call_id=c.call_id, token=c.token,
                       media="digits", digits=c.digits)
        elif isinstance(c, cmd.StopMedia):
            token = session.sender.stop()
            self._note("media_stopped", tx.transaction_id, call_id=c.call_id, token=token)
        elif isinstance(c, cmd.StartRecordAudio):
            self._start_recording(tx, call, c.token, c.bucket, c.key, "INCOMING", c.token)
        elif isinstance(c, cmd.StopRecordAudio):
            self._stop_recording(tx, call, c.token)
        elif isinstance(c, cmd.CallRecording):
            self._call_recording(tx, call, c)
        elif isinstance(c, cmd.CancelCall):
            endpoint.hangup(call.sip_call_id, now)
        elif isinstance(c, cmd.HangupLeg):
            call.hangup_code = c.sip_code
            self._note("hangup", tx.transaction_id, call_id=c.call_id, sip_code=c.sip_code)
            if call.answered or call.outbound:
                endpoint.hangup(call.sip_call_id, now)
            else:
                endpoint.reject(call.sip_call_id, c.sip_code or 480, now)

    def _play_audio(self, tx: CallTransaction, call: _SipCall, c: cmd.PlayAudio) -> None:
        try:
            frames = wav_frames(self.config.read_path(c.bucket, c.key), call.audio.codec)
        except InvalidAudioSource as exc:
            self._note("media_failed", tx.transaction_id, call_id=c.call_id, reason=str(exc))
            tx.media_done(c.token, ("InvalidAudioSource", "Audio Source parameter value is invalid."))
            return
        call.media.sender.play(frames, c.token, c.repeat)
        self._note("media_started", tx.transaction_id, call_id=c.call_id, token=c.token,
                   media="audio", bucket=c.bucket, key=c.key, repeat=c.repeat)

    async def _speak(self, tx: CallTransaction, call: _SipCall, c: cmd.Speak) -> None:
        s = c.speech
        try:
            frames = await speech_frames(s["text"], call.audio.codec, s["voice"], s["language"],
                                         s["text_type"])
        except SpeechError as exc:
            self._note("media_failed", tx.transaction_id, call_id=c.call_id, reason=str(exc))
            tx.media_done(c.token, SYSTEM_ERROR)
        else:
            call.media.sender.play(frames, c.token)
            self._note("media_started", tx.transaction_id, call_id=c.call_id, token=c.token,
                       media="speech", text=s["text"], voice=s["voice"])
        self._dispatch(tx)

    def _start_recording(self, tx, call: _SipCall, key: object, bucket: str, object_key: str,
                         track: str, token: int) -> None:
        """Open a recording of the leg into s3://bucket/object_key; the action starting it
        hears of a failure at once (ACTION_FAILED), a call recording of its success too."""
        try:
            if self.config.written_dir is None:
                raise OSError("the stub has no run folder to write recordings to")
            path = _bucket_path(self.config.written_dir, bucket, object_key, must_exist=False)
            path.parent.mkdir(parents=True, exist_ok=True)
            call.recordings[key] = call.media.start_recording(path, track)
        except (InvalidAudioSource, OSError) as exc:
            self._note("media_failed", tx.transaction_id, call_id=call.leg.call_id, reason=str(exc))
            parameter = "Destination" if key == "call" else "RecordingDestination"
            tx.media_done(token, ("InvalidActionParameter", f"{parameter} parameter value is invalid.")
                          if isinstance(exc, InvalidAudioSource) else SYSTEM_ERROR)
            return
        self._note("recording_started", tx.transaction_id, call_id=call.leg.call_id,
                   bucket=bucket, key=object_key, track=track)
        if key == "call":
            tx.media_done(token)

    def _recording_stopped_by_disk(self, call: _SipCall, recording: Recording, exc: OSError) -> None:
        """The media engine stopped a recording it could not reserve disk space for: a
        RecordAudio still running fails (SystemException)."""
        key = next((k for k, r in call.recordings.items() if r is recording), None)
        if key is None:
            return
        del call.recordings[key]
        tx = call.transaction
        self._note("media_failed", tx.transaction_id, call_id=call.leg.call_id,
                   reason=f"recording {recording.path}: {exc}")
        if isinstance(key, int):  # RecordAudio's token
            tx.media_done(key, SYSTEM_ERROR)
        self._dispatch(tx)

    def _stop_recording(self, tx, call: _SipCall, key: object) -> None:
        recording = call.recordings.pop(key, None)
        if recording is None:
            return
        try:
            path = call.media.stop_recording(recording)
        except OSError as exc:  # the WAV stays true: a header for no samples
            self._note("media_failed", tx.transaction_id, call_id=call.leg.call_id,
                       reason=f"writing {recording.path}: {exc}")
            return
        self._note("recording_stopped", tx.transaction_id, call_id=call.leg.call_id, path=str(path))

    def _call_recording(self, tx, call: _SipCall, c: cmd.CallRecording) -> None:
        if c.operation == "start":
            self._start_recording(tx, call, "call", c.bucket, c.key, c.track, c.token)
        elif c.operation == "stop":
            self._stop_recording(tx, call, "call")
        elif "call" in call.recordings:
            call.recordings["call"].pause(c.operation == "pause")
            self._note(f"recording_{c.operation}d", tx.transaction_id, call_id=c.call_id)

    def _route(self, number: str, arn: str | None) -> str | None:
        """The SIP URI for a leg the SMA places, from the routes (None: no route);
        RouteError when the number cannot be dialled through it."""
        routes = self.config.routes
        template = routes.get(arn or "") or routes.get(number) or routes.get("*")
        return expand(template, number) if template else None

    async def _place_call(self, tx: CallTransaction, c: cmd.PlaceCall) -> None:
        """Send the INVITE of a leg the SMA places; a leg that cannot be set up fails (its
        transaction goes on: CallAndBridge fails, a created call hangs up)."""
        call = self._prepared.pop(c.call_id, None)
        leg = next((l for l in tx.legs if l.call_id == c.call_id), None) or \
            Leg(c.call_id, "LEG-B", c.to, c.from_, "Outbound", int(time.time() * 1000))
        try:
            call = call or self._outbound_leg(tx, leg, c.uri, c.arn)
            with self._set_up() as undo:
                undo.callback(call.media.close)
                offer = build_offer(self.config.host, call.media.local_port, int(time.time()), 1,
                                    (call.audio.codec,), OUTBOUND_DTMF_PT)
                call.sip_call_id = call.transport.endpoint.invite(
                    call.target, offer, self._loop.time(),
                    from_uri=f"sip:{c.from_}@{self.config.host}",
                    headers=list(c.sip_headers.items()))
                self._track(call, undo)
        except SetupFailed as exc:
            self._note("place_failed", tx.transaction_id, call_id=c.call_id, reason=exc.reason)
            tx.leg_failed(c.call_id, exc.status)
            self._dispatch(tx)
            return
        self._note("call_placed", tx.transaction_id, call_id=c.call_id, sip_call_id=call.sip_call_id,
                   target=call.target, rtp_port=call.media.local_port)
        self._dispatch(tx)

    def _codec_for(self, tx: CallTransaction) -> str:
        """The codec of the transaction's first leg (so a bridge needs no transcoding), or PCMU."""
        first = next((self._legs[l.call_id] for l in tx.legs if l.call_id in self._legs), None)
        return first.audio.codec if first is not None and first.audio else "PCMU"

    def _bridge(self, tx: CallTransaction, c: cmd.Bridge) -> None:
        a, b = self._legs.get(c.call_id_a), self._legs.get(c.call_id_b)
        if a is None or b is None:
            return
        a.media.hear(b.media)
        b.media.hear(a.media)
        self._note("bridged", tx.transaction_id, call_id_a=c.call_id_a, call_id_b=c.call_id_b)

    async def _invoke(self, tx: CallTransaction, c: cmd.Invoke) -> None:
        handler = self._handlers[tx.sma.sip_media_application_id]
        self._note("invocation", tx.transaction_id, sequence=c.sequence, event=c.event,
                   ignore_response=c.ignore_response)
        try:
            result: InvocationResult = await handler.invoke(c.event)
        except Exception as exc:  # the runner itself failed (no worker could start): the
            log.error("invoking the handler failed", exc_info=exc)  # invocation failed
            self._note("internal_error", tx.transaction_id, sequence=c.sequence, error=repr(exc))
            tx.handler_result(c.sequence, None, f"handler failed: {type(exc).__name__}")
            self._dispatch(tx)
            return
        self._note("response", tx.transaction_id, sequence=c.sequence, response=result.response,
                   failed=result.failed, attempts=result.attempts, errors=result.errors,
                   duration_ms=round(result.duration_ms, 3), invalid_json=result.invalid_json,
                   requests=result.requests)
        response = result.response if result.invalid_json is None else result.invalid_json
        tx.handler_result(c.sequence, response, "handler failed" if result.failed else None)
        self._dispatch(tx)

    def _arm_timer(self, tx: CallTransaction) -> None:
        old = self._timers.pop(tx.transaction_id, None)
        if old is not None:
            old.cancel()
        deadline = tx.next_deadline()
        if deadline is not None:
            def fire():
                self._timers.pop(tx.transaction_id, None)
                tx.handle_timers(self._loop.time())
                self._dispatch(tx)
            self._timers[tx.transaction_id] = self._loop.call_at(deadline, fire)

    # ---- helpers ------------------------------------------------------------------------------
    def _spawn(self, coro) -> None:
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("stub task failed", exc_info=task.exception())
            self._note("internal_error", None, error=f"{type(task.exception()).__name__}: {task.exception()}")

    def watch(self, callback: Callable[[dict], None]) -> None:
        """Call `callback` with each journal entry (as JSON) when it is noted, on the stub's
        loop (`sip-harness serve` logs and files transactions this way)."""
        self._watchers.append(callback)

    def _note(self, kind: str, transaction_id: str | None, **data) -> None:
        entry = self.journal.note(kind, transaction_id, **data)
        for watcher in self._watchers:
            try:
                watcher(entry)
            except Exception:  # an observer's fault never reaches a call
                log.exception("journal watcher failed on %s", kind)

    def journal_since(self, count: int) -> tuple[list[dict], int]:
        """The entries noted after the first `count` (those still kept), and the new count."""
        lines, following = self.journal.page(count)
        return [json.loads(line) for line in lines], following

    def journal_json(self) -> list[dict]:
        """The journal's kept entries as dicts (safe to call from any thread)."""
        return self.journal.entries()


async def _closed(transport) -> None:
    transport.close()


async def _released(release) -> None:
    """Await one release of a resource; a failure is logged, so the next release still runs."""
    try:
        await release
    except Exception:
        log.exception("releasing a stub resource failed")


def _tcp_listener(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port); port 0 takes a free one."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def sip_uri(user: str, host: str, port: int, tls_port: int | None, transport: str = "udp") -> str:
    """The URI a caller dials to reach `user` at a stub over `transport` (udp, tcp or tls)."""
    if transport == "tls":
        if tls_port is None:
            raise ValueError("the stub has no TLS listener (give it stub.sip.tls)")
        return f"sip:{user}@{host}:{tls_port};transport=tls"
    suffix = ";transport=tcp" if transport == "tcp" else ""
    return f"sip:{user}@{host}:{port}{suffix}"


def _sip_uri(text: str) -> SipUri | None:
    """A header's or Request-URI's SIP URI, or None for another scheme (tel:, ...)."""
    try:
        return SipUri.parse(text)
    except UriError:
        return None


def _sip_headers(headers) -> dict[str, str]:
    """The received headers the service passes on: X- headers, User-to-User, Diversion."""
    return {name: value for name, value in headers.items()
            if name.lower().startswith("x-") or name.lower() in FORWARDED_HEADERS}


@functools.lru_cache(maxsize=4096)
def _resolved(root: Path, bucket: str, key: str) -> Path | None:
    """s3://bucket/key under `root`, resolved once (None when the bucket is not a name S3
    accepts, or the key leaves the bucket)."""
    if not valid_bucket_name(bucket):
        return None
    base = (root / bucket).resolve()
    path = (base / key).resolve()
    return path if base in path.parents and root.resolve() in base.parents else None


def _bucket_path(root: Path, bucket: str, key: str, must_exist: bool = True) -> Path:
    """The local file standing for s3://bucket/key; neither can leave the root folder."""
    path = _resolved(root, bucket, key)
    if path is None:
        raise InvalidAudioSource(f"s3://{bucket[:63]}/{key[:100]} is not a valid S3 object name")
    if must_exist and not path.is_file():
        raise InvalidAudioSource(f"s3://{bucket}/{key} not found under {root}")
    return path
