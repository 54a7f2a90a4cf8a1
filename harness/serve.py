"""`sip-harness serve`: the stub as a long-running shared service.

It serves one profile's SMA, rules and handler (or none: then only the sessions of remote
runs answer calls), logs each call, API request and invocation on stdout (`serve_log.py`),
files each transaction into a folder of its own when it ends (`serve_artifacts.py`), and lets
remote runs open sessions of their own (`sessions.py`). Start-up problems (a port in use, a
folder that cannot be written) are one clear line (`StartupError`), never a traceback.
"""
from __future__ import annotations

import asyncio
import dataclasses
import errno
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO



CONTROL_TOKEN_ENV = "SIP_HARNESS_CONTROL_TOKEN"
CREDENTIALS_ENV = "SIP_HARNESS_CREDENTIALS"
DEFAULT_ACCOUNT = "123456789012"


class StartupError(Exception):
    """Why the service cannot start, in one line."""


@dataclass(frozen=True)
class ServeOptions:
    profile: Path | None
    host: str = "127.0.0.1"
    sip_port: int = 5060
    api_port: int = 8080
    rtp_ports: tuple[int, int] = (20000, 20400)
    out: Path = Path("artifacts/serve")
    log_format: str = "text"
    transaction_artifacts: bool = True
    tls_port: int = 5061  # when the profile has stub.sip.tls
    #: the API then checks SigV4 signatures: AWS shared-credentials files or KEY:SECRET[:ACCOUNT]
    credentials: tuple[str, ...] = ()
    allowed_hosts: frozenset[str] = frozenset()  # Host names beside IP literals and localhost
    control: bool = False  # serve the /_harness/ routes, behind a token
    control_token_file: Path | None = None  # default OUT/control-token
    profiles_dirs: tuple[Path, ...] = ()  # where sessions and configure load profiles from
    drain_seconds: float = 10.0
    worker_index: int | None = None  # this stub is worker K of a cluster (in its TransactionIds)
    workers: int = 0  # N > 0: a cluster of N local workers behind Kamailio (cluster/)
    remote_workers: tuple[str, ...] = ()  # a cluster's workers elsewhere, HOST:SIP_PORT:API_PORT


def parse_port_range(text: str) -> tuple[int, int]:
    """'LOW-HIGH' as two ports, LOW < HIGH."""
    low, sep, high = text.partition("-")
    try:
        pair = (int(low), int(high)) if sep else None
    except ValueError:
        pair = None
    if pair is None or not 0 < pair[0] < pair[1] <= 65535:
        raise StartupError(f"--rtp-ports {text!r}: give LOW-HIGH, e.g. 20000-20400")
    return pair


def check_folder(out: Path) -> None:
    """The artifact folder exists (made if not) and can be written."""
    probe = out / ".sip-harness-write-test"
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise StartupError(f"cannot write to {out}: {exc.strerror or exc}") from None


def check_ports(host: str, sip_port: int, api_port: int) -> None:
    """SIP (UDP and TCP) and the API can listen on their ports (0: any free one)."""
    for what, kind, port in (("SIP over UDP", socket.SOCK_DGRAM, sip_port),
                             ("SIP over TCP", socket.SOCK_STREAM, sip_port),
                             ("the API", socket.SOCK_STREAM, api_port)):
        if port == 0:
            continue
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, kind) as sock:
            if kind == socket.SOCK_STREAM:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio's servers
            try:
                sock.bind((host, port))
            except OSError as exc:
                hint = " (another `sip-harness serve` or a SIP server?)" if exc.errno == errno.EADDRINUSE else ""
                raise StartupError(f"cannot listen on {host}:{port} for {what}: "
                                   f"{exc.strerror or exc}{hint}") from None


def control_token(out: Path, token_file: Path | None) -> tuple[str, Path | None]:
    """The control token: from the environment, else a new one written (mode 0600) to
    `token_file` (default OUT/control-token), whose path is returned."""
    import secrets
    if os.environ.get(CONTROL_TOKEN_ENV):
        return os.environ[CONTROL_TOKEN_ENV], None
    path = token_file or out / "control-token"
    token = secrets.token_urlsafe(32)
    try:
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
    except OSError as exc:
        raise StartupError(f"cannot write the control token to {path}: {exc.strerror or exc}") from None
    return token, path


def served_config(options: ServeOptions):
    """The StubConfig of the served profile (or of no SMA at all), the profile, and where the
    control token was written (None: from the environment, or no control routes)."""
    from .api.auth import CredentialsError, parse_credentials
    from .control import ControlSettings
    from .profiles.schema import load_profile
    from .run.setup import stub_config
    from .stub import StubConfig
    out = options.out.resolve()
    profile = load_profile(options.profile) if options.profile else None
    base = stub_config(profile, out) if profile else StubConfig([], [], out, run_dir=out)
    if base.tls is not None:
        base.tls.port = options.tls_port
    try:
        credentials = parse_credentials(options.credentials, profile.stub.aws_account_id
                                        if profile else DEFAULT_ACCOUNT)
    except CredentialsError as exc:
        raise StartupError(str(exc)) from None
    api = dataclasses.replace(base.api, allowed_hosts=options.allowed_hosts,
                              credentials=credentials or base.api.credentials)
    control, token_file = None, None
    if options.control:
        token, token_file = control_token(out, options.control_token_file)
        folders = options.profiles_dirs or ((options.profile.parent,) if options.profile else ())
        control = ControlSettings(token, tuple(folders))
    config = dataclasses.replace(base, host=options.host, sip_port=options.sip_port,
                                 api_port=options.api_port, rtp_port_range=options.rtp_ports,
                                 api=api, control=control, journal_path=out / "journal.jsonl",
                                 worker_index=options.worker_index)
    return config, profile, token_file


def session_config(path: Path, run_dir: Path):
    """A remote run's session: its profile's stub section, its files in `run_dir`."""
    from .profiles.schema import load_profile
    from .run.setup import stub_config
    return stub_config(load_profile(path), run_dir)


async def serve(options: ServeOptions, stream: TextIO = sys.stdout) -> None:
    """Serve until SIGINT or SIGTERM."""
    from .serve_artifacts import ArtifactWorker, ServedPorts, TransactionFiler
    from .serve_log import ServeLog
    from .sessions import SessionManager
    from .stub import Stub
    stop = asyncio.Event()  # a signal during the start-up ends the service once it is up
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    out = options.out.resolve()
    check_folder(out)
    config, profile, token_file = served_config(options)  # bad options fail whatever the ports
    check_ports(options.host, options.sip_port, options.api_port)
    stub = Stub(config, configurator=lambda path: session_config(Path(path), out))
    log = ServeLog(stream, options.log_format)
    stub.watch(log)
    stub.sessions = SessionManager(
        stub, session_config, out,
        watch=lambda session, sid: session.watch(ServeLog(stream, options.log_format, session=sid)))
    try:
        await stub.start_async()
    except OSError as exc:
        await stub.stop_async()
        raise StartupError(f"cannot start on {options.host}: {exc.strerror or exc}") from None
    worker = filer = None
    if options.transaction_artifacts:
        worker = await loop.run_in_executor(None, ArtifactWorker, ServedPorts(
            config.host, stub.sip_port, stub.api_port, config.rtp_port_range), out, config.bucket_dir)
        filer = TransactionFiler(loop, worker.submit)
        stub.watch(filer)
    sma = ", ".join(f"{a.sip_media_application_id} ({a.name})" for a in config.applications) or \
        "none (calls get 404 until a remote run opens a session; give --profile to serve one)"
    capture = "off" if worker is None else ("on" if worker.capture_error is None
                                           else f"off: {worker.capture_error}")
    log.line(time.time(), "serve", "started", sip=f"udp+tcp {config.host}:{stub.sip_port}",
             tls=stub.tls_port, api=stub.api_url, sigv4=bool(config.api.credentials) or None, rtp=f"{config.rtp_port_range[0]}-{config.rtp_port_range[1]}", sma=sma,
             profile=str(profile.path) if profile else None, artifacts=str(out),
             transactions=str(out / "transactions") if worker else "off", capture=capture,
             journal=str(config.journal_path),
             control=None if config.control is None else
             f"on, token {f'in {token_file}' if token_file else f'from ${CONTROL_TOKEN_ENV}'}, "
             f"profiles from {', '.join(map(str, config.control.profile_dirs)) or 'nowhere'}")
    reaper = loop.create_task(stub.sessions.reap_forever())
    try:
        await stop.wait()
        stop.clear()  # a second signal ends the drain early
        started = loop.time()
        drain = asyncio.ensure_future(asyncio.gather(
            stub.drain(options.drain_seconds),
            *(s.drain(options.drain_seconds) for s in stub.sessions.sessions.values())))
        await asyncio.wait([drain, asyncio.ensure_future(stop.wait())],
                           return_when=asyncio.FIRST_COMPLETED)
        calls = sum(drain.result()) if drain.done() else "?"
        drain.cancel()
        log.line(time.time(), "serve", f"drained {calls} calls",
                 seconds=round(loop.time() - started, 1))
    finally:
        reaper.cancel()
        await stub.sessions.close_all()
        await stub.stop_async()
        if filer is not None:
            filer.flush_all()
        if worker is not None:
            await loop.run_in_executor(None, worker.close)
        log.line(time.time(), "serve", "stopped", artifacts=str(out))
