"""Running a user's handler the way Lambda does.

A handler is a Python function (`module:function` or a `.py` file), a Node.js handler file
(`.js`/`.cjs`/`.mjs`), or any Lambda-Invoke-compatible HTTP endpoint (`http://…`, as the
Lambda runtime emulator, SAM local or LocalStack serve it). Python and Node.js functions run
in warm worker processes of their runtime (`runtimes.py`), never inside the stub's event
loop, with Lambda's environment and nothing else (`lambda_env.py`); a timeout per attempt
kills the worker (the next attempt is a cold start) and a failed attempt is retried once, as
the service does (sma-reference §5.1). Each attempt's log is what CloudWatch would show
(`lambda_log.py`): it is appended to the function's log file and returned with the result.
"""
from __future__ import annotations

import abc
import asyncio
import base64
import json
import os
import secrets
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from .lambda_env import (LOCAL_CREDENTIALS, Endpoints, FunctionIdentity, RoleCredentials,
                         lambda_environment)
from .lambda_log import (InvocationLog, end_line, init_start_line, peak_memory_mb, report_line,
                         start_line, timeout_line)
from .runtimes import NODE_WORKER, PYTHON_WORKER, ResolvedRuntime, resolve

DEFAULT_TIMEOUT_S = 5.0
DEFAULT_MEMORY_MB = 128
MAX_RESPONSE_BYTES = 6 * 1024 * 1024  # Lambda's synchronous response payload limit
DEFAULT_RETRIES = 1


@dataclass
class InvocationResult:
    """What one invocation (with its retries) produced.

    `response` is the handler's return value; `failed` is True when every attempt failed
    (error or timeout); `errors` lists each failed attempt's error object (a return value the
    runtime cannot serialize fails the attempt, as Lambda's runtimes do); `invalid_json` says
    why the body an HTTP Invoke endpoint answered is not JSON; `requests` holds each attempt's
    RequestId, REPORT figures and log lines (`InvocationLog.to_json`).
    """

    response: object = None
    failed: bool = False
    attempts: int = 0
    duration_ms: float = 0.0
    errors: list[dict] = field(default_factory=list)
    invalid_json: str | None = None
    requests: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class FunctionConfig:
    """The Lambda-side settings of one handler: its function configuration (name, runtime,
    memory, timeout, `env` = the configuration's Environment) and where its SDK calls go."""

    spec: str
    function_name: str = "sma-handler"
    env: dict = field(default_factory=dict)
    runtime: str | None = None
    memory_mb: int = DEFAULT_MEMORY_MB
    layers: tuple[str, ...] = ()
    endpoints: Endpoints = field(default_factory=Endpoints)
    credentials: RoleCredentials = LOCAL_CREDENTIALS
    timeout_s: float = DEFAULT_TIMEOUT_S
    retries: int = DEFAULT_RETRIES
    region: str = "us-east-1"
    account: str = "123456789012"
    cwd: Path | None = None
    log_path: Path | None = None
    max_workers: int = 8

    @property
    def function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account}:function:{self.function_name}"


class HandlerRunner(abc.ABC):
    """Invokes one function with the service's timeout and retry rules."""

    def __init__(self, config: FunctionConfig):
        self.config = config
        self._slots = asyncio.Semaphore(config.max_workers)

    async def invoke(self, event: dict) -> InvocationResult:
        """Invoke with `event`; a failed or timed-out attempt is retried `retries` times."""
        result = InvocationResult()
        start = time.perf_counter()
        async with self._slots:
            for _ in range(1 + self.config.retries):
                result.attempts += 1
                answer = await self._attempt(self._request(event))
                if answer.get("log") is not None:
                    result.requests.append(answer["log"].to_json())
                if "error" in answer:
                    result.errors.append(answer["error"])
                    continue
                result.invalid_json = answer.get("unserializable")
                result.response = answer.get("result")
                break
            else:
                result.failed = True
        result.duration_ms = (time.perf_counter() - start) * 1000
        return result

    def _request(self, event: dict) -> dict:
        c = self.config
        return {"event": event, "request_id": str(uuid.uuid4()),
                "invoked_function_arn": c.function_arn,
                "deadline_ms": time.time() * 1000 + c.timeout_s * 1000}

    def _timeout_error(self) -> dict:
        return {"errorType": "Sandbox.Timedout",
                "errorMessage": f"Task timed out after {self.config.timeout_s:.2f} seconds"}

    @abc.abstractmethod
    async def _attempt(self, request: dict) -> dict:
        """One attempt: a dict with `result`, `error` or (from an HTTP Invoke endpoint whose
        body is not JSON) `unserializable`, and `log` (an `InvocationLog`, or None when the
        function's log is out of reach)."""

    @property
    def worker_count(self) -> int:
        return 0

    async def close(self) -> None:
        """Release workers and connections."""


class _Worker:
    """One warm process speaking JSON lines on one pipe: answers are the lines that carry
    `nonce`, every other line is the function's log. Its first answer reports the init."""

    def __init__(self, proc: asyncio.subprocess.Process, nonce: str):
        self.proc, self.nonce = proc, nonce.encode()
        self.ids = 0
        self.spawned = time.perf_counter()
        self.initialized = False

    async def call(self, request: dict, log: InvocationLog) -> dict:
        self.ids += 1
        self.proc.stdin.write((json.dumps({**request, "id": self.ids}) + "\n").encode())
        await self.proc.stdin.drain()
        while True:
            try:
                line = await self.proc.stdout.readuntil(b"\n")
            except asyncio.IncompleteReadError as exc:
                if exc.partial:
                    log.lines.append(exc.partial.decode("utf-8", "replace"))
                raise ConnectionError(f"handler process exited with code {await self.proc.wait()}") from None
            at = line.find(self.nonce)
            if at < 0:
                log.lines.append(line[:-1].decode("utf-8", "replace"))
                continue
            if at > 0:  # output that did not end its line
                log.lines.append(line[:at].decode("utf-8", "replace"))
            message = json.loads(line[at + len(self.nonce):])
            if "init" not in message:
                return message
            self.initialized, log.started = True, time.perf_counter()
            log.init_ms = (log.started - self.spawned) * 1000  # the process's start and import
            log.lines.append(start_line(log.request_id))

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()


class ProcessHandler(HandlerRunner):
    """A function in warm worker processes of its runtime, one invocation per process at a
    time."""

    def __init__(self, config: FunctionConfig):
        super().__init__(config)
        self.runtime: ResolvedRuntime = resolve(config.runtime, config.spec)
        self.argv, self.identity = self._launch()
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self._log = None
        self._home: Path | None = None
        self.cold_starts = 0

    def _launch(self) -> tuple[list[str], FunctionIdentity]:
        """The worker's command line and what the function's configuration says about it."""
        c, rt = self.config, self.runtime
        target, _, export = c.spec.partition(":")
        extra = [export] if export else []
        if rt.runtime.language == "nodejs":
            path = Path(target).resolve()
            task_root, handler = path.parent, f"{path.stem}.{export or 'handler'}"
            argv = [rt.executable, str(NODE_WORKER), str(path)] + extra
        else:
            if target.endswith(".py") or os.sep in target:
                path = Path(target).resolve()
                task_root, module = path.parent, path.stem
            else:
                task_root, module = Path(c.cwd or os.getcwd()).resolve(), target
            handler = f"{module}.{export or 'lambda_handler'}"
            argv = [rt.executable, "-S", "-u", str(PYTHON_WORKER), str(task_root), module] + extra
        return argv, FunctionIdentity(c.function_name, c.region, c.memory_mb, task_root,
                                      handler, dict(c.env), tuple(Path(l) for l in c.layers))

    async def _spawn(self) -> _Worker:
        c = self.config
        if c.log_path is not None and self._log is None:
            self._log = open(c.log_path, "ab", buffering=0)
        if self._home is None:  # HOME of the function's own: never the user's ~/.aws
            self._home = Path(tempfile.mkdtemp(prefix="sip-harness-lambda-home-"))
        nonce = "@@sip-harness-" + secrets.token_hex(8) + "@@"
        stream = f"{time.strftime('%Y/%m/%d', time.gmtime())}/[$LATEST]{secrets.token_hex(16)}"
        env = lambda_environment(self.runtime, self.identity, c.endpoints, self._home, stream,
                                 c.credentials)
        env["SIP_HARNESS_NONCE"] = nonce
        proc = await asyncio.create_subprocess_exec(
            *self.argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, cwd=str(self.identity.task_root), env=env,
            limit=MAX_RESPONSE_BYTES)
        self.cold_starts += 1
        worker = _Worker(proc, nonce)
        self._all.add(worker)
        return worker

    async def _attempt(self, request: dict) -> dict:
        worker = self._idle.pop() if self._idle else await self._spawn()
        log = InvocationLog(request["request_id"])
        log.lines.append(start_line(log.request_id) if worker.initialized else
                         init_start_line(self.runtime.name, self.runtime.describe()))
        log.started = time.perf_counter()
        answer = await self._call(worker, request, log)
        log.duration_ms = (time.perf_counter() - log.started) * 1000
        log.max_memory_mb = peak_memory_mb(worker.proc.pid)
        if log.status is None:  # answered, with a result or the function's own error: warm
            self._idle.append(worker)
        else:  # timed out or broke the protocol: the next attempt is a cold start
            await self._discard(worker)
        log.lines += [end_line(log.request_id),
                      report_line(log.request_id, log.duration_ms, self.config.memory_mb,
                                  log.max_memory_mb, log.init_ms, log.status)]
        if self._log is not None:
            self._log.write(("\n".join(log.lines) + "\n").encode())
        return {**answer, "log": log}

    async def _call(self, worker: _Worker, request: dict, log: InvocationLog) -> dict:
        """The worker's answer, or the platform's error that ended the attempt (then
        `log.status` is "timeout" or "error" and the worker is not reused)."""
        try:
            return await asyncio.wait_for(worker.call(request, log), self.config.timeout_s)
        except (asyncio.TimeoutError, asyncio.LimitOverrunError, ConnectionError, ValueError) as exc:
            if not worker.initialized:  # it ended during init: the invocation still starts
                log.lines.append(start_line(log.request_id))
            failure = exc
        if isinstance(failure, asyncio.TimeoutError):
            log.status = "timeout"
            log.lines.append(timeout_line(log.request_id, self.config.timeout_s))
            return {"error": self._timeout_error()}
        log.status = "error"
        if isinstance(failure, asyncio.LimitOverrunError):
            return {"error": {"errorType": "Function.ResponseSizeTooLarge",
                              "errorMessage": f"Response payload size exceeded maximum allowed payload "
                                              f"size ({MAX_RESPONSE_BYTES} bytes)."}}
        return {"error": {"errorType": "Runtime.ExitError",  # died, or a line that is not JSON
                          "errorMessage": str(failure)}}

    async def _discard(self, worker: _Worker) -> None:
        self._all.discard(worker)
        await worker.kill()

    @property
    def worker_count(self) -> int:
        return len(self._all)

    async def close(self) -> None:
        for worker in list(self._all):
            await self._discard(worker)
        self._idle.clear()
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._home is not None:
            shutil.rmtree(self._home, ignore_errors=True)
            self._home = None


class HttpInvokeHandler(HandlerRunner):
    """A Lambda-Invoke-compatible endpoint: `POST {base}/2015-03-31/functions/{name}/invocations`.

    `spec` is the base URL, or the full invocation URL. The request asks for the log's tail
    (`X-Amz-Log-Type: Tail`); an endpoint that returns it (`X-Amz-Log-Result`) has it in the
    attempt's log.
    """

    def __init__(self, config: FunctionConfig):
        super().__init__(config)
        url = config.spec.rstrip("/")
        if "/2015-03-31/functions/" not in url:
            url = f"{url}/2015-03-31/functions/{config.function_name}/invocations"
        self.url = url
        self._session: aiohttp.ClientSession | None = None

    async def _attempt(self, request: dict) -> dict:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        headers = {"Content-Type": "application/json", "X-Amz-Invocation-Type": "RequestResponse",
                   "X-Amz-Log-Type": "Tail"}
        try:
            async with self._session.post(self.url, data=json.dumps(request["event"]), headers=headers,
                                          timeout=aiohttp.ClientTimeout(total=self.config.timeout_s)) as resp:
                body = await resp.read()
                function_error = resp.headers.get("X-Amz-Function-Error")
                status = resp.status
                log = _tail_log(resp.headers)
        except asyncio.TimeoutError:
            return {"error": self._timeout_error()}
        except aiohttp.ClientError as exc:
            return {"error": {"errorType": "ServiceException", "errorMessage": str(exc)}}
        if status >= 300 or function_error:
            return {"error": {"errorType": function_error or f"HTTP{status}",
                              "errorMessage": body.decode("utf-8", "replace")[:2000]}, "log": log}
        try:
            return {"result": json.loads(body) if body.strip() else None, "log": log}
        except ValueError as exc:
            return {"unserializable": f"response is not JSON: {exc}", "log": log}

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _tail_log(headers) -> InvocationLog | None:
    """The log tail a Lambda Invoke response carries, with the endpoint's RequestId."""
    tail = headers.get("X-Amz-Log-Result")
    if not tail:
        return None
    try:
        text = base64.b64decode(tail).decode("utf-8", "replace")
    except ValueError:
        return None
    return InvocationLog(headers.get("x-amzn-RequestId", ""), text.splitlines())


def create_handler(config: FunctionConfig) -> HandlerRunner:
    """The runner for a handler spec: an HTTP endpoint, or a Python or Node.js function in
    its runtime (RuntimeUnavailable when this machine cannot honour the runtime)."""
    if config.spec.startswith(("http://", "https://")):
        return HttpInvokeHandler(config)
    return ProcessHandler(config)
