"""Local AWS services for a handler's own SDK calls (DynamoDB, S3, SSM, Polly, ... as moto
emulates them), one server per run on 127.0.0.1, started and stopped with the stub.

The server runs in a process of its own (`local_aws_server.py`), so an SDK call of the
handler never competes with the stub's media clock; this module drives it from the stub's
event loop.
"""
from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

START_TIMEOUT_S = 60.0  # importing moto on a loaded 2-core machine
REQUEST_TIMEOUT_S = 30.0


class LocalAwsError(RuntimeError):
    """The local services could not start, or refused the seed (moto's words follow)."""


@dataclass(frozen=True)
class LocalAwsConfig:
    """What to serve: `seed` is plain JSON, `{"dynamodb": [{"name", "key": [[attribute,
    "S"|"N"|"B"], ...], "items": [...], "indexes": {name: [[attribute, type], ...]}}],
    "s3": [{"name", "objects": [{"key", "file"|"body"}]}], "ssm": [{"name", "value", "type"}]}`,
    created in `region`."""

    region: str = "us-east-1"
    seed: dict = field(default_factory=dict)


class LocalAws:
    """A running moto server with its seed applied."""

    def __init__(self, proc: asyncio.subprocess.Process, port: int):
        self.proc, self.port = proc, port
        self._lock = asyncio.Lock()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    async def start(cls, config: LocalAwsConfig, log_path: Path | None = None) -> "LocalAws":
        """Start the server and apply the seed; LocalAwsError says why when it cannot."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        log = open(log_path, "ab") if log_path is not None else None
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "harness.local_aws_server", stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=log or asyncio.subprocess.DEVNULL, env=env,
                limit=64 * 1024 * 1024)
        finally:
            if log is not None:
                log.close()
        proc.stdin.write((json.dumps({"region": config.region, **config.seed}) + "\n").encode())
        server = cls(proc, 0)
        try:
            answer = await server._read(START_TIMEOUT_S)
        except LocalAwsError:
            await server.close()
            raise
        if "ready" not in answer:
            await server.close()
            raise LocalAwsError(f"the local AWS services refused the seed: {answer.get('error')}")
        server.port = answer["ready"]["port"]
        return server

    async def _read(self, timeout: float) -> dict:
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        except asyncio.TimeoutError:
            raise LocalAwsError(f"the local AWS services did not answer within {timeout:.0f} s") from None
        if not line:
            raise LocalAwsError(f"the local AWS services exited (code {await self.proc.wait()}); "
                                f"see aws/moto.log in the run folder")
        return json.loads(line)

    async def dynamodb_tables(self) -> dict[str, list[dict]]:
        """Every table's items as plain JSON values, in key order."""
        async with self._lock:
            self.proc.stdin.write(b'{"op": "dynamodb"}\n')
            await self.proc.stdin.drain()
            return (await self._read(REQUEST_TIMEOUT_S))["tables"]

    async def close(self) -> None:
        """Stop the server (end of input; killed if it does not go)."""
        if self.proc.returncode is None:
            try:
                self.proc.stdin.close()
                await asyncio.wait_for(self.proc.wait(), 5)
            except (asyncio.TimeoutError, ConnectionError):
                self.proc.kill()
        await self.proc.wait()
