"""The API front of a stub cluster: one chime-sdk-voice endpoint for N stub workers.

Each worker numbers its TransactionIds with its index (`sma.model.new_id(owner)`: the id's
last byte), so the front finds the owner of an UpdateSipMediaApplicationCall from the id
alone, with no registry to keep in step: the request goes to that worker, and when that
worker is gone (or the id is not one of the cluster's) the answer is the service's
NotFoundException. CreateSipMediaApplicationCall is placed by the workers in turn (the next
one when a worker does not answer). Every other operation goes to the first worker that
answers. Requests are forwarded as they came, Host header and signature included, so each
worker checks SigV4 itself with the cluster's credentials.
"""
from __future__ import annotations

import asyncio
import itertools
import re
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from ..api.errors import error_parts
from ..sma.model import owner_of

UPDATE = re.compile(r"^/sip-media-applications/([^/]+)/calls/([^/]+)$")
CREATE = re.compile(r"^/sip-media-applications/([^/]+)/calls$")
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                        "te", "trailers", "transfer-encoding", "upgrade", "content-length"})
TIMEOUT = aiohttp.ClientTimeout(total=30, connect=2)
MAX_BODY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ApiWorker:
    """A stub worker's API as the front reaches it."""

    index: int
    url: str  # http://host:port


class ClusterFront:
    """The aiohttp application of the front; `workers` in index order."""

    def __init__(self, workers: list[ApiWorker]):
        self.workers = {w.index: w for w in workers}
        self._turn = itertools.cycle(sorted(self.workers))
        self._session: aiohttp.ClientSession | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_get("/ready", self._ready)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        app.on_cleanup.append(self._close)
        return app

    async def _close(self, app) -> None:
        if self._session is not None:
            await self._session.close()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=TIMEOUT, auto_decompress=False)
        return self._session

    async def _ready(self, request: web.Request) -> web.Response:
        """200 when every worker is ready, else 503 naming those that are not."""
        async def ready(worker: ApiWorker) -> bool:
            try:
                async with self._client().get(worker.url + "/ready") as resp:
                    return resp.status == 200
            except (aiohttp.ClientError, asyncio.TimeoutError):
                return False
        states = await asyncio.gather(*(ready(w) for w in self.workers.values()))
        down = [w.index for w, up in zip(self.workers.values(), states) if not up]
        if down:
            return _error("ServiceUnavailable", f"stub workers not ready: {down}")
        return web.json_response({"status": "ready", "workers": len(self.workers)})

    async def _forward(self, request: web.Request) -> web.Response:
        body = await request.read()
        update = UPDATE.match(request.path)
        if update and request.method == "POST":
            owner = owner_of(update.group(2))
            worker = self.workers.get(owner) if owner is not None else None
            if worker is None:
                return _not_found(update.group(2))
            try:
                return await self._send(worker, request, body)
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                return _not_found(update.group(2))  # its worker is gone, and its calls with it
        order = [next(self._turn) for _ in self.workers] if CREATE.match(request.path) \
            and request.method == "POST" else sorted(self.workers)
        for index in order:
            try:
                return await self._send(self.workers[index], request, body)
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                continue
        return _error("ServiceUnavailable", "no stub worker answers")

    async def _send(self, worker: ApiWorker, request: web.Request, body: bytes) -> web.Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        async with self._client().request(request.method, worker.url + request.path_qs,
                                          data=body, headers=headers,
                                          allow_redirects=False) as resp:
            payload = await resp.read()
            out = {k: v for k, v in resp.headers.items() if k.lower() not in HOP_BY_HOP}
            return web.Response(status=resp.status, headers=out, body=payload)


def _error(code: str, message: str) -> web.Response:
    status, headers, body = error_parts(code, message)
    return web.Response(status=status, headers=headers, body=body)


def _not_found(transaction_id: str) -> web.Response:
    return _error("NotFound", f"Transaction {transaction_id} not found")
