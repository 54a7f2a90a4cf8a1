"""The parts of a report page drawn from a capture document (`capture_report`).

The call list; per call the SIP ladder as inline SVG (one column per endpoint, one arrow per
message, ICMP errors as red dashed arrows, notes such as update requests as red lines) with
the call's RTP streams as lanes beside it, placed on the same time axis; clicking an arrow
shows the full message and its SDP. Per stream: statistics, the per-packet delta and jitter
graphs, RTCP reports, the E-model estimate with its inputs, DTMF, what the audio carries and
the words recognised, an audio player and a spectrogram. Everything taken from the document
is escaped; the page needs nothing but itself.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from html import escape

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1400px;color:#222;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd}
h3{font-size:15px;margin:18px 0 6px}
.verdict{display:inline-block;padding:2px 10px;border-radius:4px;color:#fff;font-weight:600}
.pass{background:#2e7d32}.fail{background:#c62828}.error{background:#6a1b9a}
.meta{color:#555}.meta code{color:#222}.warn{color:#8a4b00;background:#fff4e0;padding:4px 8px}
table{border-collapse:collapse;margin:4px 0;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#2e7d32;font-weight:600}.bad{color:#c62828;font-weight:600}
pre{background:#f7f7f7;padding:8px;overflow:auto;white-space:pre-wrap;margin:4px 0}
img.timeline{max-width:100%;border:1px solid #ddd}img.spectrogram{width:100%;height:128px;border:1px solid #ddd}
.ladder-wrap{overflow:auto}
#message-panel{position:fixed;right:12px;bottom:12px;width:460px;max-height:70vh;overflow:auto;
background:#fff;border:1px solid #90a4c8;box-shadow:0 2px 12px rgba(0,0,0,.25);padding:8px;display:none}
#message-panel.open{display:block}#message-panel h3{margin:0 24px 4px 0;font-size:13px}
#message-close{position:absolute;right:8px;top:4px;cursor:pointer;border:0;background:none;font-size:16px}
svg.ladder{display:block;margin:6px 0 18px;font:12px system-ui,sans-serif}
.ladder .req{stroke:#1f5fbf;fill:#1f5fbf}.ladder .r1{stroke:#777;fill:#777}
.ladder .r2{stroke:#2e7d32;fill:#2e7d32}.ladder .r3{stroke:#c62828;fill:#c62828}
.ladder .note,.ladder .icmp{stroke:#e8000b;fill:#e8000b}.ladder .rtp{stroke:#5b8f58;fill:#5b8f58}
.ladder line.rtp{stroke-dasharray:2 3}
.ladder line{stroke-width:1.5}.ladder line.note,.ladder .icmp line{stroke-dasharray:6 4}
.ladder g[data-msg]{cursor:pointer}.ladder g[data-msg]:hover text{font-weight:700}
.ladder g.selected text{font-weight:700;text-decoration:underline}
.ladder text{stroke:none}.ladder .life{stroke:#bbb;stroke-dasharray:4 4}
.ladder .head{fill:#eef3fb;stroke:#90a4c8}.ladder .lane{fill:#dfeede;stroke:#5b8f58}
.ladder .lane-text{fill:#23461f;font-size:11px}.empty{color:#777}
svg.graph{display:block;font:11px system-ui,sans-serif;background:#fcfcfc;border:1px solid #eee}
.graph .axis{stroke:#999}.graph .grid{stroke:#eee}.graph .delta{stroke:#1f77b4;fill:none}
.graph .jitter{stroke:#d62728;fill:none}.graph text{fill:#444}
.stream{border-top:1px solid #eee;margin-top:14px}.mos{font-size:18px;font-weight:700}
"""

SCRIPT = """
(function () {
  var data = document.getElementById('sip-messages');
  if (!data) { return; }
  var messages = JSON.parse(data.textContent);
  var title = document.getElementById('message-title');
  var text = document.getElementById('message-text');
  var sdp = document.getElementById('message-sdp');
  var panel = document.getElementById('message-panel');
  document.getElementById('message-close').addEventListener('click', function () {
    panel.classList.remove('open');
  });
  function show(group) {
    var m = messages[Number(group.getAttribute('data-msg'))];
    document.querySelectorAll('.ladder g.selected').forEach(function (g) { g.classList.remove('selected'); });
    group.classList.add('selected');
    title.textContent = 'frame ' + m.frame + ' · ' + m.transport + ' · ' + m.src + ' → ' + m.dst;
    text.textContent = m.text;
    sdp.textContent = m.sdp === null ? '' : 'SDP\\n' + m.sdp;
    panel.classList.add('open');
  }
  document.querySelectorAll('.ladder g[data-msg]').forEach(function (group) {
    group.addEventListener('click', function () { show(group); });
  });
})();
"""
_COLUMN = 230
_LEFT = 84
_ROW = 30
_TOP = 62
_LANE = 26
_GRAPH_W, _GRAPH_H = 640, 150


class Html(str):
    """Markup that is already escaped."""


def cell(value) -> str:
    if isinstance(value, Html):
        return value
    if value is None:
        return ""
    if isinstance(value, float):
        return escape(f"{value:.3f}")
    return escape(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))


def table(head: Sequence[str], rows: Iterable[Sequence], numeric: Iterable[int] = (), id_: str = "") -> str:
    rows = list(rows)
    if not rows:
        return '<p class="empty">none</p>'
    numeric = set(numeric)
    attrs = f' id="{escape(id_)}"' if id_ else ""
    out = [f"<table{attrs}><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>"]
    for row in rows:
        out.append("<tr>" + "".join(f'<td{" class=num" if i in numeric else ""}>{cell(v)}</td>'
                                    for i, v in enumerate(row)) + "</tr>")
    return "".join(out) + "</table>"


def seconds(t: float | None) -> str:
    return "" if t is None else f"{t:+.3f} s"


def capture_sections(doc: dict, media: dict[int, dict[str, str]], notes: Sequence[dict] = ()) -> str:
    """The call list, the calls with their ladders and streams, the streams of no call, and
    the data the ladder's click handler reads. `notes` are {time, label} lines drawn across
    the ladder of the call they fall in (e.g. update requests)."""
    parts = []
    for warning in doc["capture"]["warnings"] + doc["notes"]:
        parts.append(f'<p class="warn">{escape(warning)}</p>')
    parts += ["<h2>Calls</h2>", table(
        ("call", "Call-ID", "from", "to", "start", "duration s", "final status", "streams",
         "worst loss %", "worst jitter ms", "worst MOS", "ICMP errors"),
        ([Html(f'<a href="#call-{n}">#{n + 1}</a>'), c["call_id"], c["from"], c["to"],
          seconds(c["start"]), c["duration_s"],
          f"{c['final_status']} {c['final_reason'] or ''}".strip() if c["final_status"] else "–",
          len(c["streams"]), c["worst_loss_percent"], c["worst_jitter_ms"], c["worst_mos"],
          c["icmp_errors"]] for n, c in enumerate(doc["calls"])),
        numeric=(4, 5, 7, 8, 9, 10, 11), id_="calls")]
    index = {id(m): i for i, m in enumerate(doc["messages"])}
    for n, call in enumerate(doc["calls"]):
        messages = [m for m in doc["messages"] if m["call_id"] == call["call_id"]]
        streams = [doc["streams"][i] for i in call["streams"]]
        icmp = [e for e in doc["icmp"] if e["call_id"] == call["call_id"]]
        parts.append(f'<h2 id="call-{n}">Call #{n + 1}: {escape(call["from"])} → {escape(call["to"])}</h2>')
        parts.append('<div class="ladder-wrap">'
                     + ladder(n, call, messages, icmp, streams, notes, doc["endpoints"], index) + "</div>")
        parts += [stream_section(s, media.get(s["index"])) for s in streams]
    loose = [s for s in doc["streams"] if not any(s["index"] in c["streams"] for c in doc["calls"])]
    if loose:
        parts.append("<h2>RTP streams of no call in the capture</h2>")
        parts += [stream_section(s, media.get(s["index"])) for s in loose]
    if not doc["calls"] and doc["icmp"]:
        parts += ["<h2>ICMP errors</h2>", table(("time", "frame", "error", "from", "about"), (
            [seconds(e["time"]), e["frame"], e["summary"], e["reporter"],
             f"{e['original_src']} → {e['original_dst']}"] for e in doc["icmp"]), numeric=(0, 1))]
    parts.append('<div id="message-panel"><button id="message-close" title="close">×</button>'
                 '<h3 id="message-title"></h3><pre id="message-text"></pre><pre id="message-sdp"></pre></div>')
    data = json.dumps([{k: m[k] for k in ("frame", "transport", "src", "dst", "text", "sdp")}
                       for m in doc["messages"]], ensure_ascii=False)
    parts.append('<script type="application/json" id="sip-messages">'
                 + data.replace("</", "<\\/") + "</script>")
    parts.append(f"<script>{SCRIPT}</script>")
    return "\n".join(parts)


def _klass(summary: str) -> str:
    code = summary[:1]
    if not code.isdigit():
        return "req"
    return {"1": "r1", "2": "r2"}.get(code, "r3")


def ladder(n: int, call: dict, messages: list[dict], icmp: list[dict], streams: list[dict],
           notes: Sequence[dict], roles: dict, index: dict) -> str:
    """One dialog as an SVG sequence diagram with its streams as lanes on the right."""
    columns: list[str] = []
    for m in messages:
        for ep in (m["src"], m["dst"]):
            if ep not in columns:
                columns.append(ep)
    for e in icmp:
        for ep in (e["original_dst"], e["original_src"]):
            if ep not in columns:
                columns.append(ep)
    hosts = {}
    for s in streams:
        for ep in (s["src"], s["dst"]):
            same_host = next((c for c in columns if c.rsplit(":", 1)[0] == ep.rsplit(":", 1)[0]), None)
            if same_host is None:
                columns.append(ep)
            hosts[ep] = same_host or ep
    x = {ep: _LEFT + _COLUMN // 2 + i * _COLUMN for i, ep in enumerate(columns)}
    first, last = call["start"], call["end"]
    rows: list[tuple[float, str, dict]] = [(m["time"], "sip", m) for m in messages]
    rows += [(e["time"], "icmp", e) for e in icmp]
    rows += [(s["start"], "rtp", s) for s in streams]
    rows += [(note["time"], "note", note) for note in notes if first <= note["time"] <= last]
    rows.sort(key=lambda r: r[0])
    lanes_x = _LEFT + _COLUMN * len(columns) + 20
    width = lanes_x + _LANE * len(streams) + (300 if streams else 0)
    height = _TOP + _ROW * len(rows) + 20
    times = [r[0] for r in rows]
    ys = [_TOP + _ROW * i + 18 for i in range(len(rows))]
    out = [f'<svg class="ladder" id="ladder-{n}" xmlns="http://www.w3.org/2000/svg" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" role="img">',
           f"<title>SIP ladder of Call-ID {escape(call['call_id'])}</title><defs>"]
    for klass in ("req", "r1", "r2", "r3", "icmp", "rtp"):
        out.append(f'<marker id="a{n}-{klass}" class="{klass}" viewBox="0 0 10 10" refX="10" refY="5" '
                   f'markerWidth="8" markerHeight="8" orient="auto-start-reverse">'
                   f'<path d="M0,0 L10,5 L0,10 z"/></marker>')
    out.append("</defs>")
    out.append(f'<text x="4" y="14" font-weight="600">Call-ID {escape(call["call_id"])}</text>')
    for ep, cx in x.items():
        out.append(f'<rect class="head" x="{cx - 100}" y="22" width="200" height="32" rx="4"/>'
                   f'<text x="{cx}" y="36" text-anchor="middle" font-weight="600">'
                   f'{escape(roles.get(ep, "endpoint"))}</text>'
                   f'<text x="{cx}" y="50" text-anchor="middle">{escape(ep)}</text>'
                   f'<line class="life" x1="{cx}" y1="54" x2="{cx}" y2="{height - 6}"/>')
    for y, (t, kind, item) in zip(ys, rows):
        out.append(f'<text x="4" y="{y + 4}" fill="#555">{escape(seconds(t - first))}</text>')
        if kind == "note":
            out.append(f'<g class="note"><line class="note" x1="{_LEFT}" y1="{y}" x2="{lanes_x - 10}" '
                       f'y2="{y}"/><text x="{_LEFT + 6}" y="{y - 5}">{escape(item["label"])}</text></g>')
            continue
        if kind == "rtp":
            x1, x2 = x[hosts[item["src"]]], x[hosts[item["dst"]]]
            label = f"RTP #{item['index'] + 1} ({item['codec']})"
            out.append(f'<g class="rtp"><title>{escape(_lane_tip(item))}</title>'
                       f'<line class="rtp" x1="{x1}" y1="{y}" x2="{x2}" y2="{y}" marker-end="url(#a{n}-rtp)"/>'
                       f'<text x="{(x1 + x2) / 2}" y="{y - 5}" text-anchor="middle">{escape(label)}</text></g>')
            continue
        if kind == "icmp":
            x1, x2, klass, label = x[item["original_dst"]], x[item["original_src"]], "icmp", item["summary"]
            tip, attrs = f"frame {item['frame']} · ICMP from {item['reporter']}", ""
        else:
            x1, x2, klass = x[item["src"]], x[item["dst"]], _klass(item["summary"])
            label = item["summary"] + ("" if item["transport"] == "udp" else f" [{item['transport']}]")
            tip = f"frame {item['frame']} · {item['transport']} · {item['src']} → {item['dst']}"
            attrs = f' data-msg="{index[id(item)]}"'
        out.append(f'<g class="{klass}"{attrs}><title>{escape(tip)}</title>')
        if x1 == x2:
            out.append(f'<path d="M{x1},{y - 8} h40 v12 h-40" fill="none" marker-end="url(#a{n}-{klass})"/>'
                       f'<text x="{x1 + 46}" y="{y}">{escape(label)}</text></g>')
            continue
        out.append(f'<line x1="{x1}" y1="{y}" x2="{x2}" y2="{y}" marker-end="url(#a{n}-{klass})"/>'
                   f'<text x="{(x1 + x2) / 2}" y="{y - 5}" text-anchor="middle">{escape(label)}</text>'
                   f'<rect x="{min(x1, x2)}" y="{y - 18}" width="{abs(x2 - x1)}" height="22" fill="transparent" '
                   f'stroke="none"/></g>')
    labels_x = lanes_x + _LANE * len(streams) + 6
    for k, s in enumerate(streams):
        lx = lanes_x + k * _LANE
        top, bottom = _y_at(s["start"], times, ys), _y_at(s["end"], times, ys)
        bottom = max(bottom, top + 6)
        out.append(f'<a href="#stream-{s["index"]}" id="lane-{s["index"]}"><g><title>{escape(_lane_tip(s))}</title>'
                   f'<rect class="lane" x="{lx}" y="{top}" width="{_LANE - 10}" height="{bottom - top}" rx="3"/>'
                   f'<text class="lane-text" x="{lx + (_LANE - 10) / 2}" y="{top - 3}" text-anchor="middle">'
                   f'{s["index"] + 1}</text>'
                   f'<text class="lane-text" x="{labels_x}" y="{_TOP + 8 + 14 * k}">{escape(_lane_label(s))}</text>'
                   f'</g></a>')
    out.append("</svg>")
    return "".join(out)


def _y_at(t: float, times: list[float], ys: list[int]) -> float:
    """The y of time t: linear between the rows around it, clamped to the first and last."""
    if not times:
        return _TOP
    if t <= times[0]:
        return ys[0]
    for (t1, y1), (t2, y2) in zip(zip(times, ys), zip(times[1:], ys[1:])):
        if t <= t2:
            return y1 if t2 == t1 else y1 + (y2 - y1) * (t - t1) / (t2 - t1)
    return ys[-1]


def _lane_label(s: dict) -> str:
    return f"#{s['index'] + 1} {s['codec']} {s['direction'] or s['src'] + ' → ' + s['dst']}"


def _lane_tip(s: dict) -> str:
    st = s["stats"]
    mos = f", MOS {s['quality']['mos']}" if s["quality"] else ""
    return (f"RTP {s['src']} → {s['dst']} SSRC {s['ssrc']} {s['codec']}: {st['packets']} packets, "
            f"{st['lost']} lost, max jitter {st['max_jitter_ms']} ms{mos}")


def stream_section(s: dict, media: dict[str, str] | None) -> str:
    """One stream: statistics, graphs, RTCP, quality, DTMF, audio."""
    st = s["stats"]
    title = f"Stream #{s['index'] + 1}: {s['src']} → {s['dst']} SSRC {s['ssrc']} ({s['codec']})"
    parts = [f'<div class="stream" id="stream-{s["index"]}"><h3>{escape(title)}</h3>',
             f'<p class="meta">{escape(s["direction"] or "")} · found by {escape(s["found_by"])} · '
             f'{escape(seconds(s["start"]))} to {escape(seconds(s["end"]))}</p>',
             table(("packets", "expected", "lost", "lost %", "sequence errors", "min Δ ms", "mean Δ ms",
                    "max Δ ms", "min jitter ms", "mean jitter ms", "max jitter ms", "problems"),
                   [[st["packets"], st["expected"], st["lost"], st["lost_percent"], st["sequence_errors"],
                     st["min_delta_ms"], st["mean_delta_ms"], st["max_delta_ms"], st["min_jitter_ms"],
                     st["mean_jitter_ms"], st["max_jitter_ms"], "X" if st["problem"] else ""]],
                   numeric=range(11), id_=f"stats-{s['index']}"),
             graph(s)]
    q = s["quality"]
    if q:
        inputs = ", ".join(f"{k} {v}" for k, v in q["inputs"].items())
        parts.append(f'<p id="quality-{s["index"]}"><span class="mos">MOS {q["mos"]:.2f}</span> · '
                     f'R-factor {q["r_factor"]:.1f} ({escape(q["model"])}; {escape(inputs)})</p>')
    else:
        parts.append(f'<p class="empty">no quality estimate: {escape(s["quality_note"] or "")}</p>')
    rtcp = s["rtcp"]
    if rtcp["reception_reports"] or rtcp["sender_reports"] or rtcp["xr_voip_metrics"]:
        parts.append("<h3>RTCP</h3>" + table(
            ("time", "frame", "from", "fraction lost", "cumulative lost", "jitter ms", "RTT ms"),
            ([seconds(r["time"]), r["frame"], r["reporter"], f"{r['fraction_lost_percent']:.1f} %",
              r["cumulative_lost"], r["jitter_ms"], r["rtt_ms"]] for r in rtcp["reception_reports"]),
            numeric=(0, 1, 3, 4, 5, 6), id_=f"rtcp-{s['index']}"))
        if rtcp["sender_reports"]:
            parts.append(table(("sender report", "frame", "packets sent", "octets sent"), (
                [seconds(r["time"]), r["frame"], r["packet_count"], r["octet_count"]]
                for r in rtcp["sender_reports"]), numeric=(0, 1, 2, 3)))
        if rtcp["xr_voip_metrics"]:
            parts.append(table(("XR VoIP metrics", "from", "loss /256", "discard /256", "RTT ms",
                                "R", "MOS-LQ"), (
                [seconds(v["time"]), v["reporter"], v["loss_rate"], v["discard_rate"],
                 v["round_trip_delay_ms"], v["r_factor"], v["mos_lq"] / 10 if v["mos_lq"] != 127 else None]
                for v in rtcp["xr_voip_metrics"]), numeric=(0, 2, 3, 4, 5, 6)))
    if s["dtmf"]:
        parts.append("<h3>DTMF (RFC 4733)</h3>" + table(
            ("time", "digit", "event", "duration ms", "ended"),
            ([seconds(d["time"]), d["digit"], d["event"], d["duration_ms"], d["ended"]] for d in s["dtmf"]),
            numeric=(0, 2, 3), id_=f"dtmf-{s['index']}"))
    audio = s["audio"]
    if audio:
        if media:
            parts.append(f'<p><audio controls preload="none" id="audio-{s["index"]}" src="{media["wav"]}"></audio> '
                         f'{audio["seconds"]:.1f} s at {audio["sample_rate"]} Hz</p>'
                         f'<img class="spectrogram" id="spectrogram-{s["index"]}" alt="spectrogram of stream '
                         f'#{s["index"] + 1}" src="{media["spectrogram"]}">')
        parts.append(table(("from", "to (last packet)", "audio", "packets"), (
            [seconds(g["start"]), seconds(g["end"]), g["label"], g["packets"]] for g in audio["segments"]),
            numeric=(0, 1, 3), id_=f"segments-{s['index']}"))
        if audio["words"]:
            parts.append(table(("from", "to", "words recognised (free decoding)"), (
                [seconds(w["start"]), seconds(w["end"]), w["text"]] for w in audio["words"]),
                numeric=(0, 1), id_=f"words-{s['index']}"))
        if audio["said"]:
            parts.append(table(("phrase", "heard", "at"), (
                [p["phrase"], Html('<span class="ok">yes</span>' if p["found"] else '<span class="bad">no</span>'),
                 p.get("error") or seconds(p.get("start"))] for p in audio["said"]), id_=f"said-{s['index']}"))
    return "".join(parts) + "</div>"


def graph(s: dict) -> str:
    """The per-packet delta and jitter of a stream as an SVG line graph."""
    series = s["series"]
    t, delta, jitter = series["time"], series["delta_ms"], series["jitter_ms"]
    if len(t) < 2:
        return ""
    left, w, h = 48, _GRAPH_W - 60, _GRAPH_H - 40
    lo, hi = t[0], t[-1] if t[-1] > t[0] else t[0] + 1
    top_value = max(max(delta), max(jitter), 1.0) * 1.05

    def points(values: list[float]) -> str:
        return " ".join(f"{left + (ti - lo) / (hi - lo) * w:.1f},{10 + h - v / top_value * h:.1f}"
                        for ti, v in zip(t, values))
    ticks = "".join(f'<line class="grid" x1="{left}" x2="{left + w}" y1="{10 + h - f * h:.1f}" '
                    f'y2="{10 + h - f * h:.1f}"/><text x="{left - 4}" y="{14 + h - f * h:.1f}" '
                    f'text-anchor="end">{top_value * f:.0f}</text>' for f in (0, 0.5, 1))
    reduced = " (largest value per stretch of packets)" if series["reduced"] else ""
    return (f'<svg class="graph" id="graph-{s["index"]}" xmlns="http://www.w3.org/2000/svg" width="{_GRAPH_W}" '
            f'height="{_GRAPH_H}" viewBox="0 0 {_GRAPH_W} {_GRAPH_H}" role="img">'
            f"<title>per-packet delta and jitter of stream #{s['index'] + 1}{reduced}</title>{ticks}"
            f'<line class="axis" x1="{left}" y1="{10 + h}" x2="{left + w}" y2="{10 + h}"/>'
            f'<polyline class="delta" points="{points(delta)}"/><polyline class="jitter" points="{points(jitter)}"/>'
            f'<text x="{left}" y="{_GRAPH_H - 4}">{seconds(lo)}</text>'
            f'<text x="{left + w}" y="{_GRAPH_H - 4}" text-anchor="end">{seconds(hi)}</text>'
            f'<text x="{left + w / 2}" y="{_GRAPH_H - 4}" text-anchor="middle">ms: '
            f'<tspan class="delta" fill="#1f77b4">delta</tspan> · <tspan fill="#d62728">jitter</tspan>{reduced}</text>'
            "</svg>")
