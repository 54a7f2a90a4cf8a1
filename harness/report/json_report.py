"""The report of one profile run as a JSON document (schema: `report.schema.json`).

Its `capture` is the capture document of the run's capture (`capture_report`, schema
`capture.schema.json`), with the same time origin and the roles the journal gives.

Every `time`, `start` and `end` in it is in seconds of call time: since `t0`, the capture time
of the first SIP message (else of the first captured frame, else of the first journal entry),
in seconds since the epoch (else of the first update; 0 without any of them). The journal
and the capture share the machine's clock. A segment's `end` is its last packet's time.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from harness.journal_entries import (Entry, HandlerInvoked, HandlerResponded, Hangup, MediaStarted,
                                     MediaStopped, SipEnded)
from harness.journal_view import JournalView, event_error
from harness.report.capture_report import Options, address, build_capture_document
from harness.report.capture_report import sip_roles as sip_roles_of
from harness.sip.message import SipRequest
from harness.wire.audio import content_segments, dtmf_events, label_packets

if TYPE_CHECKING:
    from harness.results import ProfileResult
    from harness.wire.analysis import WireAnalysis
    from harness.wire.rtp_streams import RtpStream

SCHEMA_VERSION = 4
SCHEMA_PATH = Path(__file__).with_name("report.schema.json")
#: The files a run folder may hold, by artifact name (recordings and logs are globbed).
ARTIFACT_FILES = {"capture": "capture.pcap", "journal": "journal.json", "ladder": "ladder.txt",
                  "report_json": "report.json", "report_html": "report.html",
                  "timeline": "timeline.png"}
_ENDS_ACTION = ("ACTION_SUCCESSFUL", "ACTION_FAILED")


def build_report(result: ProfileResult, wire: WireAnalysis | None, journal: Sequence[dict],
                 run_dir: Path, updates: Sequence[dict],
                 prompts: Mapping[str, np.ndarray] | None = None) -> dict:
    """The report document of a run (see the module docstring for its times)."""
    view = JournalView(journal)
    t0 = _origin(wire, view, updates)
    roles = _roles(wire, view)

    def rel(epoch: float | None) -> float | None:
        return None if epoch is None else round(epoch - t0, 6)

    def rel_ns(ts_ns: int) -> float:
        return round(ts_ns / 1e9 - t0, 6)

    streams = list(wire.rtp_streams) if wire else []
    return {
        "schema_version": SCHEMA_VERSION,
        "profile": result.profile,
        "path": str(result.path),
        "run_dir": str(result.run_dir),
        "verdict": result.verdict,
        "checks": [{"name": c.name, "passed": c.passed, "detail": c.detail,
                    "measured": _jsonable(c.measured)} for c in result.checks],
        "error": result.error,
        "error_detail": result.error_detail,
        "problems": [{**p, "time": rel(p["time"])} for p in result.problems],
        "duration_s": result.duration_s,
        "update_to_switch_ms": result.update_to_switch_ms,
        "t0": t0,
        "artifacts": _artifacts(run_dir),
        "endpoints": roles,
        "sip": [{"time": rel_ns(m.ts_ns), "frame": m.number, "call_id": m.message.call_id,
                 "src": address(m.src), "dst": address(m.dst), "transport": m.transport,
                 "summary": m.summary} for m in (wire.sip if wire else ())],
        "rtp_streams": [_stream_row(s, roles, rel_ns) for s in streams],
        "events": _events(view, rel),
        "updates": _updates(updates, wire, rel, rel_ns),
        "media": _media_spans(view, rel),
        "audio": [{"src": address(s.src), "dst": address(s.dst), "ssrc": f"0x{s.ssrc:08X}",
                   "segments": [_segment(seg, rel_ns) for seg in content_segments(label_packets(s, prompts))]}
                  for s in streams if roles.get(address(s.src)) == "stub"],
        "dtmf": [{"time": rel_ns(ev.start_ts_ns), "src": address(s.src), "dst": address(s.dst),
                  "digit": ev.digit, "event": ev.event, "duration_ms": round(ev.duration_ms, 3),
                  "ended": ev.ended} for s in streams for ev in dtmf_events(s)],
        "capture": None if wire is None else build_capture_document(
            wire, options=Options(prompts=prompts or {}, transcribe=False), t0=t0,
            roles={**sip_roles_of(wire), **roles}),
    }


def write_report_json(report: dict, path: Path) -> Path:
    path.write_text(json.dumps(report, indent=2, default=str))
    return path


def _jsonable(value):
    """`value` as JSON would give it back (a value JSON cannot hold becomes its str)."""
    return json.loads(json.dumps(value, default=str))


def _origin(wire: WireAnalysis | None, journal: JournalView, updates: Sequence[dict]) -> float:
    if wire is not None and wire.sip:
        return wire.sip[0].ts_ns / 1e9
    if wire is not None and wire.frames:
        return wire.start_ns / 1e9
    return next((t for t in [*(e.time for e in journal.typed), *(u["time"] for u in updates)]), 0.0)


def _artifacts(run_dir: Path) -> dict:
    found = {name: file for name, file in ARTIFACT_FILES.items()
             if (run_dir / file).exists() or name in ("report_json", "report_html", "timeline")}
    found["recordings"] = sorted(p.name for p in run_dir.glob("*.wav"))
    found["logs"] = sorted(p.name for p in run_dir.glob("*.log"))
    found["aws"] = sorted(p.relative_to(run_dir).as_posix() for p in run_dir.glob("aws/**/*")
                          if p.is_file())
    return found


def _roles(wire: WireAnalysis | None, journal: JournalView) -> dict[str, str]:
    """'host:port' -> 'stub', 'caller' or 'callee', from the journal's calls and the capture.

    A call that arrived makes the INVITE's destination and the stub's RTP port the stub's,
    and their peers the caller's; a call the stub placed does the same with 'callee'.
    With several calls, the peers are numbered ('caller 2').
    """
    calls = journal.legs()
    if wire is None or not calls:
        return {}
    roles: dict[str, str] = {}
    for n, call in enumerate(calls, 1):
        peer = "caller" if call.direction == "inbound" else "callee"
        peer += f" {n}" if len(calls) > 1 else ""
        invite = next((m for m in wire.sip if m.message.call_id == call.sip_call_id
                       and isinstance(m.message, SipRequest) and m.message.method == "INVITE"), None)
        if invite is not None:
            stub, other = (invite.dst, invite.src) if peer.startswith("caller") else (invite.src, invite.dst)
            roles[address(stub)], roles[address(other)] = "stub", peer
        for s in wire.rtp_streams:
            for mine, theirs in ((s.src, s.dst), (s.dst, s.src)):
                if mine[1] == call.rtp_port and address(mine) not in roles:
                    roles[address(mine)], roles[address(theirs)] = "stub", peer
    return roles


def _stream_row(s: RtpStream, roles: Mapping[str, str], rel_ns) -> dict:
    src, dst = address(s.src), address(s.dst)
    direction = f"{roles[src]} → {roles[dst]}" if src in roles and dst in roles else None
    st = s.stats
    return {"src": src, "dst": dst, "direction": direction, "ssrc": f"0x{s.ssrc:08X}",
            "codec": ", ".join(s.encoding_name(pt) or str(pt) for pt in s.payload_types),
            "payload_types": list(s.payload_types), "packets": st.packets,
            "expected": st.expected, "lost": st.lost, "max_delta_ms": round(st.max_delta_ms, 3),
            "max_jitter_ms": round(st.max_jitter_ms, 3), "mean_jitter_ms": round(st.mean_jitter_ms, 3),
            "start": rel_ns(s.start_ts_ns), "end": rel_ns(s.end_ts_ns), "call_id": s.call_id}


def action_summary(action: Mapping) -> str:
    """'PlayAudio(Repeat=5, Key=tone-440hz.wav)': the type and up to three parameter values."""
    leaves: list[str] = []

    def walk(params: Mapping) -> None:
        for key, value in params.items():
            if isinstance(value, Mapping):
                walk(value)
            elif key not in ("ParticipantTag", "CallId", "Type", "BucketName"):
                text = json.dumps(value) if not isinstance(value, str) else value
                leaves.append(f"{key}={text if len(text) <= 40 else text[:39] + '…'}")

    params = action.get("Parameters")
    if isinstance(params, Mapping):
        walk(params)
    return f"{action.get('Type', '?')}({', '.join(leaves[:3])}{', …' if len(leaves) > 3 else ''})"


def response_summary(entry: HandlerResponded | None) -> str:
    """One line for a handler response journal entry."""
    if entry is None:
        return "no response"
    if entry.failed:
        errors = "; ".join(str(e) for e in entry.errors)
        return f"failed: {errors}" if errors else "failed"
    if entry.invalid_json is not None:
        return f"invalid response: {str(entry.invalid_json)[:80]}"
    response = entry.response
    actions = response.get("Actions") if isinstance(response, Mapping) else None
    if not isinstance(actions, list):
        return "no Actions"
    if not actions:
        return "no actions"
    return ", ".join(action_summary(a) if isinstance(a, Mapping) else str(a) for a in actions)


def _events(journal: JournalView, rel) -> list[dict]:
    responses = {(r.transaction_id, r.sequence): r for r in journal.of(HandlerResponded)}
    out = []
    for e in journal.of(HandlerInvoked):
        event, resp = e.event, responses.get((e.transaction_id, e.sequence))
        action = event.get("ActionData") or {}
        out.append({"time": rel(e.time), "transaction_id": e.transaction_id,
                    "sequence": event.get("Sequence", e.sequence),
                    "invocation_event_type": event.get("InvocationEventType"),
                    "action_data_type": action.get("Type"),
                    "response_time": rel(resp.time) if resp else None,
                    "handler_ms": resp.duration_ms if resp else None,
                    "failed": bool(resp and resp.failed),
                    "ignored": e.ignore_response,
                    "response": response_summary(resp),
                    "error": event_error(event),
                    "requests": [{"request_id": r["request_id"], "log": r["log"]}
                                 for r in (resp.requests if resp else [])]})
    return out


def _updates(updates: Sequence[dict], wire: WireAnalysis | None, rel, rel_ns) -> list[dict]:
    """The runner's update records, each with the time its request crossed the wire."""
    seen: dict[str, int] = {}
    out = []
    for u in updates:
        tx = u["transaction_id"]
        k = seen[tx] = seen.get(tx, -1) + 1
        on_wire = wire.update_requests(tx) if wire else []
        out.append({"time": rel(u["time"]),
                    "wire_time": rel_ns(on_wire[k].ts_ns) if k < len(on_wire) else None,
                    "transaction_id": tx, "arguments": _jsonable(u.get("arguments")),
                    "status": u.get("status"), "error": u.get("error")})
    return out


def _media_spans(journal: JournalView, rel) -> list[dict]:
    """What the stub played on each leg, from its media_started entries to the first of:
    media_stopped, the next media_started or the hangup of that leg, the end of its SIP
    dialog, or an ACTION_SUCCESSFUL/ACTION_FAILED of its transaction (end None: never)."""
    legs = {leg.sip_call_id: leg.call_id for leg in journal.legs()}
    entries = journal.typed
    out = []
    for i, start in enumerate(entries):
        if not isinstance(start, MediaStarted):
            continue
        end = next((e.time for e in entries[i + 1:] if _ends_media(e, start, legs)), None)
        out.append({"start": rel(start.time), "end": rel(end),
                    "transaction_id": start.transaction_id, "call_id": start.call_id,
                    "media": start.media, "label": start.label})
    return out


def _ends_media(e: Entry, start: MediaStarted, legs: Mapping[str, str]) -> bool:
    if isinstance(e, (MediaStopped, MediaStarted, Hangup)):
        return e.call_id == start.call_id
    if isinstance(e, SipEnded):
        return legs.get(e.sip_call_id) == start.call_id
    return isinstance(e, HandlerInvoked) and e.transaction_id == start.transaction_id \
        and e.event_type in _ENDS_ACTION


def _segment(seg, rel_ns) -> dict:
    return {"start": rel_ns(seg.start_ts_ns), "end": rel_ns(seg.end_ts_ns), "kind": seg.kind,
            "label": seg.label, "packets": seg.packets, "prompt": seg.prompt,
            "frequency_hz": None if seg.frequency_hz is None else round(seg.frequency_hz, 1)}
