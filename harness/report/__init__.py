"""Reports of profile runs: report.json (versioned schema), report.html with the SIP ladder and
the timeline picture (timeline.png), and JUnit XML for CI."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from harness.report.html_page import render_page
from harness.report.json_report import ARTIFACT_FILES, build_report, write_report_json
from harness.report.junit import write_junit
from harness.report.timeline import draw_timeline

if TYPE_CHECKING:
    from harness.runner import ProfileResult
    from harness.wire.analysis import WireAnalysis

__all__ = ["write_profile_reports", "write_junit"]


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
    page.write_text(render_page(report, written["timeline"]), encoding="utf-8")
    written["report_html"] = page
    return written
