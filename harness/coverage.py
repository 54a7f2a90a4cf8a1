"""docs/coverage.md, generated from the code: what of the service sip-harness emulates.

`python -m harness.coverage` prints it; `python -m harness.coverage --write` rewrites the file.
"""
from __future__ import annotations

import sys
from pathlib import Path

from .api.errors import ERRORS
from .sma import events, responses
from .sma.actions import ACTIONS, ERROR_TYPES

PATH = Path(__file__).resolve().parent.parent / "docs" / "coverage.md"
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


def render() -> str:
    """The whole coverage page."""
    out = ["# Coverage", "",
           "Generated from the code by `python -m harness.coverage --write`; a test fails when it is stale.",
           "", "## Invocation events", "", "| InvocationEventType | emulated | sent when |", "|---|---|---|"]
    out += [f"| `{name}` | yes | {rules.when} |" for name, rules in events.EVENT_TYPES.items()]
    out += ["", "## Actions", "", "| action | emulated | parameters | local behaviour |", "|---|---|---|---|"]
    out += [f"| `{t}` | yes | {', '.join(f'`{p}`' for p in a.PARAMETERS)} | {a.EMULATION} |"
            for t, a in ACTIONS.items()]
    out += ["", "## ACTION_FAILED error types", "", "| ErrorType | produced | cause here |", "|---|---|---|"]
    out += [f"| `{t}` | {'yes' if cause else 'no'} | {cause or 'no local cause (no IAM)'} |"
            for t, cause in ERROR_TYPES.items()]
    out += ["", "## INVALID_LAMBDA_RESPONSE error types", "", "| ErrorType | cause |", "|---|---|"]
    out += [f"| `{t}` | {cause} |" for t, cause in responses.ERROR_TYPES.items()]
    out += ["", "## API errors (restJson1, `x-amzn-ErrorType`)", "", "| shape | HTTP | Code | cause |",
            "|---|---|---|---|"]
    out += [f"| `{shape}` | {status} | `{code}` | {API_CAUSES[code]} |"
            for code, (status, shape) in ERRORS.items()]
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--write" in argv:
        PATH.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
