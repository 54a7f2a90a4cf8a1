"""The timeline picture of a run (PNG, drawn with matplotlib's Agg canvas).

On one call-time axis: a lane chart of what happened (the handler's invocations, what the
stub's journal says it played, the audio recognised on the wire in each stub→peer stream),
then each RTP direction's audio as a spectrogram; update requests, DTMF events and BYEs are
vertical lines across all of it. Labels never overlap: a label that would cover one drawn
before it (marks first, then bars from left to right) is left out.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from harness.report.capture_report import address
from harness.report.spectrogram import FLOOR_DB, NFFT, spectrogram_db
from harness.wire.audio import SAMPLE_RATE, stream_pcm

if TYPE_CHECKING:
    from harness.wire.analysis import WireAnalysis

MAX_FLOWS = 6
_FRAME_S = 0.02
#: marks closer than this share of the time axis get their labels staggered
_CLOSE = 0.08
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
            "#17becf", "#bcbd22")
_PLAIN = {"silence": "#d9d9d9", "other": "#a0a0a0"}
_MARK, _PROBLEM = "#444444", "#c62828"  # an invocation's mark; a problem's
#: colour and line style of the vertical marks (visible on white lanes and on dark spectrograms)
_MARKS = {"update": ("#e8000b", "--"), "BYE": ("#00a2d3", "-"), "DTMF": ("#2ca02c", ":")}


def draw_timeline(report: dict, wire: WireAnalysis | None, path: Path) -> Path:
    """Draw the run's timeline into `path` (PNG) from its report and its capture."""
    timeline_figure(report, wire).savefig(path, format="png")
    return path


def timeline_figure(report: dict, wire: WireAnalysis | None) -> Figure:
    """The timeline picture of a run as a matplotlib figure."""
    roles = report["endpoints"]
    flows = _flows(wire, roles) if wire else []
    lanes = _lanes(report, roles)
    lo, hi = _extent(report)
    rows = max(min(len(flows), MAX_FLOWS), 1)
    fig = Figure(figsize=(13, 1.2 + 0.42 * len(lanes) + 1.5 * rows), dpi=100)
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(1 + rows, 2, height_ratios=[0.42 * len(lanes)] + [1.5] * rows,
                            width_ratios=[1, 0.012], hspace=0.12, wspace=0.01)
    top = fig.add_subplot(grid[0, 0])
    _draw_lanes(top, lanes, lo, hi)
    axes = [top]
    for row, (name, where, streams) in enumerate(flows[:MAX_FLOWS], 1):
        ax = fig.add_subplot(grid[row, 0], sharex=top)
        image = _draw_spectrogram(ax, streams, report["t0"], lo, hi)
        ax.set_ylabel(f"{name}\nHz", fontsize=8)
        ax.set_facecolor("black")
        ax.text(0.005, 0.96, where, transform=ax.transAxes, fontsize=7, color="white", va="top")
        bar = fig.colorbar(image, cax=fig.add_subplot(grid[row, 1]))
        bar.set_label("dBFS", fontsize=7)
        bar.ax.tick_params(labelsize=7)
        axes.append(ax)
    if not flows:
        ax = fig.add_subplot(grid[1, 0], sharex=top)
        ax.text(0.5, 0.5, "no RTP in the capture" if wire else "no capture",
                transform=ax.transAxes, ha="center", va="center", color="#666666")
        ax.set_yticks([])
        axes.append(ax)
    top.set_xlim(lo, hi)
    for ax in axes:
        _draw_marks(ax, report, labelled=ax is top)
        ax.tick_params(labelbottom=False, labelsize=8)
    axes[-1].tick_params(labelbottom=True)
    axes[-1].set_xlabel("call time (s) since the first SIP message", fontsize=9)
    latency = report["update_to_switch_ms"]
    fig.suptitle(f"{report['profile']}: {report['verdict'].upper()}"
                 + (f", update-to-switch {latency:.1f} ms" if latency is not None else "")
                 + (f" (first {MAX_FLOWS} of {len(flows)} RTP directions)" if len(flows) > MAX_FLOWS else ""),
                 fontsize=11, x=0.01, ha="left", y=0.995)
    fig.legend(handles=[Line2D([], [], color=c, linestyle=s, label=k) for k, (c, s) in _MARKS.items()]
               + [Line2D([], [], color="#444444", marker="v", linestyle="", label="invocation")],
               loc="upper right", ncol=4, fontsize=8, frameon=False, bbox_to_anchor=(0.99, 1.0))
    height = fig.get_figheight()
    fig.subplots_adjust(left=0.1, right=0.94, top=1 - 0.6 / height, bottom=0.45 / height)
    _drop_overlapping_labels(fig, [top])
    return fig


def _flows(wire: WireAnalysis, roles: dict[str, str]):
    """(roles, addresses, streams) per RTP direction: stub→peer first, then peer→stub,
    then the others."""
    groups: dict[tuple[str, str], list] = {}
    for s in wire.rtp_streams:
        groups.setdefault((address(s.src), address(s.dst)), []).append(s)

    def rank(key: tuple[str, str]) -> int:
        return 0 if roles.get(key[0]) == "stub" else 1 if roles.get(key[1]) == "stub" else 2

    out = []
    for src, dst in sorted(groups, key=rank):
        out.append((f"{roles.get(src, 'RTP')} → {roles.get(dst, 'RTP')}", f"{src} → {dst}",
                    groups[(src, dst)]))
    return out


def _extent(report: dict) -> tuple[float, float]:
    times = [0.0]
    times += [m["time"] for m in report["sip"]]
    times += [s[k] for s in report["rtp_streams"] for k in ("start", "end")]
    times += [e[k] for e in report["events"] for k in ("time", "response_time") if e[k] is not None]
    times += [u[k] for u in report["updates"] for k in ("time", "wire_time") if u[k] is not None]
    times += [m[k] for m in report["media"] for k in ("start", "end") if m[k] is not None]
    times += [p["time"] for p in report.get("problems", []) if p["time"] is not None]
    lo, hi = min(times), max(times)
    pad = max(0.02 * (hi - lo), 0.1)
    return lo - pad, hi + pad


def _colour(key: str, assigned: dict[str, str]) -> str:
    if key in _PLAIN:
        return _PLAIN[key]
    return assigned.setdefault(key, _PALETTE[len(assigned) % len(_PALETTE)])


def _lanes(report: dict, roles: dict[str, str]) -> list[tuple[str, list]]:
    """(lane name, items): an item is ('bar', start, end, label, colour key) or
    ('mark', time, label[, colour])."""
    lanes: list[tuple[str, list]] = [("handler\ninvocations", [
        ("mark", e["time"], f"{e['sequence']} {e['invocation_event_type']}") for e in report["events"]])]
    lanes.append(("stub plays\n(journal)", [
        ("bar", m["start"], m["end"], m["label"], m["label"]) for m in report["media"]]))
    problems = [p for p in report.get("problems", []) if p["time"] is not None]
    if problems:
        lanes.append(("what went\nwrong", [("mark", p["time"], p["error_type"] or p["kind"], _PROBLEM)
                                             for p in problems]))
    for audio in report["audio"]:
        peer = roles.get(audio["dst"], audio["dst"])
        lanes.append((f"on the wire\nstub → {peer}", [
            ("bar", seg["start"], seg["end"] + _FRAME_S, seg["label"],
             seg["prompt"] or (seg["kind"] if seg["kind"] != "tone" else seg["label"]))
            for seg in audio["segments"]]))
    return lanes


def _draw_lanes(ax, lanes: Sequence[tuple[str, list]], left: float, right: float) -> None:
    """Marks and bars per lane (a bar without an end runs to `right`). A mark's label is on the
    side with more room, and a step lower than the previous mark's when that is close."""
    colours: dict[str, str] = {}
    for row, (name, items) in enumerate(lanes):
        y = len(lanes) - 1 - row
        level, previous = 0, None
        for item in items:
            if item[0] == "mark":
                _, t, label, colour = (*item, _MARK)[:4]
                close = previous is not None and t - previous < _CLOSE * (right - left)
                level, previous = (level + 1) % 3 if close else 0, t
                late = t > (left + right) / 2
                ax.plot([t], [y + 0.3 - 0.3 * level], marker="v", color=colour, markersize=5)
                ax.annotate(label, (t, y + 0.3 - 0.3 * level), xytext=(-4 if late else 4, 0),
                            gid="mark-label",
                            textcoords="offset points", fontsize=7, va="center", color=colour,
                            ha="right" if late else "left")
            else:
                _, start, end, label, key = item
                end = right if end is None else end
                ax.broken_barh([(start, end - start)], (y - 0.35, 0.7),
                               facecolors=_colour(key, colours), edgecolor="white", linewidth=0.5)
                text = ax.text(start, y, " " + label, fontsize=7, va="center", clip_on=True)
                text.set_gid("bar-label")
    ax.set_ylim(-0.6, len(lanes) - 0.4)
    ax.set_yticks(range(len(lanes)), [name for name, _ in reversed(lanes)], fontsize=8)
    ax.grid(axis="x", color="#eeeeee")


def _draw_spectrogram(ax, streams, t0: float, lo: float, hi: float):
    """The streams' decoded audio as power in dBFS (returns the image), each stream placed on
    the call-time axis where `stream_pcm` anchors it."""
    pcm = np.zeros(int((hi - lo) * SAMPLE_RATE) + NFFT, dtype=np.float32)
    for stream in streams:
        samples, rate, origin = stream_pcm(stream)
        if rate != SAMPLE_RATE or not len(samples):
            continue
        at = int(round((origin / 1e9 - t0 - lo) * SAMPLE_RATE))
        chunk = samples[max(-at, 0):max(len(pcm) - at, 0)]
        pcm[max(at, 0):max(at, 0) + len(chunk)] = chunk
    db, hop = spectrogram_db(pcm, SAMPLE_RATE)
    start = lo + (NFFT - hop) / 2 / SAMPLE_RATE  # each column centred on its window
    image = ax.imshow(db.T, origin="lower", aspect="auto", cmap="magma", vmin=FLOOR_DB, vmax=0,
                      extent=(start, start + len(db) * hop / SAMPLE_RATE, 0, SAMPLE_RATE / 2),
                      interpolation="nearest")
    ax.set_yticks([0, 1000, 2000, 3000, 4000])
    return image


def _draw_marks(ax, report: dict, labelled: bool) -> None:
    """Vertical lines: update requests (on the wire, else when sent), DTMF, BYEs."""
    roles = report["endpoints"]
    marks = [("update", u["wire_time"] if u["wire_time"] is not None else u["time"],
              f"update {u['status'] or ''}".strip()) for u in report["updates"]]
    marks += [("DTMF", d["time"], f"DTMF {d['digit'] or d['event']}") for d in report["dtmf"]]
    marks += [("BYE", m["time"], f"BYE from {roles.get(m['src'], m['src'])}")
              for m in report["sip"] if m["summary"].startswith("BYE")]
    level, previous = 0, None
    for kind, t, label in sorted(marks, key=lambda m: m[1]):
        colour, style = _MARKS[kind]
        ax.axvline(t, color=colour, linestyle=style, linewidth=1.2)
        if labelled:
            lo, hi = ax.get_xlim()
            close = previous is not None and t - previous < _CLOSE * (hi - lo)
            level, previous = (level + 1) % 3 if close else 0, t
            ax.annotate(label, (t, 1.0), xycoords=("data", "axes fraction"), gid="mark-label",
                        xytext=(2, 2 + 9 * level), textcoords="offset points", fontsize=7,
                        color=colour, va="bottom")


def _drop_overlapping_labels(fig, axes) -> None:
    """Hide each label (marks first, then bar labels, left to right) that overlaps one kept."""
    renderer = fig.canvas.get_renderer()
    labels = [t for ax in axes for t in ax.texts if t.get_gid() in ("mark-label", "bar-label")]
    labels.sort(key=lambda t: (t.get_gid() != "mark-label", t.get_window_extent(renderer).x0))
    kept = []
    for text in labels:
        box = text.get_window_extent(renderer).expanded(1.0, 1.0)
        if any(box.overlaps(other) for other in kept):
            text.set_visible(False)
        else:
            kept.append(box)
