"""Proof from a capture that a call switched prompts after an update request.

The update request (HTTP on loopback) and the RTP packets are timed by the same capture
clock, so the latency is measured on the wire: from the packet carrying the request line to
the first RTP packet that carries the new prompt.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from harness.wire.analysis import WireAnalysis
from harness.wire.audio import PacketAudio, audio_frames, label_packets, segments
from harness.wire.http_requests import HttpRequest
from harness.wire.rtp_streams import RtpFrame, RtpStream


@dataclass(frozen=True, slots=True)
class SwitchResult:
    """Whether the stream switched from `old` to `new` after the request, and how well."""

    ok: bool
    reason: str
    old: str
    new: str
    request_ts_ns: int
    #: last packet of the old prompt before the request (None: it was not playing)
    last_old_ts_ns: int | None
    first_new_ts_ns: int | None
    first_new_number: int | None
    latency_ms: float | None
    old_reappears: bool
    old_reappears_ts_ns: int | None
    #: same SSRC, sequence +1 and timestamp + samples per packet, from the last packet
    #: before the request to the first packet of the new prompt
    continuous: bool
    discontinuities: tuple[str, ...]


def check_switch(analysis: WireAnalysis, stream: RtpStream, request: HttpRequest, old: str,
                 new: str, prompts: Mapping[str, np.ndarray]) -> SwitchResult:
    """Check the switch from prompt `old` to prompt `new` on the flow of `stream`.

    Every SSRC on the stream's (source, destination) flow is considered, so an SSRC change
    at the switch is reported as a discontinuity rather than hiding the new prompt.
    """
    flow = analysis.streams(stream.src, stream.dst)
    labels = sorted((lab for s in flow for lab in label_packets(s, prompts)),
                    key=lambda lab: lab.number)
    t_req = request.ts_ns
    before = [lab for lab in labels if lab.ts_ns < t_req]
    after = [lab for lab in labels if lab.ts_ns >= t_req]
    last_old = next((lab for lab in reversed(before) if lab.prompt == old), None)
    first_new = next((lab for lab in after if lab.prompt == new), None)
    problems = []
    if last_old is None:
        problems.append(f"prompt {old!r} was not playing before the update request")
    latency = reappear = None
    gaps: tuple[str, ...] = ()
    if first_new is None:
        problems.append(f"prompt {new!r} never arrived after the update request; "
                        f"the stream carried {_summary(after)}")
    else:
        latency = (first_new.ts_ns - t_req) / 1e6
        reappear = next((lab for lab in after if lab.number > first_new.number
                         and lab.prompt == old), None)
        if reappear is not None:
            problems.append(f"prompt {old!r} reappeared {(reappear.ts_ns - first_new.ts_ns) / 1e6:.1f} ms "
                            f"after {new!r} started (frame {reappear.number})")
        frames = sorted((f for s in flow for f, _ in audio_frames(s)), key=lambda f: f.number)
        start = before[-1].number if before else first_new.number
        gaps = _discontinuities([f for f in frames if start <= f.number <= first_new.number],
                                {n: s.ssrc for s in flow for n in s.packets.number.tolist()})
        problems.extend(gaps)
    if problems:
        reason = "; ".join(problems)
    else:
        reason = (f"switched from {old!r} to {new!r} {latency:.1f} ms after the update request "
                  f"(first packet of {new!r}: frame {first_new.number})")
    return SwitchResult(
        ok=not problems, reason=reason, old=old, new=new, request_ts_ns=t_req,
        last_old_ts_ns=last_old.ts_ns if last_old else None,
        first_new_ts_ns=first_new.ts_ns if first_new else None,
        first_new_number=first_new.number if first_new else None, latency_ms=latency,
        old_reappears=reappear is not None,
        old_reappears_ts_ns=reappear.ts_ns if reappear else None,
        continuous=not gaps, discontinuities=gaps)


MAX_LOSS_GAP = 50  # a sequence jump beyond this (1 s of packets) is not taken for loss


def _discontinuities(frames: list[RtpFrame], ssrc_of: dict[int, int]) -> tuple[str, ...]:
    """Breaks in the sender's numbering: an SSRC change, sequence numbers going back or far
    ahead, or timestamps that disagree with the sequence numbers. Packets lost on the wire
    (a sequence gap with the timestamp advanced to match) are not a break of the stream."""
    found = []
    for a, b in zip(frames, frames[1:]):
        where = f"frame {a.number} -> {b.number}"
        if ssrc_of[a.number] != ssrc_of[b.number]:
            found.append(f"{where}: SSRC changed 0x{ssrc_of[a.number]:08X} -> 0x{ssrc_of[b.number]:08X}")
            continue
        gap = (b.sequence - a.sequence) & 0xFFFF
        advance = (b.timestamp - a.timestamp) & 0xFFFFFFFF
        step = len(a.payload)  # G.711: one sample per byte
        if 1 < gap <= MAX_LOSS_GAP and advance == gap * step:
            continue  # packets lost on the wire; the sender's numbering is intact
        if gap != 1:
            found.append(f"{where}: sequence {a.sequence} -> {b.sequence}, "
                         f"expected {(a.sequence + 1) & 0xFFFF}")
        elif advance != step:
            found.append(f"{where}: timestamp {a.timestamp} -> {b.timestamp}, expected +{step}")
    return tuple(found)


def _summary(labels: list[PacketAudio]) -> str:
    if not labels:
        return "no audio packets"
    parts = [f"{seg.label} x{seg.packets}" for seg in segments(labels)]
    return ", ".join(parts[:6]) + (", ..." if len(parts) > 6 else "")
