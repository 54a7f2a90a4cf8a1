"""report.html: one self-contained page per profile run, rendered from its report document.

Everything taken from the report is escaped; the timeline PNG is embedded as a data URI
(and linked); the SIP ladder is drawn as inline SVG, one diagram per dialog, like sngrep.
"""
from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from html import escape
from pathlib import Path

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1320px;color:#222;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd}
.verdict{display:inline-block;padding:2px 10px;border-radius:4px;color:#fff;font-weight:600}
.pass{background:#2e7d32}.fail{background:#c62828}.error{background:#6a1b9a}
.meta{color:#555}.meta code{color:#222}
table{border-collapse:collapse;margin:4px 0;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#2e7d32;font-weight:600}.bad{color:#c62828;font-weight:600}
pre{background:#f7f7f7;padding:8px;overflow:auto;white-space:pre-wrap}
img.timeline{max-width:100%;border:1px solid #ddd}
svg.ladder{display:block;margin:6px 0 18px;font:12px system-ui,sans-serif}
.ladder .req{stroke:#1f5fbf;fill:#1f5fbf}.ladder .r1{stroke:#777;fill:#777}
.ladder .r2{stroke:#2e7d32;fill:#2e7d32}.ladder .r3{stroke:#c62828;fill:#c62828}
.ladder .note{stroke:#e8000b;fill:#e8000b}
.ladder line{stroke-width:1.5}.ladder line.note{stroke-dasharray:6 4}
.ladder text{stroke:none}.ladder .life{stroke:#bbb;stroke-dasharray:4 4}
.ladder .head{fill:#eef3fb;stroke:#90a4c8}.empty{color:#777}
"""
_COLUMN = 250
_LEFT = 90
_ROW = 30
_TOP = 62


class _Html(str):
    """Markup that is already escaped."""


def _cell(value) -> str:
    if isinstance(value, _Html):
        return value
    if value is None:
        return ""
    if isinstance(value, float):
        return escape(f"{value:.3f}")
    return escape(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))


def _table(head: Sequence[str], rows: Iterable[Sequence], numeric: Iterable[int] = (),
           id_: str = "") -> str:
    rows = list(rows)
    if not rows:
        return '<p class="empty">none</p>'
    numeric = set(numeric)
    attrs = f' id="{escape(id_)}"' if id_ else ""
    out = [f"<table{attrs}><tr>"
           + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>"]
    for row in rows:
        out.append("<tr>" + "".join(
            f'<td{" class=num" if i in numeric else ""}>{_cell(v)}</td>' for i, v in enumerate(row))
            + "</tr>")
    return "".join(out) + "</table>"


def _time(t: float | None) -> str:
    return "" if t is None else f"{t:+.3f} s"


def render_page(report: dict, timeline: Path) -> str:
    """The HTML page of a report; `timeline` is the PNG to embed (linked by its file name)."""
    verdict = report["verdict"]
    latency = report["update_to_switch_ms"]
    picture = base64.b64encode(timeline.read_bytes()).decode("ascii")
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(report['profile'])}: {escape(verdict)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{escape(report['profile'])} "
        f'<span class="verdict {escape(verdict)}" id="verdict">{escape(verdict.upper())}</span></h1>',
        f'<p class="meta">profile <code>{escape(report["path"])}</code> · duration '
        f'{report["duration_s"]:.3f} s · update-to-switch '
        f'{escape(f"{latency:.1f} ms" if latency is not None else "–")} · artifacts '
        f'<code>{escape(report["run_dir"])}</code> · report schema v{report["schema_version"]}</p>',
    ]
    if report["error"]:
        parts.append(f'<pre id="error">{escape(report["error"])}</pre>')
    parts += ["<h2>Checks</h2>", _table(
        ("check", "result", "detail", "measured"),
        ([c["name"], _Html('<span class="ok">ok</span>' if c["passed"] else '<span class="bad">FAIL</span>'),
          c["detail"], c["measured"] or None] for c in report["checks"]), id_="checks")]
    parts += ["<h2>Timeline</h2>",
              f'<a href="{escape(report["artifacts"]["timeline"])}"><img class="timeline" id="timeline" '
              f'alt="timeline of {escape(report["profile"])}" src="data:image/png;base64,{picture}"></a>']
    parts += ['<h2>SIP ladder</h2><div id="ladder">', _ladders(report), "</div>"]
    parts += ["<h2>RTP streams</h2>", _table(
        ("direction", "src", "dst", "SSRC", "codec", "packets", "lost", "max Δ ms",
         "max jitter ms", "mean jitter ms", "first", "last"),
        ([s["direction"], s["src"], s["dst"], s["ssrc"], s["codec"], s["packets"], s["lost"],
          s["max_delta_ms"], s["max_jitter_ms"], s["mean_jitter_ms"], _time(s["start"]),
          _time(s["end"])] for s in report["rtp_streams"]), numeric=range(5, 12), id_="streams")]
    parts += ["<h2>Handler events</h2>", _table(
        ("time", "Sequence", "InvocationEventType", "ActionData", "response", "handler ms",
         "RequestId (log)"),
        ([_time(e["time"]), e["sequence"], e["invocation_event_type"], e["action_data_type"],
          e["response"] + (" (ignored by the service)" if e["ignored"] else ""), e["handler_ms"],
          _request_links(e["requests"])]
         for e in report["events"]), numeric=(0, 1, 5), id_="events")]
    parts += ["<h2>Handler log</h2>", _handler_log(report["events"])]
    parts += ["<h2>Update requests</h2>", _table(
        ("sent", "on the wire", "TransactionId", "Arguments", "status", "error"),
        ([_time(u["time"]), _time(u["wire_time"]), u["transaction_id"], u["arguments"],
          u["status"], u["error"]] for u in report["updates"]), numeric=(0, 1, 4), id_="updates")]
    parts += ["<h2>What the stub played (journal)</h2>", _table(
        ("from", "to", "CallId", "media"),
        ([_time(m["start"]), _time(m["end"]) or "end of capture", m["call_id"], m["label"]]
         for m in report["media"]), numeric=(0, 1))]
    for audio in report["audio"]:
        parts += [f"<h2>Audio on the wire {escape(audio['src'])} → {escape(audio['dst'])} "
                  f"(SSRC {escape(audio['ssrc'])})</h2>", _table(
                      ("from", "to (last packet)", "audio", "packets"),
                      ([_time(s["start"]), _time(s["end"]), s["label"], s["packets"]]
                       for s in audio["segments"]), numeric=(0, 1, 3))]
    parts += ["<h2>DTMF (RFC 4733)</h2>", _table(
        ("time", "src", "dst", "digit", "event", "duration ms", "ended"),
        ([_time(d["time"]), d["src"], d["dst"], d["digit"], d["event"], d["duration_ms"],
          d["ended"]] for d in report["dtmf"]), numeric=(0, 4, 5), id_="dtmf")]
    parts += ["<h2>Artifacts</h2><ul>", *_artifact_links(report["artifacts"]), "</ul></body></html>"]
    return "\n".join(parts)


def _request_links(requests: list[dict]) -> _Html:
    """Each attempt's RequestId, linked to its lines in the handler log section."""
    return _Html("<br>".join(f'<a href="#log-{escape(r["request_id"])}">{escape(r["request_id"])}</a>'
                             for r in requests))


def _handler_log(events: list[dict]) -> str:
    """The handler log as CloudWatch shows it, one block per invocation attempt."""
    blocks = [f'<pre id="log-{escape(r["request_id"])}">{escape(chr(10).join(r["log"]))}</pre>'
              for e in events for r in e["requests"] if r["log"]]
    return "".join(blocks) or '<p class="empty">none</p>'


def _artifact_links(artifacts: dict) -> list[str]:
    files = [f for k, f in artifacts.items() if isinstance(f, str)]
    files += artifacts["recordings"] + artifacts["logs"] + artifacts["aws"]
    return [f'<li><a href="{escape(f)}">{escape(f)}</a></li>' for f in files]


def _ladders(report: dict) -> str:
    dialogs: dict[str, list[dict]] = {}
    for m in report["sip"]:
        dialogs.setdefault(m["call_id"], []).append(m)
    if not dialogs:
        return '<p class="empty">no SIP in the capture</p>'
    return "".join(_ladder(n, call_id, msgs, report) for n, (call_id, msgs) in enumerate(dialogs.items()))


def _klass(summary: str) -> str:
    code = summary[:1]
    if not code.isdigit():
        return "req"
    return {"1": "r1", "2": "r2"}.get(code, "r3")


def _ladder(n: int, call_id: str, msgs: list[dict], report: dict) -> str:
    """One dialog as an SVG sequence diagram; update requests sent during it are red notes."""
    roles = report["endpoints"]
    columns: list[str] = []
    for m in msgs:
        for ep in (m["src"], m["dst"]):
            if ep not in columns:
                columns.append(ep)
    x = {ep: _LEFT + _COLUMN // 2 + i * _COLUMN for i, ep in enumerate(columns)}
    first, last = msgs[0]["time"], msgs[-1]["time"]
    rows: list[tuple[float, str, dict]] = [(m["time"], "sip", m) for m in msgs]
    rows += [(u["wire_time"] if u["wire_time"] is not None else u["time"], "update", u)
             for u in report["updates"]
             if first <= (u["wire_time"] if u["wire_time"] is not None else u["time"]) <= last]
    rows.sort(key=lambda r: r[0])
    width = _LEFT + _COLUMN * len(columns)
    height = _TOP + _ROW * len(rows) + 20
    out = [f'<svg class="ladder" id="ladder-{n}" xmlns="http://www.w3.org/2000/svg" '
           f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">',
           f"<title>SIP ladder of Call-ID {escape(call_id)}</title><defs>"]
    for klass in ("req", "r1", "r2", "r3"):
        out.append(f'<marker id="a{n}-{klass}" class="{klass}" viewBox="0 0 10 10" refX="10" refY="5" '
                   f'markerWidth="8" markerHeight="8" orient="auto-start-reverse">'
                   f'<path d="M0,0 L10,5 L0,10 z"/></marker>')
    out.append("</defs>")
    out.append(f'<text x="4" y="14" font-weight="600">Call-ID {escape(call_id)}</text>')
    for ep, cx in x.items():
        out.append(f'<rect class="head" x="{cx - 100}" y="22" width="200" height="32" rx="4"/>'
                   f'<text x="{cx}" y="36" text-anchor="middle" font-weight="600">'
                   f'{escape(roles.get(ep, "endpoint"))}</text>'
                   f'<text x="{cx}" y="50" text-anchor="middle">{escape(ep)}</text>'
                   f'<line class="life" x1="{cx}" y1="54" x2="{cx}" y2="{height - 6}"/>')
    for i, (t, kind, item) in enumerate(rows):
        y = _TOP + _ROW * i + 18
        out.append(f'<text x="4" y="{y + 4}" fill="#555">{escape(_time(t - first))}</text>')
        if kind == "update":
            label = f"UpdateSipMediaApplicationCall → HTTP {item['status']} {item['error'] or ''}".strip()
            out.append(f'<g class="note"><line class="note" x1="{_LEFT}" y1="{y}" x2="{width - 4}" y2="{y}"/>'
                       f'<text x="{_LEFT + 6}" y="{y - 5}">{escape(label)}</text></g>')
            continue
        klass, x1, x2 = _klass(item["summary"]), x[item["src"]], x[item["dst"]]
        tip = f"frame {item['frame']} · {item['transport']} · {item['src']} → {item['dst']}"
        out.append(f'<g class="{klass}"><title>{escape(tip)}</title>')
        if x1 == x2:
            out.append(f'<path d="M{x1},{y - 8} h40 v12 h-40" fill="none" '
                       f'marker-end="url(#a{n}-{klass})"/><text x="{x1 + 46}" y="{y}">'
                       f'{escape(item["summary"])}</text></g>')
            continue
        transport = "" if item["transport"] == "udp" else f" [{item['transport']}]"
        out.append(f'<line x1="{x1}" y1="{y}" x2="{x2}" y2="{y}" marker-end="url(#a{n}-{klass})"/>'
                   f'<text x="{(x1 + x2) / 2}" y="{y - 5}" text-anchor="middle">'
                   f'{escape(item["summary"] + transport)}</text></g>')
    out.append("</svg>")
    return "".join(out)
