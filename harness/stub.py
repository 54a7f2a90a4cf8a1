"""The SMA stub: SIP, RTP, handler invocations and the REST API on one asyncio event loop.

This is the edge that wires the sans-IO cores together: SIP events become SMA engine inputs,
engine commands become SIP responses, media playback and handler invocations. It runs either
in the caller's thread (`await stub.start_async()`, used by `sip-harness serve`) or embedded
in a background thread (`stub.start()`), which is what tests and the runner use.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from .api.server import build_app
from .media.engine import MediaEngine, MediaSession
from .media.sources import FRAME_SAMPLES, RATE, InvalidAudioSource, wav_frames
from .media.g711 import SILENCE_BYTE
from .sip import events as sip_events
from .sip.endpoint import uri_of
from .sip.sdp import AudioAnswer, SdpError, answer_offer, build_sdp, parse_sdp
from .sip.transport import UdpSipTransport
from .sma import commands as cmd
from .sma.engine import CallTransaction
from .sma.handlers import FunctionConfig, HandlerRunner, InvocationResult, create_handler
from .sma.model import Leg, SipMediaApplication, SipRule, new_id
from .sma.service import SmaService

log = logging.getLogger(__name__)
FORWARDED_HEADERS = ("user-to-user", "diversion")


@dataclass
class StubConfig:
    """Everything the stub needs to serve; `bucket_dir/<BucketName>/<Key>` stands for S3."""

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


@dataclass
class _SipCall:
    """The stub's view of one SIP dialog and the SMA leg it carries."""

    sip_call_id: str
    leg: Leg
    transaction: CallTransaction
    audio: AudioAnswer
    media: MediaSession
    sdp: bytes
    answered: bool = False
    hangup_code: int = 0


@dataclass
class JournalEntry:
    time: float
    kind: str
    transaction_id: str | None = None
    data: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"time": self.time, "kind": self.kind, "transaction_id": self.transaction_id,
                **self.data}


class Stub:
    """The local SMA emulator."""

    def __init__(self, config: StubConfig):
        self.config = config
        self.journal: list[JournalEntry] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._calls: dict[str, _SipCall] = {}  # by SIP Call-ID
        self._legs: dict[str, _SipCall] = {}  # by SMA CallId
        self._handlers: dict[str, HandlerRunner] = {}
        self._tasks: set[asyncio.Task] = set()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self.sip: UdpSipTransport | None = None
        self.media: MediaEngine | None = None
        self.service: SmaService | None = None
        self._api_runner: web.AppRunner | None = None
        self.api_port = 0

    # ---- life cycle ---------------------------------------------------------------------
    async def start_async(self) -> None:
        """Bind SIP, RTP and the API on the running loop."""
        self._loop = asyncio.get_running_loop()
        loop = self._loop
        self.service = SmaService(loop.time, lambda: int(time.time() * 1000))
        for sma in self.config.applications:
            self.service.add_application(sma)
            log_path = self.config.run_dir / f"handler-{sma.name}.log" if self.config.run_dir else None
            self._handlers[sma.sip_media_application_id] = create_handler(FunctionConfig(
                sma.handler, function_name=sma.name, env=sma.handler_env,
                timeout_s=self.config.handler_timeout_s, retries=self.config.handler_retries,
                log_path=log_path, region=sma.aws_region, account=sma.aws_account_id))
        for rule in self.config.rules:
            self.service.add_rule(rule)
        self.media = MediaEngine(self.config.host, self.config.rtp_port_range)
        self.sip = await UdpSipTransport.listen(self.config.host, self.config.sip_port, self._on_sip)
        self._api_runner = web.AppRunner(build_app(self), access_log=None)
        await self._api_runner.setup()
        site = web.TCPSite(self._api_runner, self.config.host, self.config.api_port)
        await site.start()
        self.api_port = site._server.sockets[0].getsockname()[1]

    async def stop_async(self) -> None:
        """Hang up nothing, just release everything: sockets, workers, tasks."""
        for handle in self._timers.values():
            handle.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._api_runner is not None:
            await self._api_runner.cleanup()
        if self.sip is not None:
            self.sip.close()
        if self.media is not None:
            await self.media.close()
        for handler in self._handlers.values():
            await handler.close()

    def start(self) -> "Stub":
        """Run the stub embedded, on its own event loop in a background thread."""
        loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=loop.run_forever, name="sma-stub", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.start_async(), loop).result(30)
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
        return self.sip.port

    @property
    def api_url(self) -> str:
        return f"http://{self.config.host}:{self.api_port}"

    def sip_uri(self, user: str) -> str:
        return f"sip:{user}@{self.config.host}:{self.sip_port}"

    def resources(self) -> dict[str, int]:
        """Open dialogs, media sessions, transactions, tasks and handler workers (leak checks)."""
        return self.run_in_loop(lambda: {
            "dialogs": self.sip.endpoint.active_dialogs(), "media_sessions": self.media.session_count,
            "transactions": len(self.service.transactions), "tasks": len(self._tasks),
            "handler_workers": sum(h.worker_count for h in self._handlers.values())})

    # ---- the API backend ------------------------------------------------------------------
    def update_call(self, sma_id: str, transaction_id: str, arguments: dict[str, str]) -> str:
        """UpdateSipMediaApplicationCall: queue CALL_UPDATE_REQUESTED, answer at once."""
        tx = self.service.find_transaction(sma_id, transaction_id)
        self._note("update_requested", tx.transaction_id, arguments=arguments)
        tx.update_requested(arguments)
        self._dispatch(tx)
        return tx.transaction_id

    # ---- SIP events -------------------------------------------------------------------------
    def _on_sip(self, event: object) -> None:
        if isinstance(event, sip_events.IncomingCall):
            self._spawn(self._incoming(event))
        elif isinstance(event, sip_events.CallConfirmed):
            call = self._calls.get(event.call_id)
            if call:
                self._note("sip_confirmed", call.transaction.transaction_id, sip_call_id=event.call_id)
        elif isinstance(event, sip_events.CallEnded):
            self._call_ended(event)
        elif isinstance(event, sip_events.MalformedMessage):
            self._note("sip_malformed", None, source=list(event.source), reason=event.reason,
                       answered=event.answered)

    async def _incoming(self, event: sip_events.IncomingCall) -> None:
        endpoint, req = self.sip.endpoint, event.request
        try:
            audio = answer_offer(parse_sdp(req.body), self.config.codecs)
        except SdpError as exc:
            self._note("sip_rejected", None, sip_call_id=event.call_id, status=488, reason=str(exc))
            endpoint.reject(event.call_id, 488, self._loop.time())
            self.sip.flush()
            return
        to_uri = uri_of(req.headers.get("to"))
        to_user = _user(to_uri)
        targets = self.service.route(to_user, _host(req.uri))
        if not targets:
            self._note("sip_rejected", None, sip_call_id=event.call_id, status=404,
                       reason=f"no SIP rule matches {to_user}")
            endpoint.reject(event.call_id, 404, self._loop.time())
            self.sip.flush()
            return
        sma, rule = targets[0]
        session = await self.media.open(
            audio.payload_type, audio.codec, audio.dtmf_payload_type,
            on_playback_done=lambda token: self._media_done(call, token),
            on_digit=lambda digit: self._note("dtmf_received", tx.transaction_id,
                                              call_id=leg.call_id, digit=digit.digit))
        leg = Leg(call_id=new_id(), participant_tag="LEG-A", to=to_user,
                  from_=_user(uri_of(req.headers.get("from"))), direction="Inbound",
                  start_time_ms=int(time.time() * 1000), sip_headers=_sip_headers(req.headers))
        sdp = build_sdp(self.config.host, session.local_port, int(time.time()), 1,
                        audio.payload_type, audio.codec, audio.dtmf_payload_type, audio.ptime,
                        audio.direction)
        tx = self.service.new_transaction(sma, rule, [target for target, _ in targets[1:]])
        call = _SipCall(event.call_id, leg, tx, audio, session, sdp)
        self._calls[event.call_id] = call
        self._legs[leg.call_id] = call
        self._note("call_arrived", tx.transaction_id, sip_call_id=event.call_id, call_id=leg.call_id,
                   sip_media_application_id=sma.sip_media_application_id, to=leg.to, from_=leg.from_,
                   rtp_port=session.local_port)
        tx.inbound_call(leg)
        self._dispatch(tx)

    def _call_ended(self, event: sip_events.CallEnded) -> None:
        call = self._calls.pop(event.call_id, None)
        if call is None:
            return
        self._legs.pop(call.leg.call_id, None)
        call.media.close()
        code = call.hangup_code if event.by == "local" else 0
        self._note("sip_ended", call.transaction.transaction_id, sip_call_id=event.call_id,
                   by=event.by, reason=event.reason, status=event.status)
        call.transaction.leg_ended(call.leg.call_id, code)
        self._dispatch(call.transaction)

    def _media_done(self, call: _SipCall, token: object) -> None:
        call.transaction.media_done(token)
        self._dispatch(call.transaction)

    # ---- engine commands ----------------------------------------------------------------------
    def _dispatch(self, tx: CallTransaction) -> None:
        for command in tx.take_commands():
            self._execute(tx, command)
        self._arm_timer(tx)
        self.sip.flush()

    def _execute(self, tx: CallTransaction, c: object) -> None:
        now = self._loop.time()
        endpoint = self.sip.endpoint
        if isinstance(c, cmd.Invoke):
            self._spawn(self._invoke(tx, c))
            return
        if isinstance(c, cmd.TransactionEnded):
            self.service.drop(c.transaction_id)
            self._note("transaction_ended", c.transaction_id)
            return
        call = self._legs.get(c.call_id)
        if call is None:
            return
        if isinstance(c, cmd.Ring):
            endpoint.ring(call.sip_call_id)
        elif isinstance(c, cmd.Answer):
            endpoint.answer(call.sip_call_id, call.sdp, now)
            call.answered = True
            call.media.start((call.audio.remote_host, call.audio.remote_port))
            self._note("answered", tx.transaction_id, call_id=c.call_id)
        elif isinstance(c, cmd.PlayAudio):
            self._play_audio(tx, call, c)
        elif isinstance(c, cmd.PlaySilence):
            frames = [bytes([SILENCE_BYTE[call.audio.codec]]) * FRAME_SAMPLES] * max(
                1, round(c.duration_ms * RATE / 1000 / FRAME_SAMPLES))
            call.media.sender.play(frames, c.token)
            self._note("media_started", tx.transaction_id, call_id=c.call_id, token=c.token,
                       media="silence", duration_ms=c.duration_ms)
        elif isinstance(c, cmd.StopMedia):
            token = call.media.sender.stop()
            self._note("media_stopped", tx.transaction_id, call_id=c.call_id, token=token)
        elif isinstance(c, cmd.HangupLeg):
            call.hangup_code = c.sip_code
            self._note("hangup", tx.transaction_id, call_id=c.call_id, sip_code=c.sip_code)
            if call.answered:
                endpoint.hangup(call.sip_call_id, now)
            else:
                endpoint.reject(call.sip_call_id, c.sip_code or 480, now)

    def _play_audio(self, tx: CallTransaction, call: _SipCall, c: cmd.PlayAudio) -> None:
        try:
            path = _bucket_path(self.config.bucket_dir, c.bucket, c.key)
            frames = wav_frames(path, call.audio.codec)
        except InvalidAudioSource as exc:
            self._note("media_failed", tx.transaction_id, call_id=c.call_id, reason=str(exc))
            tx.media_done(c.token, ("InvalidAudioSource", "Audio Source parameter value is invalid."))
            return
        call.media.sender.play(frames, c.token, c.repeat)
        self._note("media_started", tx.transaction_id, call_id=c.call_id, token=c.token,
                   media="audio", bucket=c.bucket, key=c.key, repeat=c.repeat)

    async def _invoke(self, tx: CallTransaction, c: cmd.Invoke) -> None:
        handler = self._handlers[tx.sma.sip_media_application_id]
        self._note("invocation", tx.transaction_id, sequence=c.sequence, event=c.event,
                   ignore_response=c.ignore_response)
        result: InvocationResult = await handler.invoke(c.event)
        self._note("response", tx.transaction_id, sequence=c.sequence, response=result.response,
                   failed=result.failed, attempts=result.attempts, errors=result.errors,
                   duration_ms=round(result.duration_ms, 3), invalid_json=result.invalid_json)
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
            self._note("internal_error", None, error=repr(task.exception()))

    def _note(self, kind: str, transaction_id: str | None, **data) -> None:
        self.journal.append(JournalEntry(time.time(), kind, transaction_id, data))

    def journal_json(self) -> list[dict]:
        """The journal as JSON-ready dicts (safe to call from any thread after the run)."""
        return [entry.to_json() for entry in list(self.journal)]


def _user(uri: str) -> str:
    """The user part of a SIP URI (the phone number), without parameters."""
    rest = uri.split(":", 1)[1] if ":" in uri else uri
    return rest.split("@", 1)[0].split(";", 1)[0] if "@" in rest else ""


def _host(uri: str) -> str:
    rest = uri.split(":", 1)[1] if ":" in uri else uri
    return rest.split("@", 1)[-1].split(";", 1)[0].split(":", 1)[0]


def _sip_headers(headers) -> dict[str, str]:
    """The received headers the service passes on: X- headers, User-to-User, Diversion."""
    return {name: value for name, value in headers.items()
            if name.lower().startswith("x-") or name.lower() in FORWARDED_HEADERS}


def _bucket_path(root: Path, bucket: str, key: str) -> Path:
    """The local file standing for s3://bucket/key; keys cannot leave the bucket folder."""
    base = (root / bucket).resolve()
    path = (base / key).resolve()
    if base not in path.parents:
        raise InvalidAudioSource(f"key {key!r} escapes bucket {bucket!r}")
    if not path.is_file():
        raise InvalidAudioSource(f"s3://{bucket}/{key} not found under {root}")
    return path
