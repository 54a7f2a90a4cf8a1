"""`sip-harness serve --workers N`: N stub processes behind Kamailio and one API front.

The workers are ordinary `sip-harness serve` processes, each with its index
(`--worker-index`), a slice of the RTP range and a folder `OUT/worker-K`; by default worker K
listens on 127.0.0.(K+2) with the cluster's own port numbers, so a test or a developer needs
no more ports than a single stub. Kamailio takes SIP on the cluster's address and the front
takes the API there (see `kamailio.py`, `front.py`). Workers on other machines are named with
`--worker HOST:SIP_PORT:API_PORT` instead: the same layout, spanning machines. SIGINT or
SIGTERM stops the front and Kamailio, then each local worker drains its own calls.
"""
from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import sys
import time
from pathlib import Path
from typing import TextIO

import aiohttp
from aiohttp import web

from .front import ApiWorker, ClusterFront
from .kamailio import Kamailio, KamailioError, SipWorker, url_host

READY_TIMEOUT_S = 90.0
MAX_WORKERS = 250  # the last byte of a TransactionId names the owner (sma.model.new_id)


@dataclasses.dataclass(frozen=True)
class Worker:
    index: int
    host: str
    sip_port: int
    api_port: int

    @property
    def api_url(self) -> str:
        return f"http://{url_host(self.host)}:{self.api_port}"


def parse_worker(text: str, index: int) -> Worker:
    """`HOST:SIP_PORT:API_PORT` (an IPv6 host in brackets)."""
    host, _, ports = text.rpartition("]:") if text.startswith("[") else text.partition(":")
    sip, _, api = ports.partition(":")
    if not host or not sip.isdigit() or not api.isdigit():
        raise ValueError(f"--worker {text!r}: give HOST:SIP_PORT:API_PORT")
    return Worker(index, host.lstrip("["), int(sip), int(api))


def local_workers(count: int, options) -> list[Worker]:
    """Worker K on 127.0.0.(K+2) with the cluster's SIP and API port numbers."""
    if not 1 <= count <= MAX_WORKERS:
        raise ValueError(f"--workers: 1 to {MAX_WORKERS}")
    if not options.host.startswith("127."):
        raise ValueError("--workers starts its workers on 127.0.0.x: use --worker HOST:SIP:API "
                         "for workers reachable from other machines")
    return [Worker(k, f"127.0.0.{k + 2}", options.sip_port, options.api_port) for k in range(count)]


def rtp_slices(low: int, high: int, count: int) -> list[tuple[int, int]]:
    """`count` disjoint even-aligned slices of [low, high)."""
    size = (high - low) // count // 2 * 2
    if size < 4:
        raise ValueError(f"--rtp-ports {low}-{high} is too small for {count} workers")
    return [(low + k * size, low + (k + 1) * size) for k in range(count)]


def worker_command(options, worker: Worker, rtp: tuple[int, int], out: Path) -> list[str]:
    """The `sip-harness serve` command line of a local worker."""
    argv = [sys.executable, "-m", "harness.cli", "serve", "--host", worker.host,
            "--sip-port", str(worker.sip_port), "--api-port", str(worker.api_port),
            "--rtp-ports", f"{rtp[0]}-{rtp[1]}", "--out", str(out),
            "--worker-index", str(worker.index), "--log-format", options.log_format,
            "--drain-seconds", str(options.drain_seconds), "--tls-port", "0"]
    if options.profile is not None:
        argv += ["--profile", str(options.profile)]
    if not options.transaction_artifacts:
        argv.append("--no-transaction-artifacts")
    for value in options.credentials:
        argv += ["--credentials", value]
    if options.control:
        argv.append("--control")  # one token for all: SIP_HARNESS_CONTROL_TOKEN in the environment
    for folder in options.profiles_dirs:
        argv += ["--profiles-dir", str(folder)]
    return argv


async def _wait_ready(workers: list[Worker], procs: dict[int, asyncio.subprocess.Process]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        for worker in workers:
            while True:
                proc = procs.get(worker.index)
                if proc is not None and proc.returncode is not None:
                    raise RuntimeError(f"stub worker {worker.index} exited with code {proc.returncode}")
                try:
                    async with session.get(worker.api_url + "/ready") as resp:
                        if resp.status == 200:
                            break
                except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"stub worker {worker.index} ({worker.api_url}) not ready "
                                       f"in {READY_TIMEOUT_S:.0f} s")
                await asyncio.sleep(0.2)


async def serve_cluster(options, stream: TextIO = sys.stdout) -> None:
    """Run the cluster until SIGINT or SIGTERM (see the module's docstring)."""
    from ..serve import StartupError, check_folder, check_ports, control_token
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    out = options.out.resolve()
    check_folder(out)
    try:
        workers = [parse_worker(w, k) for k, w in enumerate(options.remote_workers)] \
            if options.remote_workers else local_workers(options.workers, options)
        slices = rtp_slices(*options.rtp_ports, len(workers))
    except ValueError as exc:
        raise StartupError(str(exc)) from None
    check_ports(options.host, options.sip_port, options.api_port)
    env = dict(os.environ)
    token_file = None
    if options.control and not options.remote_workers:
        token, token_file = control_token(out, options.control_token_file)
        env["SIP_HARNESS_CONTROL_TOKEN"] = token
    procs: dict[int, asyncio.subprocess.Process] = {}
    kamailio = runner = None
    try:
        if not options.remote_workers:
            for worker, rtp in zip(workers, slices):
                folder = out / f"worker-{worker.index}"
                folder.mkdir(parents=True, exist_ok=True)
                log = open(folder / "serve.log", "ab")
                procs[worker.index] = await asyncio.create_subprocess_exec(
                    *worker_command(options, worker, rtp, folder), stdin=asyncio.subprocess.DEVNULL,
                    stdout=log, stderr=log, env=env, start_new_session=True)
                log.close()
        await _wait_ready(workers, procs)
        try:
            kamailio = await loop.run_in_executor(None, Kamailio(
                out / "kamailio", options.host, options.sip_port,
                [SipWorker(w.host, w.sip_port) for w in workers]).start)
        except KamailioError as exc:
            raise StartupError(str(exc)) from None
        runner = web.AppRunner(ClusterFront([ApiWorker(w.index, w.api_url) for w in workers]).app(),
                               access_log=None)
        await runner.setup()
        await web.TCPSite(runner, options.host, options.api_port).start()
        _line(stream, "started", sip=f"udp+tcp {options.host}:{options.sip_port} (kamailio)",
              api=f"http://{options.host}:{options.api_port}",
              workers=" ".join(f"{w.index}={w.host}:{w.sip_port}/{w.api_port}" for w in workers),
              control=f"token in {token_file}" if token_file else None, artifacts=str(out))
        await stop.wait()
    finally:
        if runner is not None:
            await runner.cleanup()
        if kamailio is not None:
            await loop.run_in_executor(None, kamailio.stop)
        for proc in procs.values():
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)  # each worker drains its own calls
        for index, proc in procs.items():
            try:
                await asyncio.wait_for(proc.wait(), options.drain_seconds + 20)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
        _line(stream, "stopped", artifacts=str(out))


def _line(stream: TextIO, what: str, **fields) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    text = " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
    stream.write(f"{stamp} cluster {what} {text}\n")
    stream.flush()
