"""Benchmark of the media engine: N concurrent streams on loopback, one media clock.

For each N the engine opens N sessions that all send to one receiver process (and, with
--duplex, get every packet echoed back, so each session also receives 50 packets/s). The
receiver stamps packets with kernel receive times (SO_TIMESTAMPNS); tshark captures the same
packets on `lo` and its `rtp,streams` statistics referee the result. Prints one JSON object
per N, then a summary table:

    .venv/bin/python bench/bench_media.py --streams 1 50 200 500 --seconds 10 [--duplex] [--realtime]

sent/received count the measured window (after 1 s of warm-up); lost and interval_* come from
the receiver's per-SSRC sequence numbers and kernel times: |arrival interval - 20 ms| in ms
over all streams. cpu_share is the engine process's CPU time over wall time (1.0 = one core).
tshark.* is tshark's rtp,streams over the whole capture.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import tshark_rtp_streams  # noqa: E402
from harness.media.transport import DEFAULT_PHASES, MediaEngine  # noqa: E402
from harness.media.sources import encode_frames, tone  # noqa: E402

HOST = "127.0.0.1"
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)


# ---- the receiver process -------------------------------------------------------------------
def _port_pair() -> tuple[socket.socket, socket.socket]:
    """UDP sockets on an even port and the next one (RTP and RTCP)."""
    for port in range(40000, 50000, 2):
        pair = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
        try:
            pair[0].bind((HOST, port))
            pair[1].bind((HOST, port + 1))
            return pair[0], pair[1]
        except OSError:
            for sock in pair:
                sock.close()
    raise OSError("no free port pair for the receiver")


def receive(duplex: bool) -> None:
    """Receiver process: print the RTP port, record (ssrc, seq, kernel time) per packet until a
    line "FROM_NS TO_NS" arrives on stdin, then print the statistics of the packets that
    arrived in that window as JSON."""
    rtp, rtcp = _port_pair()
    port = rtp.getsockname()[1]
    rtp.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_RCVBUFFORCE", 33), 32 << 20)
    rtp.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    rtp.settimeout(0.2)
    rtcp.settimeout(0.2)
    print(port, flush=True)
    stop = threading.Event()
    window = []
    threading.Thread(target=lambda: (window.extend(map(int, sys.stdin.readline().split())), stop.set()),
                     daemon=True).start()
    rtcp_count = [0]

    def count_rtcp():
        while not stop.is_set():
            try:
                rtcp.recv(2048)
                rtcp_count[0] += 1
            except socket.timeout:
                pass
    threading.Thread(target=count_rtcp, daemon=True).start()
    ssrcs, seqs, times = [], [], []
    unpack = struct.Struct("!HI").unpack_from
    while not stop.is_set():
        try:
            data, anc, _, addr = rtp.recvmsg(2048, 64)
        except socket.timeout:
            continue
        if duplex:
            rtp.sendto(data, addr)
        seq, ssrc = unpack(data, 2)[0], struct.unpack_from("!I", data, 8)[0]
        sec, nsec = struct.unpack("qq", anc[0][2][:16])
        ssrcs.append(ssrc), seqs.append(seq), times.append(sec * 1_000_000_000 + nsec)
    times = np.array(times, dtype=np.int64)
    inside = (times >= window[0]) & (times <= window[1])
    print(json.dumps(_arrival_stats(np.array(ssrcs)[inside], np.array(seqs)[inside], times[inside],
                                    rtcp_count[0])), flush=True)


def _arrival_stats(ssrc: np.ndarray, seq: np.ndarray, t_ns: np.ndarray, rtcp: int) -> dict:
    deviations, lost, reordered = [], 0, 0
    for s in np.unique(ssrc):
        mask = ssrc == s
        q, t = seq[mask].astype(np.int64), t_ns[mask]
        ext = q[0] + np.concatenate([[0], np.cumsum(((np.diff(q) + 0x8000) & 0xFFFF) - 0x8000)])
        lost += int(ext.max() - ext.min() + 1 - len(np.unique(ext)))
        reordered += int(np.sum(np.diff(ext) < 0))
        consecutive = np.diff(ext) == 1
        deviations.append(np.abs(np.diff(t)[consecutive] / 1e6 - 20.0))
    dev = np.concatenate(deviations) if deviations else np.zeros(1)
    return {"received": int(len(ssrc)), "streams_seen": int(len(np.unique(ssrc))), "lost": lost,
            "reordered": reordered, "rtcp_received": rtcp,
            "interval_p50_ms": round(float(np.percentile(dev, 50)), 3),
            "interval_p99_ms": round(float(np.percentile(dev, 99)), 3),
            "interval_max_ms": round(float(dev.max()), 3)}


# ---- tshark -----------------------------------------------------------------------------------
def start_capture(pcap: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(["tshark", "-i", "lo", "-f", f"udp dst port {port}", "-B", "64",
                             "-w", str(pcap)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if "Capturing on" in line or not line:
            break
    return proc


def stop_capture(proc: subprocess.Popen) -> None:
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    proc.wait(30)


# ---- the engine side --------------------------------------------------------------------------
async def run_engine(n: int, seconds: float, port: int, phases: int, realtime: bool) -> dict:
    if realtime:  # only the engine: the receiver and tshark are already running
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
    try:
        return await _run_engine(n, seconds, port, phases)
    finally:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


async def _run_engine(n: int, seconds: float, port: int, phases: int) -> dict:
    engine = MediaEngine(HOST, phases=phases)
    frames = encode_frames(tone(440, 1.0), "PCMU")
    sessions = [engine.open(0, "PCMU", 101, on_playback_done=lambda t: None,
                            on_digit=lambda d: None) for _ in range(n)]
    for i, session in enumerate(sessions):
        if i % 2 == 0:
            session.sender.play(frames, "tone", repeat=10_000)
        session.start((HOST, port))
    await asyncio.sleep(1.0)  # warm up
    cpu0, wall0, window0 = time.process_time(), time.monotonic(), time.time_ns()
    sent0 = sum(s.sender.packets_sent for s in sessions)
    late0 = engine.late_ticks
    await asyncio.sleep(seconds)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    result = {"window_ns": [window0, time.time_ns()],
              "sent": sum(s.sender.packets_sent for s in sessions) - sent0,
              "received_back": sum(s.receiver.packets for s in sessions),
              "send_errors": sum(s.send_errors for s in sessions),
              "late_ticks": engine.late_ticks - late0,
              "cpu_share": round(cpu / wall, 3)}
    await engine.close()
    return result


def bench(n: int, seconds: float, duplex: bool, capture: bool, phases: int, realtime: bool) -> dict:
    receiver = subprocess.Popen([sys.executable, __file__, "--receiver"] + (["--duplex"] if duplex else []),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    port = int(receiver.stdout.readline())
    tmp = Path(tempfile.mkdtemp(prefix="bench-media-"))
    pcap = tmp / "rtp.pcap"
    tshark = start_capture(pcap, port) if capture else None
    try:
        engine = asyncio.run(run_engine(n, seconds, port, phases, realtime))
    except BaseException:
        receiver.kill()
        raise
    finally:
        if tshark is not None:
            stop_capture(tshark)
    window = engine.pop("window_ns")
    receiver.stdin.write(f"{window[0]} {window[1]}\n")
    receiver.stdin.flush()
    arrivals = json.loads(receiver.stdout.readline())
    receiver.wait(10)
    result = {"streams": n, "seconds": seconds, "duplex": duplex, "phases": phases, "realtime": realtime, **engine, **arrivals}
    if tshark is not None:
        result["tshark"] = tshark_rtp_streams(pcap)
    shutil.rmtree(tmp, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 50, 200, 500])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--duplex", action="store_true", help="echo every packet back to its session")
    parser.add_argument("--phases", type=int, default=DEFAULT_PHASES, help="clock phases")
    parser.add_argument("--no-capture", action="store_true", help="skip the tshark referee")
    parser.add_argument("--realtime", action="store_true",
                        help="run the engine under SCHED_FIFO (root), as a media server would")
    parser.add_argument("--receiver", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.receiver:
        receive(args.duplex)
        return

    results = []
    for n in args.streams:
        result = bench(n, args.seconds, args.duplex, not args.no_capture, args.phases, args.realtime)
        print(json.dumps(result), flush=True)
        results.append(result)
    print(f"{'streams':>7} {'sent':>8} {'recv':>8} {'lost':>5} {'p50':>6} {'p99':>6} {'max':>7} "
          f"{'cpu':>5} {'ts.lost':>7} {'ts.maxΔ':>8} {'ts.prob':>7}", file=sys.stderr)
    for r in results:
        ts = r.get("tshark", {})
        print(f"{r['streams']:>7} {r['sent']:>8} {r['received']:>8} {r['lost']:>5} "
              f"{r['interval_p50_ms']:>6} {r['interval_p99_ms']:>6} {r['interval_max_ms']:>7} "
              f"{r['cpu_share']:>5} {ts.get('lost', '-'):>7} {ts.get('max_delta_ms', '-'):>8} "
              f"{ts.get('problems', '-'):>7}", file=sys.stderr)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
