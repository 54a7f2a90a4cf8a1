"""JUnit XML for CI: one testcase per profile run.

A run that failed has a <failure> naming its failing checks and its artifact folder; a run
that could not be judged (verdict "error") has an <error>. Both carry the root cause the
journal names (handler failures, rejected responses, failed actions) in their message, and
its detail (a stack trace) in their text. Every testcase's <system-out> lists all its checks,
the problems and the artifact folder.
"""
from __future__ import annotations

import re
import socket
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from harness.report.summary import problem_lines, result_lines

if TYPE_CHECKING:
    from harness.results import ProfileResult

SUITE = "sip-harness"
#: characters XML 1.0 cannot hold, even escaped
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _text(value: object) -> str:
    return _NOT_XML.sub("\ufffd", str(value))


def _classname(result: ProfileResult) -> str:
    path = Path(result.path)
    return f"{path.parent.name or SUITE}.{path.stem}".replace(" ", "_")


def _testcase(result: ProfileResult) -> ET.Element:
    case = ET.Element("testcase", name=_text(result.profile), classname=_text(_classname(result)),
                      time=f"{result.duration_s:.3f}", file=_text(result.path))
    failing = [c for c in result.checks if not c.passed]
    where = f"artifacts: {result.run_dir}"
    causes = problem_lines(result, detail=False)
    if result.verdict == "error":
        error = ET.SubElement(case, "error", type="error", message=_text("; ".join(
            [result.error or "the run failed", *causes])))
        error.text = _text("\n".join([*result_lines(result, passed_checks=False),
                                      *([result.error_detail] if result.error_detail else []), where]))
    elif result.verdict == "fail":
        failure = ET.SubElement(case, "failure", type="fail", message=_text("; ".join(
            [*(f"{c.name}: {c.detail}" for c in failing), *causes]) or "failed"))
        failure.text = _text("\n".join([*result_lines(result, passed_checks=False), where]))
    lines = result_lines(result)
    if result.update_to_switch_ms is not None:
        lines.append(f"update-to-switch {result.update_to_switch_ms} ms")
    ET.SubElement(case, "system-out").text = _text("\n".join([*lines, where]))
    return case


def write_junit(results: Sequence[ProfileResult], path: Path) -> Path:
    """Write JUnit XML for `results` (a list of `ProfileResult`) to `path`."""
    path = Path(path)
    counts = {"tests": str(len(results)),
              "failures": str(sum(r.verdict == "fail" for r in results)),
              "errors": str(sum(r.verdict == "error" for r in results)),
              "skipped": "0", "time": f"{sum(r.duration_s for r in results):.3f}"}
    root = ET.Element("testsuites", name=SUITE, **counts)
    suite = ET.SubElement(root, "testsuite", name=SUITE, **counts,
                          timestamp=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                          hostname=socket.gethostname())
    suite.extend(_testcase(r) for r in results)
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path
