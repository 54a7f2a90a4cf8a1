"""Reports: of profile runs (report.json with a versioned schema, report.html with the SIP
ladder and the timeline picture timeline.png, JUnit XML for CI), and of any capture (the
capture document and its page, written by `sip-harness analyze`)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from harness.report.capture_report import (Options, Selection, build_capture_document, select,
                                           stream_media, write_json)
from harness.report.html_page import render_capture_page, render_page
from harness.report.json_report import ARTIFACT_FILES, build_report, write_report_json
from harness.report.junit import write_junit
from harness.report.timeline import draw_timeline

if TYPE_CHECKING:
    from harness.results import ProfileResult
    from harness.wire.analysis import WireAnalysis

__all__ = ["write_profile_reports", "write_capture_report", "write_junit", "Options", "Selection"]


def write_profile_reports(result: ProfileResult, wire: WireAnalysis | None, journal: Sequence[dict],
                          run_dir: Path, updates: Sequence[dict],
                          prompts: Mapping[str, np.ndarray] | None = None) -> dict[str, Path]:
    """Write report.json, timeline.png and report.html into `run_dir`.

    `result` is the run's `ProfileResult`; `wire` the analysis of its capture (None when the
    run left none); `journal` the stub's journal entries; `updates` the runner's update
    records (time, transaction_id, arguments, status, error); `prompts` the bucket's WAVs
    by name, to recognise them in the stub's audio. Returns the paths by artifact name.
    """
    run_dir = Path(run_dir)
    report = build_report(result, wire, journal, run_dir, updates, prompts)
    written = {"report_json": write_report_json(report, run_dir / ARTIFACT_FILES["report_json"]),
               "timeline": draw_timeline(report, wire, run_dir / ARTIFACT_FILES["timeline"])}
    page = run_dir / ARTIFACT_FILES["report_html"]
    media = stream_media(wire, select(wire, Selection())[1]) if wire is not None else {}
    page.write_text(render_page(report, written["timeline"], media), encoding="utf-8")
    written["report_html"] = page
    return written


def write_capture_report(wire: WireAnalysis, html: Path | None, json_path: Path | None,
                         selection: Selection = Selection(), options: Options | None = None) -> dict:
    """The capture document of `wire`, written as JSON and/or as its page; returns it."""
    document = build_capture_document(wire, selection, options)
    if json_path is not None:
        write_json(document, Path(json_path))
    if html is not None:
        media = stream_media(wire, select(wire, selection)[1])
        Path(html).write_text(render_capture_page(document, media), encoding="utf-8")
    return document
