"""The report pages: report.html of a profile run, and the page `analyze --html` writes for
any capture. Both are one self-contained file: the capture part (`html_capture`) is the same
in both; a run's page adds its checks, timeline picture, handler events, update requests and
what the stub's journal says it played."""
from __future__ import annotations

import base64
from html import escape
from pathlib import Path

from harness.report.html_capture import CSS, Html, capture_sections, seconds, table


def render_capture_page(doc: dict, media: dict[int, dict[str, str]]) -> str:
    """The page of a capture document, with the streams' audio and spectrograms (`media`)."""
    capture = doc["capture"]
    selection = ", ".join(f"{k} {v}" for k, v in doc["selection"].items() if v is not None)
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(Path(capture['path']).name)}: sip-harness analyze</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>{escape(Path(capture['path']).name)}</h1>",
        f'<p class="meta">capture <code>{escape(capture["path"])}</code> · {capture["frames"]} frames · '
        f'{len(doc["calls"])} calls · {len(doc["messages"])} SIP messages · {len(doc["streams"])} RTP streams'
        + (f" · selected: {escape(selection)}" if selection else "")
        + f' · times in seconds since the first frame · capture schema v{doc["schema_version"]}</p>',
        capture_sections(doc, media), "</body></html>"])


def render_page(report: dict, timeline: Path, media: dict[int, dict[str, str]]) -> str:
    """The page of a run's report; `timeline` is the PNG to embed (linked by its file name)."""
    verdict = report["verdict"]
    latency = report["update_to_switch_ms"]
    picture = base64.b64encode(timeline.read_bytes()).decode("ascii")
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(report['profile'])}: {escape(verdict)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>{escape(report['profile'])} "
        f'<span class="verdict {escape(verdict)}" id="verdict">{escape(verdict.upper())}</span></h1>',
        f'<p class="meta">profile <code>{escape(report["path"])}</code> · duration '
        f'{report["duration_s"]:.3f} s · update-to-switch '
        f'{escape(f"{latency:.1f} ms" if latency is not None else "–")} · artifacts '
        f'<code>{escape(report["run_dir"])}</code> · report schema v{report["schema_version"]}</p>',
    ]
    if report["error"]:
        detail = report.get("error_detail")
        parts.append(f'<pre id="error">{escape(report["error"])}'
                     f'{escape(chr(10) + detail) if detail else ""}</pre>')
    if report.get("problems"):
        parts += ["<h2>What went wrong</h2>", table(
            ("time", "TransactionId", "problem", "detail"),
            ([seconds(p["time"]), p["transaction_id"],
              Html(f'<span class="bad">{escape(p["summary"])}</span>'
                   + (f" (×{p['count']})" if p["count"] > 1 else "")),
              Html(f"<pre>{escape(p['detail'])}</pre>") if p["detail"] else None]
             for p in report["problems"]), numeric=(0,), id_="problems")]
    parts += ["<h2>Checks</h2>", table(
        ("check", "result", "detail", "measured"),
        ([c["name"], Html('<span class="ok">ok</span>' if c["passed"] else '<span class="bad">FAIL</span>'),
          c["detail"], c["measured"] or None] for c in report["checks"]), id_="checks")]
    parts += ["<h2>Timeline</h2>",
              f'<a href="{escape(report["artifacts"]["timeline"])}"><img class="timeline" id="timeline" '
              f'alt="timeline of {escape(report["profile"])}" src="data:image/png;base64,{picture}"></a>']
    parts += ["<h2>Handler events</h2>", table(
        ("time", "Sequence", "InvocationEventType", "ActionData", "response", "handler ms",
         "RequestId (log)"),
        ([seconds(e["time"]), e["sequence"], _marked(e["invocation_event_type"], e.get("error")),
          e["action_data_type"], _marked(e["response"] + (" (ignored by the service)" if e["ignored"] else ""),
                                         "failed" if e["failed"] else None), e["handler_ms"],
          _request_links(e["requests"])]
         for e in report["events"]), numeric=(0, 1, 5), id_="events")]
    parts += ["<h2>Handler log</h2>", _handler_log(report["events"])]
    parts += ["<h2>Update requests</h2>", table(
        ("sent", "on the wire", "TransactionId", "Arguments", "status", "error"),
        ([seconds(u["time"]), seconds(u["wire_time"]), u["transaction_id"], u["arguments"],
          u["status"], u["error"]] for u in report["updates"]), numeric=(0, 1, 4), id_="updates")]
    parts += ["<h2>What the stub played (journal)</h2>", table(
        ("from", "to", "CallId", "media"),
        ([seconds(m["start"]), seconds(m["end"]) or "end of capture", m["call_id"], m["label"]]
         for m in report["media"]), numeric=(0, 1))]
    notes = [{"time": u["wire_time"] if u["wire_time"] is not None else u["time"],
              "label": f"UpdateSipMediaApplicationCall → HTTP {u['status']} {u['error'] or ''}".strip()}
             for u in report["updates"]]
    if report["capture"] is not None:
        parts.append(capture_sections(report["capture"], media, notes))
    else:
        parts.append('<h2>Calls</h2><p class="empty">no capture</p>')
    parts += ["<h2>Artifacts</h2><ul>", *_artifact_links(report["artifacts"]), "</ul></body></html>"]
    return "\n".join(parts)


def _marked(text: str, error: str | None) -> str:
    """`text`, marked as bad with its error beside it when there is one."""
    if not error:
        return text
    extra = "" if error == "failed" else f": {escape(error)}"
    return Html(f'<span class="bad">{escape(text)}</span>{extra}')


def _request_links(requests: list[dict]) -> Html:
    """Each attempt's RequestId, linked to its lines in the handler log section."""
    return Html("<br>".join(f'<a href="#log-{escape(r["request_id"])}">{escape(r["request_id"])}</a>'
                            for r in requests))


def _handler_log(events: list[dict]) -> str:
    """The handler log as CloudWatch shows it, one block per invocation attempt."""
    blocks = [f'<pre id="log-{escape(r["request_id"])}">{escape(chr(10).join(r["log"]))}</pre>'
              for e in events for r in e["requests"] if r["log"]]
    return "".join(blocks) or '<p class="empty">none</p>'


def _artifact_links(artifacts: dict) -> list[str]:
    files = [f for k, f in artifacts.items() if isinstance(f, str)]
    files += artifacts["recordings"] + artifacts["logs"] + artifacts["aws"] + artifacts["aws"]
    return [f'<li><a href="{escape(f)}">{escape(f)}</a></li>' for f in files]
