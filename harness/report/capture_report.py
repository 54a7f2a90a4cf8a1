"""The facts of any capture as one JSON document (schema: `capture.schema.json`).

What `sip-harness analyze --json` writes and what the report page of a capture (and the
capture part of a run's report) is drawn from: the calls (one per dialog), every SIP message
with its full text, ICMP errors, and per RTP stream its statistics (equal to tshark's), the
per-packet delta and jitter, RTCP, the E-model estimate with its inputs, DTMF, what the
audio carries and the words recognised in it. Every `time`, `start` and `end` is in seconds
since `t0` (seconds since the epoch: the capture's first frame unless the caller picks
another origin). Per-packet series longer than `MAX_SERIES_POINTS` are reduced to that many
points, each the largest value of its stretch of packets.

The audio itself (WAV) and the spectrogram pictures are not facts of the document; the page
takes them from `stream_media`.
"""
from __future__ import annotations

import base64
import io
import json
import wave
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness.sip.message import SipRequest
from harness.wire.analysis import WireAnalysis
from harness.wire.audio import (PromptMatcher, content_segments, decoded_g711, dtmf_events,
                                label_packets, stream_pcm)
from harness.wire.calls import Call, StreamQuality, find_calls, stream_quality
from harness.wire.packets import Address
from harness.wire.rtp_streams import RtpStream
from harness.wire.sdp import parse_sdp_audio
from harness.wire.sip_ladder import has_sdp
from harness.wire.words import Recognizer, RecognitionError

CAPTURE_SCHEMA_VERSION = 1
CAPTURE_SCHEMA_PATH = Path(__file__).with_name("capture.schema.json")
MAX_SERIES_POINTS = 2000
#: seconds of speech decoded freely per capture (the words listed per stream)
MAX_TRANSCRIBED_S = 120.0
#: streams whose audio content is analysed (and played on the page), the first ones selected
MAX_AUDIO_STREAMS = 24


def address(addr: Address) -> str:
    """'host:port', with IPv6 hosts in brackets."""
    host, port = addr
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class Selection:
    """Which part of a capture to report: one dialog, and/or a time window (ns since the epoch)."""

    call_id: str | None = None
    since_ns: int | None = None
    until_ns: int | None = None

    def keeps(self, start_ns: int, end_ns: int, call_id: str | None) -> bool:
        if self.call_id is not None and call_id != self.call_id:
            return False
        return (self.since_ns is None or end_ns >= self.since_ns) and \
            (self.until_ns is None or start_ns <= self.until_ns)


@dataclass
class Options:
    """What to look for in the audio: prompts by name (8 kHz PCM), phrases to spot."""

    prompts: Mapping[str, np.ndarray] = field(default_factory=dict)
    said: Sequence[str] = ()
    transcribe: bool = True
    recognizer: Recognizer | None = None


def build_capture_document(analysis: WireAnalysis, selection: Selection = Selection(),
                           options: Options | None = None, t0: float | None = None,
                           roles: Mapping[str, str] | None = None) -> dict:
    """The capture document (see the module docstring); `roles` names endpoints
    ('host:port' -> 'caller', 'stub', ...), else they are found from the SIP."""
    options = options or Options()
    t0 = analysis.start_ns / 1e9 if t0 is None else t0
    calls, streams = select(analysis, selection)
    index = {id(s): i for i, s in enumerate(streams)}
    call_of = {id(s): c for c in calls for s in c.streams}
    roles = dict(roles) if roles is not None else sip_roles(analysis)

    def rel(ts_ns: int) -> float:
        return round(ts_ns / 1e9 - t0, 6)

    recognizer = options.recognizer or (Recognizer() if options.said or options.transcribe else None)
    budget = [MAX_TRANSCRIBED_S]
    matchers: dict[str, PromptMatcher] = {}
    stream_docs, qualities = [], {}
    for s in streams:
        quality = stream_quality(analysis, s, call_of.get(id(s)))
        qualities[id(s)] = quality
        stream_docs.append(_stream_doc(s, index[id(s)], quality, rel, roles, options, recognizer,
                                       budget, matchers, analysis.start_ns,
                                       with_audio=index[id(s)] < MAX_AUDIO_STREAMS))
    notes = []
    if len(streams) > MAX_AUDIO_STREAMS:
        notes.append(f"the audio of {len(streams) - MAX_AUDIO_STREAMS} streams after the first "
                     f"{MAX_AUDIO_STREAMS} is not analysed: select a call (--call-id) or a time window")
    if options.transcribe and budget[0] <= 0:
        notes.append(f"speech was decoded freely for the first {MAX_TRANSCRIBED_S:.0f} s only")
    messages = [m for c in calls for m in c.messages]
    messages.sort(key=lambda m: (m.ts_ns, m.number))
    return {
        "schema": "sip-harness-capture",
        "schema_version": CAPTURE_SCHEMA_VERSION,
        "capture": {"path": analysis.path, "frames": analysis.frames, "start": analysis.start_ns / 1e9,
                    "warnings": list(analysis.warnings)},
        "selection": {"call_id": selection.call_id,
                      "since": None if selection.since_ns is None else rel(selection.since_ns),
                      "until": None if selection.until_ns is None else rel(selection.until_ns)},
        "t0": t0,
        "notes": notes,
        "endpoints": roles,
        "calls": [_call_doc(c, rel, [index[id(s)] for s in c.streams], qualities) for c in calls],
        "messages": [{"time": rel(m.ts_ns), "frame": m.number, "last_frame": m.last_number,
                      "call_id": m.message.call_id, "src": address(m.src), "dst": address(m.dst),
                      "transport": m.transport, "summary": m.summary,
                      "text": m.raw.decode("utf-8", errors="replace"),
                      "sdp": m.message.body.decode("utf-8", errors="replace") if has_sdp(m.message) else None}
                     for m in messages],
        "icmp": [{"time": rel(e.ts_ns), "frame": e.number, "reporter": e.reporter,
                  "summary": e.summary, "type": e.icmp_type, "code": e.code,
                  "original_src": address(e.original_src), "original_dst": address(e.original_dst),
                  "call_id": next((c.call_id for c in calls if e in c.icmp), None)}
                 for e in analysis.icmp if any(e in c.icmp for c in calls) or not calls],
        "streams": stream_docs,
    }


def select(analysis: WireAnalysis, selection: Selection) -> tuple[list[Call], list[RtpStream]]:
    """The calls the selection keeps, and their streams with the streams of no call that
    it keeps (those with an unknown Call-ID, or found by heuristics), in capture order."""
    every = find_calls(analysis)
    calls = [c for c in every if selection.keeps(c.start_ns, c.end_ns, c.call_id)]
    kept = {id(s) for c in calls for s in c.streams}
    known = {c.call_id for c in every}
    streams = [s for s in analysis.rtp_streams if id(s) in kept or (
        s.call_id not in known and selection.call_id is None
        and selection.keeps(s.start_ts_ns, s.end_ts_ns, None))]
    return calls, streams


def sip_roles(analysis: WireAnalysis) -> dict[str, str]:
    """'caller' for the side that sent a dialog's first INVITE and the media it announced,
    'callee' for the other side (numbered with several calls)."""
    roles: dict[str, str] = {}
    dialogs = [msgs for msgs in analysis.dialogs.values()
               if any(isinstance(m.message, SipRequest) and m.message.method == "INVITE" for m in msgs)]
    for n, messages in enumerate(dialogs, 1):
        suffix = f" {n}" if len(dialogs) > 1 else ""
        invite = next(m for m in messages if isinstance(m.message, SipRequest)
                      and m.message.method == "INVITE")
        roles.setdefault(address(invite.src), "caller" + suffix)
        roles.setdefault(address(invite.dst), "callee" + suffix)
        for m in messages:
            if has_sdp(m.message):
                audio = parse_sdp_audio(m.message.body)
                if audio is not None:
                    side = "caller" if m.src == invite.src else "callee"
                    roles.setdefault(address((audio.address, audio.port)), side + suffix)
    return roles


def _call_doc(call: Call, rel, streams: list[int], qualities) -> dict:
    worst_mos = [q.quality.mos for s in call.streams if (q := qualities[id(s)]).quality]
    return {"call_id": call.call_id, "from": call.from_uri, "to": call.to_uri,
            "start": rel(call.start_ns), "end": rel(call.end_ns),
            "duration_s": round(call.duration_s, 3), "final_status": call.final_status,
            "final_reason": call.final_reason, "messages": len(call.messages), "streams": streams,
            "worst_loss_percent": round(max((s.stats.lost_percent for s in call.streams), default=0.0), 2),
            "worst_jitter_ms": round(max((s.stats.max_jitter_ms for s in call.streams), default=0.0), 3),
            "worst_mos": round(min(worst_mos), 2) if worst_mos else None,
            "icmp_errors": len(call.icmp)}


def _stream_doc(s: RtpStream, index: int, quality: StreamQuality, rel, roles, options: Options,
                recognizer, budget, matchers, start_ns, with_audio: bool) -> dict:
    st = s.stats
    src, dst = address(s.src), address(s.dst)
    counts = dict(zip(*np.unique(s.packets.payload_type, return_counts=True)))
    times, delta, jitter = s.series(start_ns)
    return {
        "index": index, "call_id": s.call_id, "src": src, "dst": dst,
        "direction": f"{roles[src]} → {roles[dst]}" if src in roles and dst in roles else None,
        "ssrc": f"0x{s.ssrc:08X}", "found_by": s.found_by,
        "codec": ", ".join(s.encoding_name(pt) or str(pt) for pt in s.payload_types),
        "payload_types": [{"pt": pt, "name": s.encoding_name(pt), "packets": int(counts[pt]),
                           "clock_rate": (s.encodings.get(pt) or (None, None))[1]}
                          for pt in s.payload_types],
        "start": rel(s.start_ts_ns), "end": rel(s.end_ts_ns),
        "stats": {"packets": st.packets, "expected": st.expected, "lost": st.lost,
                  "lost_percent": round(st.lost_percent, 3), "sequence_errors": st.sequence_errors,
                  "min_delta_ms": _ms(st.min_delta_ms), "mean_delta_ms": _ms(st.mean_delta_ms),
                  "max_delta_ms": _ms(st.max_delta_ms), "min_jitter_ms": _ms(st.min_jitter_ms),
                  "mean_jitter_ms": _ms(st.mean_jitter_ms), "max_jitter_ms": _ms(st.max_jitter_ms),
                  "problem": st.problem},
        "series": _series(rel(start_ns) + times, delta, jitter),
        "rtcp": _rtcp_doc(s, quality, rel),
        "quality": None if quality.quality is None else {
            "r_factor": round(quality.quality.r_factor, 2), "mos": round(quality.quality.mos, 2),
            "model": "ITU-T G.107 E-model", "inputs": quality.quality.inputs()},
        "quality_note": quality.no_quality_reason,
        "dtmf": [{"time": rel(ev.start_ts_ns), "digit": ev.digit, "event": ev.event,
                  "duration_ms": round(ev.duration_ms, 3), "ended": ev.ended, "volume": ev.volume}
                 for ev in dtmf_events(s)],
        "audio": _audio_doc(s, rel, options, recognizer, budget, matchers) if with_audio else None,
    }


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _series(times: np.ndarray, delta: np.ndarray, jitter: np.ndarray) -> dict:
    n = len(times)
    if n > MAX_SERIES_POINTS:
        edges = np.linspace(0, n, MAX_SERIES_POINTS + 1).astype(np.int64)[:-1]
        times, delta, jitter = times[edges], np.maximum.reduceat(delta, edges), np.maximum.reduceat(jitter, edges)
    return {"reduced": n > MAX_SERIES_POINTS, "time": np.round(times, 6).tolist(),
            "delta_ms": np.round(delta, 3).tolist(), "jitter_ms": np.round(jitter, 3).tolist()}


def _rtcp_doc(s: RtpStream, quality: StreamQuality, rel) -> dict:
    rate = next((enc[1] for pt, enc in s.encodings.items() if s.clock_rates.get(pt)), 8000) or 8000
    return {
        "sender_reports": [{"time": rel(r.ts_ns), "frame": r.number, "packet_count": r.packet_count,
                            "octet_count": r.octet_count, "ntp_timestamp": r.ntp_timestamp,
                            "rtp_timestamp": r.rtp_timestamp} for r in quality.sender_reports],
        "reception_reports": [{"time": rel(r.ts_ns), "frame": r.number, "reporter": address(r.src),
                               "reporter_ssrc": f"0x{r.reporter_ssrc:08X}",
                               "fraction_lost": r.fraction_lost,
                               "fraction_lost_percent": round(r.fraction_lost_percent, 2),
                               "cumulative_lost": r.cumulative_lost,
                               "highest_sequence": r.highest_sequence, "jitter": r.jitter,
                               "jitter_ms": round(r.jitter * 1000 / rate, 3), "lsr": r.lsr,
                               "dlsr": r.dlsr, "rtt_ms": None if r.rtt_ms is None else round(r.rtt_ms, 3)}
                              for r in quality.reception_reports],
        "xr_voip_metrics": [{"time": rel(v.ts_ns), "frame": v.number, "reporter": address(v.src),
                             "loss_rate": v.metrics.loss_rate, "discard_rate": v.metrics.discard_rate,
                             "burst_density": v.metrics.burst_density,
                             "round_trip_delay_ms": v.metrics.round_trip_delay_ms,
                             "end_system_delay_ms": v.metrics.end_system_delay_ms,
                             "r_factor": v.metrics.r_factor, "mos_lq": v.metrics.mos_lq,
                             "mos_cq": v.metrics.mos_cq,
                             "rtt_ms": None if v.rtt_ms is None else round(v.rtt_ms, 3)}
                            for v in quality.voip_metrics],
    }


def _audio_doc(s: RtpStream, rel, options: Options, recognizer, budget, matchers) -> dict | None:
    codec = next((n for pt in s.payload_types if (n := (s.encoding_name(pt) or "").upper())
                  in ("PCMU", "PCMA")), None)
    decoded = decoded_g711(s) if codec else None
    pcm, rate, origin = stream_pcm(s, decoded)
    if not len(pcm):
        return None
    matcher = None
    if options.prompts and codec:
        matcher = matchers.setdefault(codec, PromptMatcher(options.prompts, codec))
    segs = content_segments(label_packets(s, matcher=matcher, decoded=decoded)) if codec else []
    out = {"sample_rate": rate, "seconds": round(len(pcm) / rate, 3), "segments": [
        {"start": rel(seg.start_ts_ns), "end": rel(seg.end_ts_ns), "kind": seg.kind,
         "label": seg.label, "packets": seg.packets, "prompt": seg.prompt,
         "frequency_hz": None if seg.frequency_hz is None else round(seg.frequency_hz, 1)}
        for seg in segs], "words": [], "said": []}
    if recognizer is None:
        return out
    if options.transcribe:
        for seg in segs:
            seconds = seg.duration_ms / 1000 + 0.02
            if seg.kind != "speech" or budget[0] < seconds:
                continue
            budget[0] -= seconds
            a = max(int((seg.start_ts_ns - origin) * rate / 1e9), 0)
            b = int((seg.end_ts_ns - origin) * rate / 1e9) + rate // 50
            out["words"].append({"start": rel(seg.start_ts_ns), "end": rel(seg.end_ts_ns),
                                 "text": recognizer.transcribe(pcm[a:b], rate)})
    for phrase in options.said:
        try:
            match = recognizer.find_phrase(pcm, rate, phrase)
        except RecognitionError as exc:
            out["said"].append({"phrase": phrase, "found": False, "error": str(exc)})
            continue
        out["said"].append({"phrase": phrase, "found": match is not None, "error": None,
                            "start": None if match is None else rel(origin + int(match.start_s * 1e9)),
                            "end": None if match is None else rel(origin + int(match.end_s * 1e9))})
    return out


def stream_media(analysis: WireAnalysis, streams: Iterable[RtpStream], max_streams: int = MAX_AUDIO_STREAMS,
                 max_seconds: float = 300.0) -> dict[int, dict[str, str]]:
    """Per stream index: its decoded audio as a WAV data URI and its spectrogram as a PNG data
    URI, for the first `max_streams` streams with audio (each cut at `max_seconds`)."""
    from harness.report.spectrogram import spectrogram_png
    out: dict[int, dict[str, str]] = {}
    for index, s in enumerate(streams):
        if len(out) >= max_streams:
            break
        pcm, rate, _ = stream_pcm(s)
        if not len(pcm):
            continue
        pcm = pcm[:int(max_seconds * rate)]
        out[index] = {"wav": "data:audio/wav;base64," + base64.b64encode(wav_bytes(pcm, rate)).decode(),
                      "spectrogram": "data:image/png;base64," +
                      base64.b64encode(spectrogram_png(pcm, rate)).decode()}
    return out


def wav_bytes(pcm: np.ndarray, rate: int) -> bytes:
    """16-bit mono PCM as a WAV file."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.astype("<i2").tobytes())
    return buf.getvalue()


def write_json(document: dict, path: Path) -> Path:
    path.write_text(json.dumps(document, indent=1, default=str), encoding="utf-8")
    return path
