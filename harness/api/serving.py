"""Serving the API so that every reply is in the service's format.

aiohttp answers a request it cannot parse (a raw non-ASCII byte in the path, a bad request
line or header, an over-long line, broken chunking) with its own text page before any
middleware runs. `ApiRunner` serves the application through connections that answer those
with a modeled BadRequest instead.
"""
from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.web_request import BaseRequest

from .errors import error_parts

log = logging.getLogger(__name__)


class _Connection(web.RequestHandler):
    def handle_error(self, request: BaseRequest, status: int = 500,
                     exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if request.writer.output_size > 0:
            return super().handle_error(request, status, exc, message)  # raises: too late
        if status < 500:
            log.info("unparsable request from %s: %s", request.remote, message or exc)
            code, text = "BadRequest", f"malformed HTTP request: {message or exc}"
        else:
            log.error("HTTP %s serving a request from %s", status, request.remote, exc_info=exc)
            code, text = "ServiceFailure", "internal fault; see the stub's log"
        status, headers, body = error_parts(code, text)
        response = web.Response(status=status, headers=headers, body=body)
        response.force_close()
        return response


class _Server(web.Server):
    # web.Server.__call__ with our connection class (test_api_http pins the behaviour).
    def __call__(self) -> web.RequestHandler:
        return _Connection(self, loop=self._loop, **self._kwargs)


class ApiRunner(web.AppRunner):
    """An `AppRunner` for `build_app`'s application; use it in place of `web.AppRunner`.

    `keepalive_timeout` bounds both the wait for the next request on a kept-alive connection
    and, from the moment a connection opens, the wait for a request's head to arrive whole.
    """

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _Server  # same state, our connection factory
        return server
