"""A warm Python handler process, as Lambda keeps one.

Run as a script by the runtime's own interpreter, without site-packages:
`pythonX.Y -S -u handler_worker.py TASK_ROOT MODULE [FUNCTION]`. It uses the standard library
only. The module path is what Lambda's is: the task root (the handler's folder) first, so a
handler's vendored packages win, then `PYTHONPATH` (the bundled SDK), then the standard
library. The module is imported once (the init phase) and serves every invocation.

Requests arrive as JSON lines on stdin. Everything the handler writes (prints, the root
logger's records in Lambda's format, uncaught errors as the runtime logs them) goes to
stdout, which is its log; answers are the stdout lines that start with the nonce from
SIP_HARNESS_NONCE, which the handler never sees. The first answer reports the init phase.
"""
from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import time
import traceback

LOG_FORMAT = "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s"
_request_id = ""


class CognitoIdentity:
    __slots__ = ("cognito_identity_id", "cognito_identity_pool_id")

    def __init__(self):
        self.cognito_identity_id = self.cognito_identity_pool_id = None


class LambdaContext:
    """The attributes and methods of the Lambda Python runtime's context object."""

    def __init__(self, request_id: str, deadline_ms: float, invoked_function_arn: str):
        env = os.environ
        self.aws_request_id = request_id
        self.function_name = env.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.memory_limit_in_mb = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.invoked_function_arn = invoked_function_arn
        self.client_context = None
        self.identity = CognitoIdentity()
        self.tenant_id = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self._deadline_ms - time.time() * 1000))

    def log(self, message) -> None:
        sys.stdout.write(str(message))

    def __repr__(self) -> str:
        return (f"LambdaContext([aws_request_id={self.aws_request_id},function_name="
                f"{self.function_name},invoked_function_arn={self.invoked_function_arn}])")


class _RequestId(logging.Filter):
    def filter(self, record):
        record.aws_request_id = _request_id
        return True


class _ToStdout(logging.Handler):
    """The runtime's root handler: every record goes to the function's log."""

    def emit(self, record):
        try:
            sys.__stdout__.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


def setup_logging() -> None:
    """The root logger as Lambda's runtime leaves it: one handler, its format, UTC times, and
    the level untouched (WARNING), so `setLevel(logging.INFO)` is what makes info appear."""
    formatter = logging.Formatter(LOG_FORMAT, "%Y-%m-%dT%H:%M:%S")
    formatter.converter = time.gmtime
    handler = _ToStdout()
    handler.setFormatter(formatter)
    handler.addFilter(_RequestId())
    logging.getLogger().addHandler(handler)


class HandlerError(Exception):
    """A fault of the init phase, with Lambda's errorType."""

    def __init__(self, error_type: str, message: str, trace: list[str] | None = None):
        super().__init__(message)
        self.error_type, self.trace = error_type, trace or []


def load_handler(module_name: str, function: str | None):
    """Import the module from the task root and find the handler function."""
    try:
        module = importlib.import_module(module_name)
    except SyntaxError as exc:
        raise HandlerError("Runtime.UserCodeSyntaxError",
                           f"Syntax error in module '{module_name}': {exc}",
                           [f'  File "{exc.filename}" Line {exc.lineno}\n    {exc.text}']) from None
    except ImportError as exc:
        raise HandlerError("Runtime.ImportModuleError",
                           f"Unable to import module '{module_name}': {exc}") from None
    names = [function] if function else ["lambda_handler", "handler"]
    for name in names:
        if callable(getattr(module, name, None)):
            return getattr(module, name)
    raise HandlerError("Runtime.HandlerNotFound",
                       f"Handler '{' or '.join(names)}' missing on module '{module_name}'")


def error_object(error_type: str, message: str, trace: list[str]) -> dict:
    return {"errorMessage": message, "errorType": error_type, "requestId": _request_id,
            "stackTrace": trace}


def user_trace(tb) -> list[str]:
    """The traceback without this worker's own frames, as the runtime reports it."""
    frames = [f for f in traceback.extract_tb(tb) if f.filename != __file__]
    return traceback.format_list(frames)


def log_error(error: dict) -> None:
    """An uncaught error in the function's log, as the runtime writes it."""
    lines = [f"[ERROR] {error['errorType']}: {error['errorMessage']}",
             "Traceback (most recent call last):"]
    for entry in error["stackTrace"]:
        lines += entry.rstrip("\n").splitlines()
    sys.__stdout__.write("\n".join(lines) + "\n")


def main() -> None:
    global _request_id
    proto = sys.__stdout__
    nonce = os.environ.pop("SIP_HARNESS_NONCE", "")
    task_root, module_name = sys.argv[1], sys.argv[2]
    function = sys.argv[3] if len(sys.argv) > 3 else None
    sys.path[0] = task_root  # in place of this script's folder
    import site  # without its path changes (-S): only the builtins a normal start has
    site.setquit()
    site.setcopyright()
    site.sethelper()
    setup_logging()
    started = time.monotonic()
    handler, init_error = None, None
    try:
        handler = load_handler(module_name, function)
    except HandlerError as exc:
        init_error = error_object(exc.error_type, str(exc), exc.trace)
    except Exception as exc:  # the module raised while it was imported
        init_error = error_object(type(exc).__name__, str(exc), user_trace(exc.__traceback__))
    if init_error:
        log_error(init_error)
    proto.write(nonce + json.dumps({"init": {
        "duration_ms": (time.monotonic() - started) * 1000, "error": init_error}}) + "\n")
    for line in sys.stdin:
        req = json.loads(line)
        _request_id = req["request_id"]
        answer: dict = {"id": req["id"]}
        if init_error:
            answer["error"] = init_error
        else:
            ctx = LambdaContext(req["request_id"], req["deadline_ms"], req["invoked_function_arn"])
            try:
                result = handler(req["event"], ctx)
                try:
                    json.dumps(result)
                    answer["result"] = result
                except (TypeError, ValueError) as exc:  # the runtime fails the invocation
                    answer["error"] = error_object("Runtime.MarshalError",
                                                   f"Unable to marshal response: {exc}", [])
                    log_error(answer["error"])
            except Exception as exc:
                answer["error"] = error_object(type(exc).__name__, str(exc),
                                               user_trace(exc.__traceback__))
                log_error(answer["error"])
        sys.stdout.flush()
        sys.stderr.flush()
        proto.write(nonce + json.dumps(answer) + "\n")


if __name__ == "__main__":
    main()
