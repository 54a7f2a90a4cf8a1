"""Running a user's handler the way Lambda does.

A handler is a Python function (`module:function` or a `.py` file), a Node.js handler file
(`.js`/`.cjs`/`.mjs`, run by the machine's real `node`), or any Lambda-Invoke-compatible HTTP
endpoint (`http://…`, as the Lambda runtime emulator, SAM local or LocalStack serve it).
Functions run in warm worker processes, never inside the stub's event loop; a timeout per
attempt kills the worker (the next attempt is a cold start) and a failed attempt is retried
once, as the service does (sma-reference §5.1).
"""
from __future__ import annotations

import abc
import asyncio
import json
import os
import secrets
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

DEFAULT_TIMEOUT_S = 5.0
MAX_RESPONSE_BYTES = 6 * 1024 * 1024  # Lambda's synchronous response payload limit
DEFAULT_RETRIES = 1
NODE_SUFFIXES = (".js", ".cjs", ".mjs")
_NODE_WORKER = Path(__file__).with_name("node_worker.js")


@dataclass
class InvocationResult:
    """What one invocation (with its retries) produced.

    `response` is the handler's return value; `failed` is True when every attempt failed
    (error or timeout); `errors` lists each failed attempt's error object; `invalid_json`
    says why a return value could not be serialized as JSON.
    """

    response: object = None
    failed: bool = False
    attempts: int = 0
    duration_ms: float = 0.0
    errors: list[dict] = field(default_factory=list)
    invalid_json: str | None = None


@dataclass(frozen=True)
class FunctionConfig:
    """The Lambda-side settings of one handler."""

    spec: str
    function_name: str = "sma-handler"
    env: dict = field(default_factory=dict)
    timeout_s: float = DEFAULT_TIMEOUT_S
    retries: int = DEFAULT_RETRIES
    region: str = "us-east-1"
    account: str = "123456789012"
    cwd: Path | None = None
    log_path: Path | None = None
    max_workers: int = 8


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
        return {"event": event, "request_id": str(uuid.uuid4()), "function_name": c.function_name,
                "region": c.region, "account": c.account,
                "deadline_ms": time.time() * 1000 + c.timeout_s * 1000}

    def _timeout_error(self) -> dict:
        return {"errorType": "Sandbox.Timedout",
                "errorMessage": f"Task timed out after {self.config.timeout_s:.2f} seconds"}

    @abc.abstractmethod
    async def _attempt(self, request: dict) -> dict:
        """One attempt: a dict with `result`, `error` or `unserializable`."""

    @property
    def worker_count(self) -> int:
        return 0

    async def close(self) -> None:
        """Release workers and connections."""


class _Worker:
    """One warm process speaking JSON lines; answers are the lines that start with `nonce`."""

    def __init__(self, proc: asyncio.subprocess.Process, nonce: str, log):
        self.proc, self.nonce, self.log = proc, nonce.encode(), log
        self.ids = 0

    async def call(self, request: dict) -> dict:
        self.ids += 1
        request = {**request, "id": self.ids}
        self.proc.stdin.write((json.dumps(request) + "\n").encode())
        await self.proc.stdin.drain()
        while True:
            try:
                line = await self.proc.stdout.readuntil(b"\n")
            except asyncio.IncompleteReadError:
                raise ConnectionError(f"handler process exited with code {await self.proc.wait()}") from None
            if line.startswith(self.nonce):
                return json.loads(line[len(self.nonce):])
            if self.log is not None:  # the handler's own output on stdout is its log
                self.log.write(line)

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()


class ProcessHandler(HandlerRunner):
    """A function in warm worker processes, one invocation per process at a time."""

    def __init__(self, config: FunctionConfig, argv: list[str]):
        super().__init__(config)
        self.argv = argv
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self._log = None
        self.cold_starts = 0

    async def _spawn(self) -> _Worker:
        c = self.config
        if c.log_path is not None and self._log is None:
            self._log = open(c.log_path, "ab", buffering=0)
        nonce = "@@sip-harness-" + secrets.token_hex(8) + "@@"
        env = {**os.environ, **c.env, "AWS_LAMBDA_FUNCTION_NAME": c.function_name,
               "AWS_REGION": c.region, "AWS_DEFAULT_REGION": c.region,
               "PYTHONUNBUFFERED": "1", "SIP_HARNESS_NONCE": nonce}
        proc = await asyncio.create_subprocess_exec(
            *self.argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=self._log if self._log is not None else asyncio.subprocess.DEVNULL,
            cwd=str(c.cwd) if c.cwd else None, env=env, limit=MAX_RESPONSE_BYTES)
        self.cold_starts += 1
        worker = _Worker(proc, nonce, self._log)
        self._all.add(worker)
        return worker

    async def _attempt(self, request: dict) -> dict:
        worker = self._idle.pop() if self._idle else await self._spawn()
        try:
            answer = await asyncio.wait_for(worker.call(request), self.config.timeout_s)
        except asyncio.TimeoutError:
            await self._discard(worker)
            return {"error": self._timeout_error()}
        except asyncio.LimitOverrunError:
            await self._discard(worker)
            return {"error": {"errorType": "Function.ResponseSizeTooLarge",
                              "errorMessage": f"Response payload size exceeded maximum allowed payload "
                                              f"size ({MAX_RESPONSE_BYTES} bytes)."}}
        except (ConnectionError, ValueError) as exc:  # died, or a line that is not JSON
            await self._discard(worker)
            return {"error": {"errorType": "Runtime.ExitError", "errorMessage": str(exc)}}
        self._idle.append(worker)
        return answer

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


class HttpInvokeHandler(HandlerRunner):
    """A Lambda-Invoke-compatible endpoint: `POST {base}/2015-03-31/functions/{name}/invocations`.

    `spec` is the base URL, or the full invocation URL.
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
        headers = {"Content-Type": "application/json", "X-Amz-Invocation-Type": "RequestResponse"}
        try:
            async with self._session.post(self.url, data=json.dumps(request["event"]), headers=headers,
                                          timeout=aiohttp.ClientTimeout(total=self.config.timeout_s)) as resp:
                body = await resp.read()
                function_error = resp.headers.get("X-Amz-Function-Error")
                status = resp.status
        except asyncio.TimeoutError:
            return {"error": self._timeout_error()}
        except aiohttp.ClientError as exc:
            return {"error": {"errorType": "ServiceException", "errorMessage": str(exc)}}
        if status >= 300 or function_error:
            return {"error": {"errorType": function_error or f"HTTP{status}",
                              "errorMessage": body.decode("utf-8", "replace")[:2000]}}
        try:
            return {"result": json.loads(body) if body.strip() else None}
        except ValueError as exc:
            return {"unserializable": f"response is not JSON: {exc}"}

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def create_handler(config: FunctionConfig) -> HandlerRunner:
    """The runner for a handler spec: an HTTP endpoint, a Node.js file or a Python function."""
    spec = config.spec
    if spec.startswith(("http://", "https://")):
        return HttpInvokeHandler(config)
    target, _, export = spec.partition(":")
    if target.endswith(NODE_SUFFIXES):
        argv = ["node", str(_NODE_WORKER), target] + ([export] if export else [])
        return ProcessHandler(config, argv)
    return ProcessHandler(config, [sys.executable, "-m", "harness.sma.handler_worker", spec])
