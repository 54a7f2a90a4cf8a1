"""Helpers the load benchmarks share: tshark as capture and referee, RTP pacing figures, CPU."""
from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from harness.wire.rtp_streams import RtpStream  # noqa: E402


class TsharkCapture:
    """`tshark -i lo -f FILTER -w PCAP` (dumpcap underneath), started and stopped around a run."""

    def __init__(self, pcap: Path, bpf: str):
        self.pcap = pcap
        self.proc = subprocess.Popen(["tshark", "-i", "lo", "-f", bpf, "-B", "64", "-w", str(pcap)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line or "Capturing on" in line:
                break

    def stop(self) -> None:
        time.sleep(0.5)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def keep_if_failed(figures: dict, work: Path, passed: bool) -> dict:
    """A step's figures: its work folder removed when it passed, named when it did not."""
    if passed:
        shutil.rmtree(work, ignore_errors=True)
    else:
        figures["artifacts"] = str(work)
    return figures


def tshark_rtp_streams(pcap: Path) -> dict:
    """tshark's `rtp,streams` table summed: streams, packets, lost, worst max delta, problems."""
    out = subprocess.run(["tshark", "-q", "-r", str(pcap), "-z", "rtp,streams",
                          "-o", "rtp.heuristic_rtp:TRUE"], capture_output=True, text=True,
                         timeout=900).stdout
    rows = [line.split() for line in out.splitlines() if "127.0.0.1" in line]
    packets = lost = problems = 0
    max_delta = 0.0
    for fields in rows:
        at = next(i for i, f in enumerate(fields) if re.fullmatch(r"\(-?[\d.]+%\)", f))
        packets += int(fields[at - 2])
        lost += int(fields[at - 1])
        max_delta = max(max_delta, float(fields[at + 3]))
        problems += fields[-1] == "X"
    return {"streams": len(rows), "packets": packets, "lost": lost,
            "max_delta_ms": round(max_delta, 3), "problems": problems}


def pacing(streams: list[RtpStream], start_s: float, end_s: float) -> dict:
    """Packets, losses and |interval - 20 ms| of the streams' packets inside [start_s, end_s]
    (wall-clock seconds); intervals only between consecutive sequence numbers. `skipped` counts
    20 ms frames never sent although sequence numbers run on (RTP timestamp jumps: the media
    clock skips periods after a stall)."""
    deviations, packets, lost, skipped = [], 0, 0, 0
    for stream in streams:
        frames = [f for f in stream.packets if start_s <= f.ts_ns / 1e9 <= end_s]
        if len(frames) < 2:
            continue
        seq = np.array([f.sequence for f in frames], dtype=np.int64)
        arrival = np.array([f.ts_ns for f in frames], dtype=np.int64)
        rtp_ts = np.array([f.timestamp for f in frames], dtype=np.int64)
        step = (np.diff(seq) + 0x8000) % 0x10000 - 0x8000
        frames_advanced = (np.diff(rtp_ts) % (1 << 32)) // 160
        packets += len(frames)
        lost += int(np.sum(np.maximum(step - 1, 0)))
        skipped += int(np.sum(np.maximum(frames_advanced[step == 1] - 1, 0)))
        deviations.append(np.abs(np.diff(arrival)[step == 1] / 1e6 - 20.0))
    dev = np.concatenate(deviations) if deviations else np.zeros(1)
    return {"packets": packets, "lost": lost, "skipped": skipped,
            "interval_deviation_ms_p50": round(float(np.percentile(dev, 50)), 3),
            "interval_deviation_ms_p99": round(float(np.percentile(dev, 99)), 3),
            "interval_deviation_ms_max": round(float(dev.max()), 3)}


def cpu_share(samples: list[tuple[float, float]], start_s: float, end_s: float) -> float | None:
    """CPU seconds per wall second between the first and last samples inside the window."""
    inside = [s for s in samples if start_s <= s[0] <= end_s]
    if len(inside) < 2:
        return None
    (t0, c0), (t1, c1) = inside[0], inside[-1]
    return round((c1 - c0) / (t1 - t0), 3)
