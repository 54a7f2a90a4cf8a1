"""The chime-sdk-voice REST surface of the stub, on aiohttp, mapping HTTP to the service model.

The backend owns every piece of call state. In front of every route this module refuses a
request whose Host names another site (403, see `hosts.py`); in front of each operation it
answers 503 while the backend drains, checks the SigV4 signature (401) and the caller
account's token bucket (429); any failure, including aiohttp's own (404 route, 405 method, 413
body), leaves as a modeled restJson1 error, and an unexpected exception as a logged
ServiceFailure.
"""
from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from aiohttp import web

from ..sma.errors import BadRequest, Forbidden, ServiceUnavailable, SmaError
from .auth import SigV4Verifier
from .errors import Throttled, error_parts
from .hosts import is_allowed
from .openapi import openapi_document
from .operations import CALLER_ACCOUNT, OPERATION_NAMES, ROUTES, Backend, Operations, ok
from .throttle import TokenBuckets

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 256 * 1024
#: The application's SigV4 verifier (None when no credentials are configured), for the
#: routes other modules add (the control routes accept a signature instead of their token).
VERIFIER = web.AppKey("sigv4_verifier", object)


@dataclass(frozen=True)
class ApiSettings:
    """Caller identities, allowed Host names and throttling.

    `credentials` maps an access key id to (secret access key, account id); when empty no
    signature is checked and every caller counts as the owner of every SMA. `allowed_hosts`
    are the host names (beyond IP literals and localhost) a request's Host may carry. A
    connection is closed when a request's head, or the next request, takes longer than
    `idle_timeout_s` to arrive; a body slower than that is refused.
    Throttling is off while `throttle_rate` (requests a second per account) is None;
    `throttle_burst` defaults to the rate rounded up. `clock` paces the buckets;
    `wall_clock` dates signatures.
    """

    credentials: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    allowed_hosts: frozenset[str] = frozenset()
    idle_timeout_s: float = 15.0  # for a request's headers or body to arrive, and between requests
    throttle_rate: float | None = None
    throttle_burst: int | None = None
    clock: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], float] = time.time


def _error(code: str, message: str) -> web.Response:
    status, headers, body = error_parts(code, message)
    return web.Response(status=status, headers=headers, body=body)


def _http_error(request: web.Request, exc: web.HTTPException) -> web.Response:
    """aiohttp's own refusals in the service's format."""
    if exc.status == 404:
        return _error("NotFound", f"no such resource: {request.method} {request.path}")
    if exc.status == 405:  # the service models no 405: a wrong method is a bad request
        response = _error("BadRequest", f"method {request.method} is not allowed on "
                                        f"{request.path}")
        response.headers["Allow"] = exc.headers["Allow"]
        return response
    if exc.status == 413:
        return _error("BadRequest", f"request body is larger than {MAX_BODY_BYTES} bytes")
    if exc.status < 500:
        return _error("BadRequest", exc.reason)
    log.error("HTTP %s serving %s %s: %s", exc.status, request.method, request.path, exc.reason)
    return _error("ServiceFailure", exc.reason)


def build_app(backend: Backend, settings: ApiSettings = ApiSettings()) -> web.Application:
    """The aiohttp application serving the API for `backend`."""
    verifier = SigV4Verifier(settings.credentials, settings.wall_clock) \
        if settings.credentials else None
    buckets = None
    if settings.throttle_rate is not None:
        burst = settings.throttle_burst or max(1, math.ceil(settings.throttle_rate))
        buckets = TokenBuckets(settings.throttle_rate, burst, settings.clock)

    def draining() -> bool:
        # A backend that never drains may leave the attribute out.
        return getattr(backend, "draining", False)

    async def admit(request: web.Request) -> None:
        """Availability, then identity, then rate, as the service front does."""
        if draining():
            raise ServiceUnavailable("The service is shutting down")
        caller = None
        if verifier is not None:
            caller = verifier.caller_account(request.method, request.raw_path, request.headers,
                                             await request.read())
        request[CALLER_ACCOUNT] = caller
        if buckets is not None and not buckets.take(caller or ""):
            raise Throttled("Rate exceeded")

    @web.middleware
    async def service_front(request: web.Request, handler):
        try:
            if not is_allowed(request.headers.get("Host"), settings.allowed_hosts):
                raise Forbidden(f"Host {request.headers['Host'][:100]!r} is not a name of this "
                                f"stub; start it with --allowed-host to serve that name")
            if request.body_exists:
                try:
                    async with asyncio.timeout(settings.idle_timeout_s):
                        await request.read()  # kept: handlers read it again at no cost
                except TimeoutError:
                    raise BadRequest(f"the request body did not arrive within "
                                     f"{settings.idle_timeout_s:g} s") from None
            if request.match_info.route.name in OPERATION_NAMES:
                await admit(request)
            return await handler(request)
        except SmaError as exc:
            return _error(exc.code, exc.message)
        except web.HTTPException as exc:
            return _http_error(request, exc)
        except ConnectionResetError:  # the client went away mid-request: nobody to answer
            return _error("BadRequest", "the connection closed before the request was read")
        except Exception:
            log.exception("internal fault serving %s %s", request.method, request.path)
            return _error("ServiceFailure", "internal fault; see the stub's log")

    async def ready(request: web.Request) -> web.Response:
        if draining():
            raise ServiceUnavailable("The service is shutting down")
        return ok(200, {"status": "ready"})

    async def openapi(request: web.Request) -> web.Response:
        return ok(200, openapi_document())

    app = web.Application(middlewares=[service_front], client_max_size=MAX_BODY_BYTES)
    app[VERIFIER] = verifier
    operations = Operations(backend)
    for method, path, name, attribute in ROUTES:
        app.router.add_route(method, path, getattr(operations, attribute), name=name)
    app.router.add_get("/ready", ready)
    app.router.add_get("/openapi.json", openapi)
    return app
