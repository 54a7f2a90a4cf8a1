"""Live packet capture to a pcap file: a raw AF_PACKET socket, a BPF filter, one thread.

No dissection happens while capturing (a dissecting sniffer drops packets above a few
thousand per second); frames are written as they come with scapy's `RawPcapWriter`, with
the kernel's nanosecond receive timestamps. On a loopback interface the kernel hands every
packet to packet sockets twice (the outgoing and the incoming copy): the outgoing copy is
dropped, so each packet is written once.
"""
from __future__ import annotations

import os
import select
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from scapy.arch.common import compile_filter, free_filter
from scapy.data import ARPHRD_TO_DLT
from scapy.libs.structures import sock_fprog
from scapy.utils import RawPcapWriter

from harness.wire.packets import LINKTYPE_RAW

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_STATISTICS = 6
SO_ATTACH_FILTER = 26
SO_TIMESTAMPNS = 35
ARPHRD_LOOPBACK = 772
_DLT_RAW = 12
_TIMESPEC = struct.Struct("@qq")
_SNAPLEN = 262144
_SETTLE_S = 0.05
_MAX_SETTLE_S = 0.25
_BATCH = 256


class CaptureError(RuntimeError):
    """The capture could not be started (permissions, interface, filter) or failed."""


@dataclass(frozen=True, slots=True)
class CaptureStats:
    """What a finished capture wrote and what the kernel dropped."""

    path: str
    packets: int
    kernel_drops: int
    #: outgoing copies skipped on a loopback interface (each packet is written once)
    loopback_copies_skipped: int


class Capture:
    """Capture packets matching a BPF filter on one interface into a pcap file.

    `start()` returns once the socket is bound: every matching packet sent after it returns
    is captured. `stop()` waits until the interface has been quiet for a moment, flushes the
    file and returns the counts. Use as a context manager to stop on errors too.
    """

    def __init__(self, path: str | os.PathLike | None, iface: str = "lo", bpf: str | None = None,
                 buffer_bytes: int = 32 * 1024 * 1024, sink=None):
        self.path = None if path is None else str(path)
        #: where frames go instead of a file: an object with `linktype`, `write_packet(frame,
        #: sec=, usec=)` (nanoseconds in usec), `flush()` and the context-manager methods
        self.sink = sink
        self.iface = iface
        self.bpf = bpf
        self.buffer_bytes = buffer_bytes
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._error: BaseException | None = None
        self._written = self._skipped = self._drops = 0
        self.stats: CaptureStats | None = None  # the counts, once stopped

    def __enter__(self) -> "Capture":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._thread is not None:
            self.stop()

    def start(self) -> None:
        """Open the socket, attach the filter, bind, and start writing in a thread."""
        if self._thread is not None:
            raise CaptureError("capture already started")
        arphrd = _interface_type(self.iface)
        dlt = ARPHRD_TO_DLT.get(arphrd, 1)
        linktype = LINKTYPE_RAW if dlt == _DLT_RAW else dlt
        try:
            # Protocol 0: the socket receives nothing until bind(), so no unfiltered packet
            # can slip in before the filter is attached.
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        except PermissionError:
            raise CaptureError(
                f"capturing on {self.iface} needs CAP_NET_RAW: run as root, or grant it with "
                f"`setcap cap_net_raw+ep {os.path.realpath(sys.executable)}`") from None
        try:
            _set_buffer(sock, self.buffer_bytes)
            if self.bpf:
                _attach_filter(sock, self.bpf, dlt)
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            sock.bind((self.iface, ETH_P_ALL))  # Python applies htons itself
            sock.setblocking(False)
            if self.sink is not None:
                writer = self.sink
                writer.linktype = linktype
            else:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                writer = RawPcapWriter(self.path, linktype=linktype, nano=True, snaplen=_SNAPLEN)
                writer.write_header(None)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, args=(writer, arphrd == ARPHRD_LOOPBACK),
                                        name=f"capture-{self.iface}", daemon=True)
        self._thread.start()

    def stop(self) -> CaptureStats:
        """Drain what is still queued, close the file and return the counts."""
        if self._thread is None:
            raise CaptureError("capture not started")
        self._stopping.set()
        self._thread.join()
        self._thread = None
        assert self._sock is not None
        self._drops += _kernel_drops(self._sock)
        self._sock.close()
        self._sock = None
        if self._error is not None:
            raise CaptureError(f"capture on {self.iface} failed: {self._error}") from self._error
        self.stats = CaptureStats(self.path, self._written, self._drops, self._skipped)
        return self.stats

    def _run(self, writer: RawPcapWriter, loopback: bool) -> None:
        sock = self._sock
        assert sock is not None
        ancillary = socket.CMSG_SPACE(_TIMESPEC.size)
        buf = bytearray(_SNAPLEN)
        quiet_since = stop_seen = None
        try:
            with writer:
                while True:
                    readable, _, _ = select.select([sock], [], [], _SETTLE_S / 2)
                    got = False
                    for _ in range(_BATCH if readable else 0):
                        try:
                            size, anc, _flags, addr = sock.recvmsg_into([buf], ancillary)
                        except BlockingIOError:
                            break
                        got = True
                        if loopback and addr[2] == socket.PACKET_OUTGOING:
                            self._skipped += 1
                            continue
                        sec, nsec = _timestamp(anc)
                        writer.write_packet(bytes(buf[:size]), sec=sec, usec=nsec)
                        self._written += 1
                    now = time.monotonic()
                    if got or quiet_since is None:
                        quiet_since = now
                    if not got:
                        writer.flush()
                    if self._stopping.is_set():
                        stop_seen = stop_seen or now
                        if now - quiet_since >= _SETTLE_S or now - stop_seen >= _MAX_SETTLE_S:
                            return
        except BaseException as exc:  # reported by stop()
            self._error = exc


def _interface_type(iface: str) -> int:
    try:
        return int(Path(f"/sys/class/net/{iface}/type").read_text())
    except FileNotFoundError:
        raise CaptureError(f"no network interface named {iface!r}") from None


def _set_buffer(sock: socket.socket, size: int) -> None:
    try:  # SO_RCVBUFFORCE (33) passes rmem_max when privileged
        sock.setsockopt(socket.SOL_SOCKET, 33, size)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)


def _attach_filter(sock: socket.socket, bpf: str, dlt: int) -> None:
    try:
        program = compile_filter(bpf, linktype=dlt)
    except Exception as exc:  # scapy raises Scapy_Exception / ImportError (no libpcap)
        raise CaptureError(f"bad capture filter {bpf!r}: {exc}") from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER,
                        sock_fprog(program.bf_len, program.bf_insns))
    finally:
        free_filter(program)


def _timestamp(ancillary) -> tuple[int, int]:
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= _TIMESPEC.size:
            return _TIMESPEC.unpack_from(data)
    now = time.time_ns()
    return now // 1_000_000_000, now % 1_000_000_000


def _kernel_drops(sock: socket.socket) -> int:
    """Packets the kernel dropped since the socket opened (the counters reset on read)."""
    _packets, drops = struct.unpack("II", sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
    return drops
