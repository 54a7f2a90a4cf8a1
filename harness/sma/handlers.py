"""Running a user's handler the way Lambda does: warm worker processes, a timeout per
attempt that kills the worker (the next attempt is a cold start), and one retry."""
from __future__ import annotations

import asyncio
import os
import json
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_TIMEOUT_S = 5.0
DEFAULT_RETRIES = 1
_NO_RESPONSE = object()


@dataclass
class InvocationResult:
    """What one invocation (with its retries) produced.

    `response` is the handler's return value; `failed` is True when every attempt failed
    (error or timeout); `errors` lists each failed attempt's error object.
    """

    response: object = None
    failed: bool = False
    attempts: int = 0
    duration_ms: float = 0.0
    errors: list[dict] = field(default_factory=list)
    invalid_json: str | None = None


class _Worker:
    def __init__(self, proc: asyncio.subprocess.Process):
        self.proc = proc
        self.ids = 0

    async def call(self, request: dict) -> dict:
        self.ids += 1
        request["id"] = self.ids
        self.proc.stdin.write((json.dumps(request) + "\n").encode())
        await self.proc.stdin.drain()
        line = await self.proc.stdout.readline()
        if not line:
            raise ConnectionError(f"handler worker exited with code {await self.proc.wait()}")
        return json.loads(line)

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()


class PythonHandler:
    """A Python handler (`module:function` or a file path) in warm worker processes."""

    def __init__(self, spec: str, function_name: str = "sma-handler", env: dict | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S, retries: int = DEFAULT_RETRIES,
                 cwd: Path | None = None, log_path: Path | None = None, max_workers: int = 8,
                 region: str = "us-east-1", account: str = "123456789012"):
        self.spec, self.function_name = spec, function_name
        self.env, self.cwd, self.log_path = env or {}, cwd, log_path
        self.timeout_s, self.retries, self.max_workers = timeout_s, retries, max_workers
        self.region, self.account = region, account
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self._slots = asyncio.Semaphore(max_workers)
        self._log = None
        self.cold_starts = 0

    async def _spawn(self) -> _Worker:
        if self.log_path is not None and self._log is None:
            self._log = open(self.log_path, "ab")
        env = {**os.environ, **self.env, "AWS_LAMBDA_FUNCTION_NAME": self.function_name,
               "AWS_REGION": self.region, "PYTHONUNBUFFERED": "1"}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "harness.sma.handler_worker", self.spec,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=self._log if self._log is not None else asyncio.subprocess.DEVNULL,
            cwd=str(self.cwd) if self.cwd else None, env=env)
        self.cold_starts += 1
        worker = _Worker(proc)
        self._all.add(worker)
        return worker

    async def invoke(self, event: dict) -> InvocationResult:
        """Invoke with `event`; retry once on error or timeout, as the service does."""
        result = InvocationResult()
        start = time.perf_counter()
        async with self._slots:
            for _ in range(1 + self.retries):
                result.attempts += 1
                answer = await self._attempt(event)
                if "error" in answer:
                    result.errors.append(answer["error"])
                    continue
                if "unserializable" in answer:
                    result.invalid_json = answer["unserializable"]
                result.response = answer.get("result")
                break
            else:
                result.failed = True
        result.duration_ms = (time.perf_counter() - start) * 1000
        return result

    async def _attempt(self, event: dict) -> dict:
        worker = self._idle.pop() if self._idle else await self._spawn()
        request = {"event": event, "request_id": str(uuid.uuid4()),
                   "function_name": self.function_name, "region": self.region,
                   "account": self.account,
                   "deadline_ms": time.time() * 1000 + self.timeout_s * 1000}
        try:
            answer = await asyncio.wait_for(worker.call(request), self.timeout_s)
        except asyncio.TimeoutError:
            await self._discard(worker)
            return {"error": {"errorType": "Sandbox.Timedout",
                              "errorMessage": f"Task timed out after {self.timeout_s:.2f} seconds"}}
        except (ConnectionError, ValueError) as exc:
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
        """Stop every worker process."""
        for worker in list(self._all):
            if worker.proc.stdin and not worker.proc.stdin.is_closing():
                worker.proc.stdin.close()
            await self._discard(worker)
        self._idle.clear()
        if self._log is not None:
            self._log.close()
            self._log = None
