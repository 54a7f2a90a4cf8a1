"""The text `sip-harness analyze FILE.pcap` prints for any capture, ours or not.

Sections: a summary; the SIP dialogs as ladders; the RTP streams in the layout of
`tshark -q -z rtp,streams` with our numbers; what each G.711 stream carries (tones with
their frequency, silence, speech or other sound, and the known prompts when given); the
RFC 4733 DTMF digits with their times and direction. Times are seconds from the capture's
first frame, as in tshark. A stream's direction names the SIP roles of its endpoints: the
side that sent the dialog's first INVITE is the caller.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone

import numpy as np

from harness.media.g711 import DECODERS
from harness.sip.message import SipRequest
from harness.wire.analysis import WireAnalysis
from harness.wire.audio import (SAMPLE_RATE, AudioSegment, DtmfEvent, PromptMatcher, content_segments,
                                dtmf_events, label_packets)
from harness.wire.packets import Address
from harness.wire.rtp_streams import RtpStream
from harness.wire.sdp import parse_sdp_audio
from harness.wire.sip_ladder import has_sdp

TSHARK_HEADER = ("   Start time      End time     Src IP addr  Port    Dest IP addr  Port       SSRC"
                 "          Payload  Pkts         Lost   Min Delta(ms)  Mean Delta(ms)   Max Delta(ms)"
                 "  Min Jitter(ms) Mean Jitter(ms)  Max Jitter(ms) Problems?")
#: segments listed per stream before the rest is summarised in one line
MAX_SEGMENTS = 40


def render_analysis(analysis: WireAnalysis, prompts: Mapping[str, np.ndarray] | None = None) -> str:
    """The report of a capture; `prompts` ({file name: int16 PCM at 8 kHz}) are recognised
    in the audio when given."""
    roles = media_roles(analysis)
    sections = [_summary(analysis), _sip(analysis), stream_table(analysis),
                _audio(analysis, roles, prompts or {}), _dtmf(analysis, roles)]
    return "\n\n".join(sections) + "\n"


def media_roles(analysis: WireAnalysis) -> dict[Address, str]:
    """"caller" or "callee" for each media address an SDP body announced: the side that sent
    the dialog's first INVITE is the caller."""
    roles: dict[Address, str] = {}
    for messages in analysis.dialogs.values():
        invite = next((m for m in messages if isinstance(m.message, SipRequest)
                       and m.message.method == "INVITE"), None)
        if invite is None:
            continue
        for m in messages:
            audio = parse_sdp_audio(m.message.body) if has_sdp(m.message) else None
            if audio is not None:
                roles.setdefault((audio.address, audio.port), "caller" if m.src == invite.src else "callee")
    return roles


def stream_table(analysis: WireAnalysis) -> str:
    """The RTP streams as `tshark -q -z rtp,streams` prints them (-1.000: no minimum)."""
    lines = ["RTP streams", TSHARK_HEADER]
    for s in analysis.rtp_streams:
        st = s.stats
        names = ", ".join(s.encoding_name(pt) or str(pt) for pt in sorted(s.payload_types))
        minimum = [-1.0 if v is None else v for v in (st.min_delta_ms, st.min_jitter_ms)]
        lines.append(
            f"{_relative(analysis, s.start_ts_ns):13.6f} {_relative(analysis, s.end_ts_ns):13.6f} "
            f"{s.src[0]:>15} {s.src[1]:5} {s.dst[0]:>15} {s.dst[1]:5} 0x{s.ssrc:08X} {names:>16} "
            f"{st.packets:5} {st.lost:5} ({st.lost_percent:.1f}%) {minimum[0]:15.3f} "
            f"{st.mean_delta_ms:15.3f} {st.max_delta_ms:15.3f} {minimum[1]:15.3f} "
            f"{st.mean_jitter_ms:15.3f} {st.max_jitter_ms:15.3f} {'X' if st.problem else ''}".rstrip())
    if not analysis.rtp_streams:
        lines.append("(none)")
    return "\n".join(lines)


def _relative(analysis: WireAnalysis, ts_ns: int) -> float:
    return (ts_ns - analysis.start_ns) / 1e9


def _summary(analysis: WireAnalysis) -> str:
    start = datetime.fromtimestamp(analysis.start_ns / 1e9, timezone.utc).isoformat(timespec="milliseconds")
    return (f"{analysis.path}: {analysis.frames} frames from {start}; {len(analysis.sip)} SIP messages "
            f"in {len(analysis.dialogs)} dialogs, {len(analysis.http)} HTTP requests, "
            f"{len(analysis.rtp_streams)} RTP streams")


def _sip(analysis: WireAnalysis) -> str:
    return "SIP dialogs\n" + (analysis.ladder_text() if analysis.dialogs else "(none)")


def _direction(roles: dict[Address, str], stream: RtpStream) -> str:
    if stream.src not in roles and stream.dst not in roles:
        return ""
    return f"{roles.get(stream.src, '?')} -> {roles.get(stream.dst, '?')}"


def _title(number: int, stream: RtpStream, roles: dict[Address, str]) -> str:
    names = ", ".join(stream.encoding_name(pt) or str(pt) for pt in stream.payload_types)
    parts = [f"#{number} {stream.src[0]}:{stream.src[1]} -> {stream.dst[0]}:{stream.dst[1]}",
             f"SSRC 0x{stream.ssrc:08X}", names, _direction(roles, stream)]
    return "  ".join(p for p in parts if p)


def _audio(analysis: WireAnalysis, roles: dict[Address, str], prompts) -> str:
    lines = ["Audio"]
    matchers: dict[str, PromptMatcher] = {}
    for number, stream in enumerate(analysis.rtp_streams, 1):
        lines.append(_title(number, stream, roles))
        codecs = [name for pt in stream.payload_types
                  if (name := (stream.encoding_name(pt) or "").upper()) in DECODERS]
        if not codecs:
            lines.append("    no G.711 audio to decode")
            continue
        matcher = None
        if prompts:
            matcher = matchers.setdefault(codecs[0], PromptMatcher(prompts, codecs[0]))
        shown = _shown(content_segments(label_packets(stream, matcher=matcher)))
        for start, end, label, packets in shown[:MAX_SEGMENTS]:
            lines.append(f"    {_relative(analysis, start):+10.3f} s .. "
                         f"{_relative(analysis, end):+10.3f} s  {label} ({packets} packets)")
        if len(shown) > MAX_SEGMENTS:
            lines.append(f"    ... {len(shown) - MAX_SEGMENTS} more segments")
    if not analysis.rtp_streams:
        lines.append("(no RTP streams)")
    return "\n".join(lines)


def _shown(segs: list[AudioSegment]) -> list[tuple[int, int, str, int]]:
    """(start, end, label, packets) per content segment."""
    out = []
    for seg in segs:
        if seg.kind == "tone":
            label = f"tone {seg.frequency_hz:.0f} Hz"
        elif seg.kind == "prompt":
            label = (f"prompt {seg.prompt} from {seg.first_offset / SAMPLE_RATE:.3f} s "
                     f"to {seg.last_offset / SAMPLE_RATE:.3f} s of it")
        elif seg.kind == "other":
            label = "other sound"
        else:
            label = seg.kind
        out.append((seg.start_ts_ns, seg.end_ts_ns, label, seg.packets))
    return out


def _dtmf(analysis: WireAnalysis, roles: dict[Address, str]) -> str:
    found: list[tuple[DtmfEvent, RtpStream]] = [(event, stream) for stream in analysis.rtp_streams
                                                for event in dtmf_events(stream)]
    lines = ["DTMF digits (RFC 4733)"]
    for event, stream in sorted(found, key=lambda item: item[0].start_ts_ns):
        name = f"'{event.digit}'" if event.digit is not None else f"event {event.event}"
        parts = [f"    {_relative(analysis, event.start_ts_ns):+10.3f} s  {name}",
                 f"{event.duration_ms:.0f} ms" + ("" if event.ended else " (no end packet)"),
                 _direction(roles, stream),
                 f"{stream.src[0]}:{stream.src[1]} -> {stream.dst[0]}:{stream.dst[1]}"]
        lines.append("  ".join(p for p in parts if p))
    if not found:
        lines.append("(none)")
    return "\n".join(lines)
