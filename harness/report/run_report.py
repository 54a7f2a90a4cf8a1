"""The report of a whole run (`run.json` beside `junit.xml`), and the merge of several runs'
reports into one: the shards of a suite run on several machines (`run --shard K/N`), put
back together with `sip-harness report merge DIR...`.

`run.json` lists each profile's verdict, time, error and artifact folder (relative to the run
folder, so the folder can be moved or downloaded as a CI artifact). The merge reads each
folder's `run.json` and `junit.xml`, keeps the profiles in the order of their file paths
(the same order whatever the shards), and writes one `run.json` and one `junit.xml` whose
counts are the sums; a profile found in two shards is an error.
"""
from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.results import ProfileResult

SCHEMA_VERSION = 1
RUN_REPORT = "run.json"


class MergeError(ValueError):
    """The folders cannot be merged (no run report, a profile run twice)."""


def write_run_report(results: Sequence[ProfileResult], out_dir: Path) -> Path:
    """`run.json` for `results` in `out_dir`."""
    out_dir = Path(out_dir)
    entries = [{"profile": r.profile, "path": r.path, "verdict": r.verdict,
                "duration_s": r.duration_s, "error": r.error,
                "folder": os.path.relpath(r.run_dir, out_dir)} for r in results]
    return _write(out_dir, entries)


def _write(out_dir: Path, entries: list[dict]) -> Path:
    verdicts = [e["verdict"] for e in entries]
    report = {"schema_version": SCHEMA_VERSION,
              "counts": {"profiles": len(entries), "passed": verdicts.count("pass"),
                         "failed": verdicts.count("fail"), "errors": verdicts.count("error")},
              "profiles": entries}
    path = out_dir / RUN_REPORT
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path


def merge_runs(folders: Sequence[Path], out_dir: Path) -> tuple[Path, Path]:
    """Merge the run folders' `run.json` and `junit.xml` into `out_dir`; both paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    entries: dict[str, dict] = {}
    cases: dict[str, ET.Element] = {}
    for folder in map(Path, folders):
        report_file, junit_file = folder / RUN_REPORT, folder / "junit.xml"
        if not report_file.is_file() or not junit_file.is_file():
            raise MergeError(f"{folder}: no {RUN_REPORT} and junit.xml (a folder `sip-harness run` wrote)")
        report = json.loads(report_file.read_text())
        by_file = {c.get("file"): c for c in ET.parse(junit_file).getroot().iter("testcase")}
        for entry in report["profiles"]:
            if entry["path"] in entries:
                raise MergeError(f"{entry['path']} was run in two of the folders")
            entry = dict(entry, folder=os.path.relpath(folder / entry["folder"], out_dir))
            entries[entry["path"]] = entry
            if entry["path"] in by_file:
                cases[entry["path"]] = by_file[entry["path"]]
    order = sorted(entries)
    run = _write(out_dir, [entries[p] for p in order])
    merged = [cases[p] for p in order if p in cases]
    counts = {"tests": str(len(merged)),
              "failures": str(sum(c.find("failure") is not None for c in merged)),
              "errors": str(sum(c.find("error") is not None for c in merged)),
              "skipped": "0", "time": f"{sum(float(c.get('time', 0)) for c in merged):.3f}"}
    root = ET.Element("testsuites", name="sip-harness", **counts)
    suite = ET.SubElement(root, "testsuite", name="sip-harness", **counts)
    suite.extend(merged)
    ET.indent(root)
    junit = out_dir / "junit.xml"
    ET.ElementTree(root).write(junit, encoding="utf-8", xml_declaration=True)
    return run, junit
