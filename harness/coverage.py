"""docs/coverage.md, generated from the code: what of the service sip-harness emulates, and
the test that proves each part.

The rows come from the code itself: the invocation events (`sma/events.py`), the action
registry (`sma/actions/`: parameters, how each is emulated, the ErrorTypes each gives), the
response checks (`sma/responses.py`), the API's errors and routes (`api/`) against botocore's
model of chime-sdk-voice (every operation, served or not). A test proves a row by naming it:
`@pytest.mark.covers("action:PlayAudio", "event:HANGUP")`. A row the stub emulates that no
test names is a gap `unproven` reports (tests/test_coverage.py fails on it).

`python -m harness.coverage` prints the page; `--write` rewrites docs/coverage.md.
"""
from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import botocore.session

from .api.errors import ERRORS
from .api.operations import OPERATION_NAMES
from .sma import events, responses
from .sma.actions import ACTIONS, ERROR_TYPES
from .sma.actions.base import COMMON_ERRORS

ROOT = Path(__file__).resolve().parent.parent
PATH = ROOT / "docs" / "coverage.md"
TESTS = ROOT / "tests"
MARKER = "covers"
API_CAUSES = {
    "BadRequest": "validation: blank ids, more than 20 arguments, non-string values, bad JSON",
    "NotFound": "unknown SMA, unknown or ended transaction",
    "Forbidden": "an SMA of another account than the caller's credentials",
    "ResourceLimitExceeded": "the call's 1,000 invocations are used up",
    "Throttled": "the configured token bucket is empty",
    "Unauthorized": "missing or invalid SigV4 signature when credentials are configured",
    "ServiceUnavailable": "the stub is draining or shutting down",
    "ServiceFailure": "an internal fault (logged)",
}


@dataclass(frozen=True)
class Row:
    """One thing of the service: its key (`section:name`), whether the stub emulates it, and
    the cells the page shows before the test column."""

    key: str
    emulated: bool
    cells: tuple[str, ...]


def operations() -> list[str]:
    """Every chime-sdk-voice operation in botocore's model."""
    return sorted(botocore.session.get_session().get_service_model("chime-sdk-voice").operation_names)


def sections() -> list[tuple[str, tuple[str, ...], list[Row]]]:
    """The page's tables: title, header cells before the test column, rows."""
    givers = {t: [a for a, cls in ACTIONS.items() if t in cls.ERRORS] for t in ERROR_TYPES}
    return [
        ("Invocation events", ("InvocationEventType", "sent when"),
         [Row(f"event:{name}", True, (f"`{name}`", rules.when)) for name, rules in events.EVENT_TYPES.items()]),
        ("Actions", ("action", "parameters", "local behaviour"),
         [Row(f"action:{name}", True, (f"`{name}`", ", ".join(f"`{p}`" for p in cls.PARAMETERS), cls.EMULATION))
          for name, cls in ACTIONS.items()]),
        ("ACTION_FAILED error types", ("ErrorType", "given by", "cause here"),
         [Row(f"action-error:{t}", cause is not None,
              (f"`{t}`", "every action" if t in COMMON_ERRORS else ", ".join(givers[t]) or "—",
               cause or "no local cause (no IAM)"))
          for t, cause in ERROR_TYPES.items()]),
        ("INVALID_LAMBDA_RESPONSE error types", ("ErrorType", "cause"),
         [Row(f"response-error:{t}", True, (f"`{t}`", cause)) for t, cause in responses.ERROR_TYPES.items()]),
        ("API errors (restJson1, `x-amzn-ErrorType`)", ("shape", "HTTP", "Code", "cause"),
         [Row(f"api-error:{code}", True, (f"`{shape}`", str(status), f"`{code}`", API_CAUSES[code]))
          for code, (status, shape) in ERRORS.items()]),
        ("API operations (botocore's chime-sdk-voice model)", ("operation",),
         [Row(f"operation:{name}", name in OPERATION_NAMES, (f"`{name}`",)) for name in operations()]),
    ]


def rows() -> list[Row]:
    return [row for _, _, table in sections() for row in table]


def proofs(tests: Path = TESTS) -> dict[str, list[str]]:
    """Each key the tests under `tests` name in `@pytest.mark.covers(...)`, with the tests
    (`path::function`, the path relative to `tests`) that name it."""
    out: dict[str, list[str]] = {}
    for path in sorted(tests.rglob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for decorator in node.decorator_list:
                if isinstance(decorator, ast.Call) and _is_marker(decorator.func):
                    for arg in decorator.args:
                        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                            out.setdefault(arg.value, []).append(f"{path.relative_to(tests)}::{node.name}")
    return out


def _is_marker(func: ast.expr) -> bool:
    """`pytest.mark.covers` (or `mark.covers`)."""
    return isinstance(func, ast.Attribute) and func.attr == MARKER and \
        isinstance(func.value, ast.Attribute) and func.value.attr == "mark"


def unproven(found: dict[str, list[str]]) -> list[str]:
    """The keys of emulated rows that no test names."""
    return [row.key for row in rows() if row.emulated and not found.get(row.key)]


def unknown(found: dict[str, list[str]]) -> list[str]:
    """Keys the tests name that are no row (a typo, or a row that went)."""
    keys = {row.key for row in rows()}
    return sorted(k for k in found if k not in keys)


def render(found: dict[str, list[str]] | None = None) -> str:
    """The whole coverage page."""
    found = proofs() if found is None else found
    out = ["# Coverage", "",
           "Generated from the code by `python -m harness.coverage --write`; a test fails when it is "
           "stale, or when something emulated has no test that names it "
           "(`@pytest.mark.covers(\"action:PlayAudio\")`).", ""]
    for title, header, table in sections():
        out += [f"## {title}", "", "| " + " | ".join(header + ("emulated", "proved by")) + " |",
                "|" + "---|" * (len(header) + 2)]
        for row in table:
            tests = found.get(row.key, [])
            proof = f"`{tests[0]}`" + (f" (+{len(tests) - 1})" if len(tests) > 1 else "") if tests else \
                ("**no test**" if row.emulated else "")
            out.append("| " + " | ".join(row.cells + ("yes" if row.emulated else "no", proof)) + " |")
        out.append("")
    return "\n".join(out)


def main(argv: list[str]) -> int:
    text = render()
    if "--write" in argv:
        PATH.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
