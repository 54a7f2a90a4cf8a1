"""A warm handler process, as Lambda keeps one: `python -m harness.sma.handler_worker SPEC`.

SPEC is `package.module:function`, `path/to/file.py` (function `lambda_handler`, else
`handler`) or `path/to/file.py:function`. The module is imported once and serves every
invocation, so module state survives between them. Requests arrive as JSON lines on stdin;
answers leave as JSON lines, prefixed with the nonce from SIP_HARNESS_NONCE, on the original
stdout, which the handler's own prints cannot reach (they go to stderr, as Lambda sends them
to the function's log).
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
import time
import traceback
from pathlib import Path


class LambdaContext:
    """The attributes and method of the Lambda Python runtime's context object."""

    def __init__(self, request_id: str, function_name: str, deadline_ms: float, region: str,
                 account: str):
        self.aws_request_id = request_id
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account}:function:{function_name}"
        self.memory_limit_in_mb = "128"
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "sip-harness"
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self._deadline_ms - time.time() * 1000))


def load_handler(spec: str):
    """Import the handler function named by SPEC."""
    target, _, func = spec.partition(":")
    if target.endswith(".py") or os.sep in target:
        path = Path(target).resolve()
        sys.path.insert(0, str(path.parent))
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[path.stem] = module
        module_spec.loader.exec_module(module)
        names = [func] if func else ["lambda_handler", "handler"]
    else:
        sys.path.insert(0, os.getcwd())
        module = importlib.import_module(target)
        names = [func or "lambda_handler"]
    for name in names:
        if callable(getattr(module, name, None)):
            return getattr(module, name)
    raise AttributeError(f"{spec}: no handler function {' or '.join(names)}")


def main() -> None:
    out = os.fdopen(os.dup(1), "w", buffering=1)
    nonce = os.environ.get("SIP_HARNESS_NONCE", "")
    os.dup2(2, 1)  # the handler's prints go to the log, never into the protocol
    sys.stdout = sys.stderr
    spec = sys.argv[1]
    try:
        handler = load_handler(spec)
        load_error = None
    except Exception as exc:  # reported on every invocation, as Lambda reports an init error
        handler, load_error = None, {"errorType": "Runtime.ImportModuleError",
                                     "errorMessage": f"{type(exc).__name__}: {exc}",
                                     "stackTrace": traceback.format_exc().splitlines()}
    for line in sys.stdin:
        req = json.loads(line)
        answer: dict = {"id": req["id"]}
        if load_error:
            answer["error"] = load_error
        else:
            ctx = LambdaContext(req["request_id"], req["function_name"], req["deadline_ms"],
                                req.get("region", "us-east-1"), req.get("account", "123456789012"))
            try:
                result = handler(req["event"], ctx)
                try:
                    json.dumps(result)
                    answer["result"] = result
                except (TypeError, ValueError) as exc:
                    answer["unserializable"] = f"{type(result).__name__}: {exc}"
            except Exception as exc:
                answer["error"] = {"errorType": type(exc).__name__, "errorMessage": str(exc),
                                   "stackTrace": traceback.format_exc().splitlines()}
        out.write(nonce + json.dumps(answer) + "\n")


if __name__ == "__main__":
    main()
