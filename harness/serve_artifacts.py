"""`sip-harness serve` files each transaction when it ends: its own folder under
`OUT/transactions/` with the slice of the capture that belongs to it, its journal entries,
its ladder and its report (report.json, report.html, timeline.png).

The work happens in a worker process of its own (started with `spawn`, at a lower priority),
so capturing, slicing and drawing never take time from the stub's event loop: the stub only
gathers each transaction's journal entries (`TransactionFiler`, a journal watcher) and hands
them over a moment after the transaction ends. The worker captures the stub's SIP, API and
RTP ports into a ring in memory (the newest `RING_BYTES`, at most `RING_AGE_S`), and cuts a
transaction's packets out of it: its SIP dialogs (by Call-ID; a TCP connection that carried
one whole), its RTP and RTCP ports, and the API connections that named its TransactionId.
Without CAP_NET_RAW there is no capture; the folders then hold the journal and the report.
"""
from __future__ import annotations

import bisect
import json
import logging
import multiprocessing
import os
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from .journal_entries import TransactionEnded
from .journal_view import JournalView

log = logging.getLogger(__name__)
GRACE_S = 0.5  # how long after its end a transaction's last packets and entries may come
RING_BYTES = 128 * 1024 * 1024
RING_AGE_S = 900.0
MAX_BACKLOG = 50  # transactions waiting beyond this are filed without a report (load)
WORKER_NICENESS = 10  # below the stub while calls run: filing never takes time from them


@dataclass(frozen=True)
class ServedPorts:
    """What the worker captures: the stub's address and ports."""

    host: str
    sip_port: int
    api_port: int
    rtp_port_range: tuple[int, int] | None

    def bpf(self) -> str:
        ports = f"port {self.sip_port} or tcp port {self.api_port}"
        if self.rtp_port_range:
            ports += f" or udp portrange {self.rtp_port_range[0]}-{self.rtp_port_range[1]}"
        return f"host {self.host} and ({ports})"

    @property
    def iface(self) -> str:
        return "lo" if self.host.startswith("127.") or self.host == "::1" else "any"


class PacketRing:
    """A capture sink that keeps the newest frames in memory (bytes and age bounded)."""

    def __init__(self, max_bytes: int = RING_BYTES, max_age_s: float = RING_AGE_S):
        self.max_bytes, self.max_age_ns = max_bytes, int(max_age_s * 1e9)
        self.linktype = 1
        self._frames: deque[tuple[int, bytes]] = deque()
        self._bytes = 0
        self._lock = threading.Lock()

    def __enter__(self) -> "PacketRing":
        return self

    def __exit__(self, *exc) -> None:
        pass

    def flush(self) -> None:
        pass

    def write_packet(self, frame: bytes, sec: int, usec: int) -> None:
        ts_ns = sec * 1_000_000_000 + usec
        with self._lock:
            self._frames.append((ts_ns, frame))
            self._bytes += len(frame)
            while self._frames and (self._bytes > self.max_bytes
                                    or ts_ns - self._frames[0][0] > self.max_age_ns):
                self._bytes -= len(self._frames.popleft()[1])

    def window(self, start_ns: int, end_ns: int) -> list[tuple[int, bytes]]:
        """The frames captured from `start_ns` to `end_ns`, in order."""
        with self._lock:
            first = bisect.bisect_left(self._frames, start_ns, key=lambda f: f[0])
            out = []
            for i in range(first, len(self._frames)):
                if self._frames[i][0] > end_ns:
                    break
                out.append(self._frames[i])
            return out


def slice_transaction(frames: list[tuple[int, bytes]], linktype: int, entries: list[dict],
                      ports: ServedPorts) -> list[tuple[int, bytes]]:
    """The frames that belong to the transaction whose journal entries are `entries`."""
    from .wire.packets import TCP, UDP, decode_frame
    view = JournalView(entries)
    legs = view.legs()
    call_ids = [leg.sip_call_id.encode() for leg in legs if leg.sip_call_id]
    rtp = {p for leg in legs if leg.rtp_port for p in (leg.rtp_port, leg.rtp_port + 1)}
    tx = next(iter(view.transactions()), "").encode()
    decoded = []
    connections: set[tuple] = set()  # TCP connections that carried the call's SIP or its API requests
    for ts_ns, frame in frames:
        d = decode_frame(frame, linktype)
        if d is None:
            continue
        payload = frame[d.payload_start:d.payload_end]
        ends = {d.src[1], d.dst[1]}
        decoded.append((ts_ns, frame, d, ends))
        if d.protocol == TCP and ((ports.sip_port in ends and any(c in payload for c in call_ids))
                                  or (ports.api_port in ends and tx and tx in payload)):
            connections.add(frozenset((d.src, d.dst)))
    out = []
    for ts_ns, frame, d, ends in decoded:
        if d.protocol == UDP and ends & rtp:
            out.append((ts_ns, frame))
        elif d.protocol == UDP and ports.sip_port in ends:
            payload = frame[d.payload_start:d.payload_end]
            if any(c in payload for c in call_ids):
                out.append((ts_ns, frame))
        elif d.protocol == TCP and frozenset((d.src, d.dst)) in connections:
            out.append((ts_ns, frame))
    return out


def file_transaction(folder: Path, entries: list[dict], frames: list[tuple[int, bytes]] | None,
                     linktype: int, bucket_dir: Path | None, report: bool = True) -> Path:
    """Write a transaction's folder: journal.json, and capture.pcap, ladder.txt and the report
    when there is a capture (the report alone without one). The folder appears whole: it is
    written under a hidden name beside it and renamed into place, so whoever watches
    `transactions/` never reads a half-written file (a failure still leaves what was written)."""
    work = folder.with_name(f".{folder.name}.partial")
    work.mkdir(parents=True, exist_ok=True)
    try:
        _write_transaction(work, folder, entries, frames, linktype, bucket_dir, report)
    finally:
        os.rename(work, folder)
    return folder


def _write_transaction(work: Path, folder: Path, entries: list[dict],
                       frames: list[tuple[int, bytes]] | None, linktype: int,
                       bucket_dir: Path | None, report: bool) -> None:
    """The files of `file_transaction`, written into `work`; the report names `folder`."""
    from .report import write_profile_reports
    from .results import ProfileResult
    from .run.verify import check_nothing_after_last_hangup
    from .wire.audio import load_prompts
    from .wire.analysis import analyze_pcap
    from .wire.pcap import write_pcap
    (work / "journal.json").write_text(json.dumps(entries, indent=2, default=str))
    wire = None
    if frames is not None:
        write_pcap(str(work / "capture.pcap"), frames, linktype)
        wire = analyze_pcap(str(work / "capture.pcap"))
        (work / "ladder.txt").write_text(wire.ladder_text())
    if not report:
        return
    view = JournalView(entries)
    tx = next(iter(view.transactions()), "?")
    sma = next((e.sip_media_application_id for e in view.arrivals()), "")
    result = ProfileResult(f"transaction {tx}", sma, str(folder))
    result.checks = [check_nothing_after_last_hangup(view)]
    result.problems = [p.to_json() for p in view.problems()]
    result.verdict = "pass" if all(c.passed for c in result.checks) and not result.problems else "fail"
    times = [e["time"] for e in entries]
    result.duration_s = round(max(times) - min(times), 3) if times else 0.0
    prompts = load_prompts(bucket_dir) if bucket_dir is not None and bucket_dir.is_dir() else None
    write_profile_reports(result, wire, entries, work, [], prompts)


def _worker(messages, ports: ServedPorts, out_dir: str, bucket_dir: str | None, started) -> None:
    """The worker process: capture into a ring, file each transaction it is handed."""
    from .wire.capture import Capture, CaptureError
    try:
        os.nice(WORKER_NICENESS)
    except OSError:
        pass
    ring, capture = PacketRing(), None
    try:
        capture = Capture(None, iface=ports.iface, bpf=ports.bpf(), sink=ring)
        capture.start()
        started.put(None)
    except (CaptureError, OSError) as exc:
        capture = None
        started.put(str(exc))
    bucket = Path(bucket_dir) if bucket_dir else None
    while True:
        message = messages.get()
        if message is None:
            break
        tx, entries = message
        backlog = messages.qsize() if hasattr(messages, "qsize") else 0
        try:
            frames = None
            if capture is not None:
                times = [e["time"] for e in entries]
                frames = slice_transaction(ring.window(int((min(times) - 1.0) * 1e9),
                                                       int((max(times) + GRACE_S) * 1e9)),
                                           ring.linktype, entries, ports)
            stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(min(e["time"] for e in entries)))
            file_transaction(Path(out_dir) / "transactions" / f"{stamp}-{tx}", entries, frames,
                             ring.linktype, bucket, report=backlog <= MAX_BACKLOG)
        except Exception:  # one transaction's folder never stops the others
            log.exception("filing transaction %s failed", tx)
    if capture is not None:
        capture.stop()


class ArtifactWorker:
    """The worker process, seen from the stub's process."""

    def __init__(self, ports: ServedPorts, out_dir: Path, bucket_dir: Path | None):
        ctx = multiprocessing.get_context("spawn")
        self._messages = ctx.Queue()
        started = ctx.Queue()
        self._process = ctx.Process(target=_worker, name="sip-harness-artifacts", daemon=True,
                                    args=(self._messages, ports, str(out_dir),
                                          str(bucket_dir) if bucket_dir else None, started))
        self._process.start()
        try:
            #: why there is no capture (None: capturing)
            self.capture_error: str | None = started.get(timeout=60)
        except queue.Empty:
            self.capture_error = "the artifact worker did not start within 60 s"

    def submit(self, transaction_id: str, entries: list[dict]) -> None:
        self._messages.put((transaction_id, entries))

    def close(self, timeout: float = 30.0) -> None:
        """File what is still waiting, then stop the worker. The calls are over, so the worker
        gets the stub's own priority back for it: at its lower one, a busy machine (a test
        suite beside it, a container's neighbours) stretched filing three calls from 0.6 s to
        12 s, past `docker stop`'s 10 s. Raising it back needs CAP_SYS_NICE; without, the
        worker goes on as it was."""
        try:
            os.setpriority(os.PRIO_PROCESS, self._process.pid, os.getpriority(os.PRIO_PROCESS, 0))
        except OSError:
            pass
        self._messages.put(None)
        self._process.join(timeout)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()


class TransactionFiler:
    """A journal watcher that gathers each transaction's entries and submits them
    `GRACE_S` after its `transaction_ended` (entries noted later are in the main journal)."""

    def __init__(self, loop, submit):
        self._loop, self._submit = loop, submit
        self._open: dict[str, list[dict]] = {}

    def __call__(self, entry: dict) -> None:
        tx = entry.get("transaction_id")
        if not tx:
            return
        self._open.setdefault(tx, []).append(entry)
        if entry["kind"] == TransactionEnded.kind:
            self._loop.call_later(GRACE_S, self._flush, tx)

    def _flush(self, tx: str) -> None:
        entries = self._open.pop(tx, None)
        if entries:
            self._submit(tx, entries)

    def flush_all(self) -> None:
        """Submit every transaction still open (the service is stopping)."""
        for tx in list(self._open):
            self._flush(tx)
