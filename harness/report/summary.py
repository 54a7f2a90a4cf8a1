"""The text of a run's result, the same in the console, JUnit XML and pytest: each check,
the run's error, and what went wrong according to the journal (the root cause), each
problem with the tail of its detail (a handler's stack trace)."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.results import ProfileResult

DETAIL_LINES = 6  # the tail of a stack trace shown under its problem


def problem_label(result: ProfileResult) -> str:
    """'cause' when the run did not pass (it explains why), 'note' when it did."""
    return "note" if result.verdict == "pass" else "cause"


def problem_lines(result: ProfileResult, detail: bool = True) -> list[str]:
    """'cause: <summary>' per problem, each followed by the tail of its detail, indented."""
    label, lines, shown = problem_label(result), [], set()
    for p in result.problems:
        lines.append(f"{label}: {p['summary']}" + (f" (×{p['count']})" if p["count"] > 1 else ""))
        if detail and p["detail"] and p["detail"] not in shown:  # the same trace once
            shown.add(p["detail"])
            lines += [f"    {line}" for line in p["detail"].splitlines()[-DETAIL_LINES:]]
    return lines


def result_lines(result: ProfileResult, passed_checks: bool = True) -> list[str]:
    """The checks (all, or only the failed ones), the error and the problems of a run."""
    lines = [f"{'ok  ' if c.passed else 'FAIL'} {c.name}: {c.detail}" for c in result.checks
             if passed_checks or not c.passed]
    if result.error:
        lines.append(f"error: {result.error}")
    return lines + problem_lines(result)
