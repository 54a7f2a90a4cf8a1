"""Benchmark of the wire analysis against tshark on a capture of a million packets or more.

Builds (once, cached under /tmp) a nanosecond pcap of `--calls` concurrent calls on
loopback: each a SIP INVITE/100/180/200/ACK ... BYE/200 dialog with SDP and two PCMU streams
of `--seconds` seconds, with 0.5 % random loss, jitter on every other stream, a sequence
number wrap on some, RFC 4733 DTMF digits on every tenth caller stream, and an RTCP sender
report with a reception report every 5 s from each side. Then times the analysis
(`analyze_pcap(FILE)`: IP reassembly, SIP over UDP and TCP, RTP streams and their statistics,
RTCP, ICMP; then the calls and every stream's RTCP reports and E-model MOS) and `tshark -q -z
rtp,streams -r FILE` alternately (best of `--runs` each), checks that the two stream tables are
equal at tshark's printed precision, and times once what `analyze --json` and `--html` add on
top (the capture document with per-packet series, DTMF and the audio content of the first
streams; the page with their players and spectrograms). Prints one JSON object:

    .venv/bin/python bench/bench_analysis.py [--calls 100] [--seconds 101] [--runs 3]

`ours_max_rss_mb` is this process's peak resident memory (the capture is built in a child
process, and the figure includes tshark's text output).
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from harness.media.g711 import ulaw_encode  # noqa: E402
from harness.media.rtcp import ReportBlock, SenderReport, build_compound, ntp_timestamp  # noqa: E402
from harness.media.rtp import RtpPacket, TelephoneEvent  # noqa: E402
from harness.report import Options, write_capture_report  # noqa: E402
from harness.report.capture_report import build_capture_document  # noqa: E402
from harness.wire.analysis import analyze_pcap  # noqa: E402
from harness.wire.calls import find_calls, stream_quality  # noqa: E402
from harness.testing.captures import (sdp_body, sip_message, stream_table,  # noqa: E402
                                  tshark_stream_table, udp_frame)

T0_NS = 1_700_000_000_000_000_000
HOST = "127.0.0.1"
CALLER_SIP, STUB_SIP = 5060, 5080
PTIME_NS = 20_000_000
LOSS = 0.005
EVENT_PT = 101
_RTP_FRAME = 14 + 20 + 8 + 12 + 160


def _record(ts_ns: int, frame: bytes) -> bytes:
    sec, nsec = divmod(ts_ns, 1_000_000_000)
    return struct.pack("<IIII", sec, nsec, len(frame), len(frame)) + frame


def _be(values: np.ndarray, width: int) -> np.ndarray:
    """Unsigned big-endian bytes of `values`, one row per value."""
    return values.astype(f">u{width}").view(np.uint8).reshape(-1, width)


def _audio_rows(rng, sport, dport, ssrc, start_ns, n, jitter_ms, seq0, ts0, keep) -> np.ndarray:
    """pcap records (16-byte header + frame) of one PCMU stream's packets where `keep`."""
    tone = ulaw_encode((np.sin(2 * np.pi * 1000 * np.arange(160) / 8000) * 6000).astype(np.int16))
    rows = np.zeros((n, 16 + _RTP_FRAME), np.uint8)
    rtp = RtpPacket(0, 0, 0, ssrc, tone).build()
    rows[:, 16:] = np.frombuffer(udp_frame((HOST, sport), (HOST, dport), rtp), np.uint8)
    k = np.arange(n)
    rows[:, 60:62] = _be((seq0 + k) & 0xFFFF, 2)
    rows[:, 62:66] = _be((ts0 + 160 * k) & 0xFFFFFFFF, 4)
    rows[0, 59] |= 0x80  # marker on the first packet
    jitter = np.abs(rng.normal(0, jitter_ms * 1e6, n)).astype(np.int64) if jitter_ms else 0
    ts_ns = start_ns + PTIME_NS * k + jitter
    rows[:, 0:4] = (ts_ns // 1_000_000_000).astype("<u4").view(np.uint8).reshape(-1, 4)
    rows[:, 4:8] = (ts_ns % 1_000_000_000).astype("<u4").view(np.uint8).reshape(-1, 4)
    rows[:, 8:16] = np.array([_RTP_FRAME, _RTP_FRAME], "<u4").view(np.uint8)
    return rows[keep], ts_ns[keep]


def build_capture(path: Path, calls: int, seconds: float, seed: int = 1) -> None:
    """Write the benchmark capture (see the module docstring) to `path`."""
    rng = np.random.default_rng(seed)
    n = int(seconds * 1e9 // PTIME_NS)
    blocks, block_times = [], []
    extra: list[tuple[int, bytes]] = []          # SIP messages and DTMF event packets

    def sip(t_ns, start_line, call_id, cseq, src, dst, body=b""):
        msg = sip_message(start_line, call_id, cseq, (HOST, src), body)
        extra.append((t_ns, udp_frame((HOST, src), (HOST, dst), msg)))

    for c in range(calls):
        call_id, t = f"bench-{c}", T0_NS + c * 300_000_000
        caller_rtp, stub_rtp = 20000 + 2 * c, 30000 + 2 * c
        rtpmap = {0: "PCMU/8000", EVENT_PT: "telephone-event/8000"}
        sip(t, "INVITE sip:+15550100@127.0.0.1 SIP/2.0", call_id, "1 INVITE", CALLER_SIP, STUB_SIP,
            sdp_body(HOST, caller_rtp, rtpmap, c))
        sip(t + 1_000_000, "SIP/2.0 100 Trying", call_id, "1 INVITE", STUB_SIP, CALLER_SIP)
        sip(t + 2_000_000, "SIP/2.0 180 Ringing", call_id, "1 INVITE", STUB_SIP, CALLER_SIP)
        sip(t + 10_000_000, "SIP/2.0 200 OK", call_id, "1 INVITE", STUB_SIP, CALLER_SIP,
            sdp_body(HOST, stub_rtp, rtpmap, c))
        sip(t + 11_000_000, "ACK sip:+15550100@127.0.0.1 SIP/2.0", call_id, "1 ACK", CALLER_SIP, STUB_SIP)
        media_start = t + 12_000_000
        for d, (sport, dport) in enumerate(((caller_rtp, stub_rtp), (stub_rtp, caller_rtp))):
            ssrc = int(rng.integers(1, 2**32))
            seq0 = 65000 if c % 7 == 0 else int(rng.integers(0, 2**16))
            ts0 = int(rng.integers(0, 2**32))
            keep = rng.random(n) >= LOSS
            keep[0] = True
            if d == 0 and c % 10 == 0:  # a digit every 5 s: 6 event packets in place of audio
                for digit, k0 in enumerate(range(100, n - 10, 250)):
                    keep[k0:k0 + 6] = False
                    for j in range(6):
                        ev = TelephoneEvent(digit % 16, j >= 4, 10, 160 * min(j + 1, 4)).build()
                        pkt = RtpPacket(EVENT_PT, (seq0 + k0 + j) & 0xFFFF, (ts0 + 160 * k0) & 0xFFFFFFFF,
                                        ssrc, ev, marker=j == 0).build()
                        extra.append((media_start + PTIME_NS * (k0 + j),
                                      udp_frame((HOST, sport), (HOST, dport), pkt)))
            rows, times = _audio_rows(rng, sport, dport, ssrc, media_start + 3_000_000 * d, n,
                                      1.0 if (c + d) % 2 else 0.0, seq0, ts0, keep)
            for k in range(250, n, 250):  # every 5 s: an SR with a reception report, port + 1
                at = media_start + PTIME_NS * k + 7_000_000
                report = SenderReport(ssrc, ntp_timestamp(at / 1e9), ts0 + 160 * k, k, 160 * k,
                                      (ReportBlock(ssrc ^ 0xFFFF, 1, k // 200, k, 40),))
                extra.append((at, udp_frame((HOST, sport + 1), (HOST, dport + 1), build_compound([report]))))
            blocks.append(rows)
            block_times.append(times)
        end = media_start + PTIME_NS * n + 5_000_000
        sip(end, "BYE sip:+15550100@127.0.0.1 SIP/2.0", call_id, "2 BYE", STUB_SIP, CALLER_SIP)
        sip(end + 1_000_000, "SIP/2.0 200 OK", call_id, "2 BYE", CALLER_SIP, STUB_SIP)
    rows = np.concatenate(blocks)
    del blocks
    times = np.concatenate(block_times)
    order = np.argsort(times, kind="stable")
    rows, times = rows[order], times[order]
    extra.sort(key=lambda item: item[0])
    cuts = np.searchsorted(times, [t for t, _ in extra], side="right")
    tmp = path.with_suffix(".partial")
    with open(tmp, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, 1))
        done = 0
        for cut, (t_ns, frame) in zip(cuts, extra):
            out.write(rows[done:cut].tobytes())
            out.write(_record(t_ns, frame))
            done = cut
        out.write(rows[done:].tobytes())
    tmp.rename(path)


def run_tshark(tshark: str, path: Path) -> tuple[float, str]:
    """Seconds and output of one `tshark -q -z rtp,streams` run."""
    start = time.perf_counter()
    out = subprocess.run([tshark, "-q", "-z", "rtp,streams", "-r", str(path)], capture_output=True,
                         text=True, check=True).stdout
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=101.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--build", metavar="PATH", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        build_capture(Path(args.build), args.calls, args.seconds)
        return
    tshark = shutil.which("tshark")
    if tshark is None:
        sys.exit("bench_analysis: tshark is not installed")
    path = Path(f"/tmp/sip-harness-bench-analysis-v3-{args.calls}x{args.seconds:g}s.pcap")
    if not path.exists():
        subprocess.run([sys.executable, __file__, "--build", str(path), "--calls", str(args.calls),
                        "--seconds", str(args.seconds)], check=True)
    ours, theirs, analysis, tshark_out = [], [], None, ""
    for _ in range(args.runs):
        analysis = None  # let the previous run's analysis go before timing the next one
        start = time.perf_counter()
        analysis = analyze_pcap(str(path))
        calls = {s.call_id: c for c in find_calls(analysis) for s in c.streams}
        qualities = [stream_quality(analysis, s, calls.get(s.call_id)) for s in analysis.rtp_streams]
        ours.append(time.perf_counter() - start)
        seconds, tshark_out = run_tshark(tshark, path)
        theirs.append(seconds)
    start = time.perf_counter()
    document = build_capture_document(analysis, options=Options(transcribe=False))
    document_seconds = time.perf_counter() - start
    write_capture_report(analysis, Path("/tmp/sip-harness-bench-analysis.html"), None,
                         options=Options(transcribe=False))
    page_seconds = time.perf_counter() - start - document_seconds
    mine, reference = stream_table(analysis.rtp_streams), tshark_stream_table(tshark_out)
    best_ours, best_tshark = min(ours), min(theirs)
    print(json.dumps({
        "file": str(path), "file_mb": round(path.stat().st_size / 1e6, 1),
        "packets": analysis.frames, "rtp_streams": len(analysis.rtp_streams),
        "sip_messages": len(analysis.sip), "rtcp_datagrams": len(analysis.rtcp.datagrams),
        "streams_with_mos": sum(q.quality is not None for q in qualities),
        "streams_with_audio_analysed": sum(s["audio"] is not None for s in document["streams"]),
        "ours_seconds": round(best_ours, 3), "tshark_seconds": round(best_tshark, 3),
        "ours_packets_per_s": round(analysis.frames / best_ours),
        "tshark_packets_per_s": round(analysis.frames / best_tshark),
        "ratio": round(best_tshark / best_ours, 2),
        "equal": bool(reference) and mine == reference,
        "ours_runs": [round(s, 3) for s in ours], "tshark_runs": [round(s, 3) for s in theirs],
        "document_seconds": round(document_seconds, 3), "page_seconds": round(page_seconds, 3),
        "ours_max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }, indent=2))


if __name__ == "__main__":
    main()
