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

from .serve_log import ServeLog


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
    #: access key id -> (secret, account id): the API then checks SigV4 signatures
    credentials: dict[str, tuple[str, str]] = dataclasses.field(default_factory=dict)


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


def served_config(options: ServeOptions):
    """The StubConfig of the served profile (or of no SMA at all), and the profile."""
    from .profiles.schema import load_profile
    from .runner import stub_config
    from .stub import StubConfig
    from .api.server import ApiSettings
    out = options.out.resolve()
    profile = load_profile(options.profile) if options.profile else None
    base = stub_config(profile, out) if profile else StubConfig([], [], out, run_dir=out)
    if base.tls is not None:
        base.tls.port = options.tls_port
    api = ApiSettings(credentials=options.credentials) if options.credentials else base.api
    return dataclasses.replace(base, host=options.host, sip_port=options.sip_port,
                               api_port=options.api_port, rtp_port_range=options.rtp_ports,
                               api=api), profile


def session_config(path: Path, run_dir: Path):
    """A remote run's session: its profile's stub section, its files in `run_dir`."""
    from .profiles.schema import load_profile
    from .runner import stub_config
    return stub_config(load_profile(path), run_dir)


async def serve(options: ServeOptions, stream: TextIO = sys.stdout) -> None:
    """Serve until SIGINT or SIGTERM."""
    from .serve_artifacts import ArtifactWorker, ServedPorts, TransactionFiler
    from .sessions import SessionManager
    from .stub import Stub
    stop = asyncio.Event()  # a signal during the start-up ends the service once it is up
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    out = options.out.resolve()
    check_folder(out)
    check_ports(options.host, options.sip_port, options.api_port)
    config, profile = served_config(options)
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
    log.line({"time": time.time()}, "serve", "started", sip=f"udp+tcp {config.host}:{stub.sip_port}",
             tls=stub.tls_port, api=stub.api_url, sigv4=bool(config.api.credentials) or None, rtp=f"{config.rtp_port_range[0]}-{config.rtp_port_range[1]}", sma=sma,
             profile=str(profile.path) if profile else None, artifacts=str(out),
             transactions=str(out / "transactions") if worker else "off", capture=capture)
    reaper = loop.create_task(stub.sessions.reap_forever())
    try:
        await stop.wait()
    finally:
        reaper.cancel()
        await stub.sessions.close_all()
        await stub.stop_async()
        if filer is not None:
            filer.flush_all()
        if worker is not None:
            await loop.run_in_executor(None, worker.close)
        log.line({"time": time.time()}, "serve", "stopped", artifacts=str(out))


def run(options: ServeOptions) -> None:
    """Serve in a new event loop (the `serve` command)."""
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    asyncio.run(serve(options))
