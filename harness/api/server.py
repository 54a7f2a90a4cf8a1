"""The chime-sdk-voice REST surface of the stub, on aiohttp, mapping HTTP to the service model.

The model (`backend`) owns every piece of call state; this module only parses requests,
validates them as the service model does, and writes responses and modeled errors.
"""
from __future__ import annotations

import json
import logging
import re
import uuid
from typing import Protocol

from aiohttp import web

from ..sma.errors import BadRequest, SmaError
from .errors import error_parts

log = logging.getLogger(__name__)
NON_EMPTY = re.compile(r".*\S.*")
MAX_ARGUMENTS = 20
MAX_BODY_BYTES = 256 * 1024


class Backend(Protocol):
    def update_call(self, sma_id: str, transaction_id: str, arguments: dict[str, str]) -> str: ...


def _error(code: str, message: str) -> web.Response:
    status, headers, body = error_parts(code, message)
    return web.Response(status=status, headers=headers, body=body)


def _ok(status: int, payload: dict) -> web.Response:
    return web.Response(status=status, body=json.dumps(payload).encode(),
                        headers={"Content-Type": "application/json",
                                 "x-amzn-RequestId": str(uuid.uuid4())})


def _string_map(body: dict, member: str, required: bool) -> dict[str, str]:
    value = body.get(member)
    if value is None:
        if required:
            raise BadRequest(f"{member} is required")
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"{member} must be a map of string to string")
    if len(value) > MAX_ARGUMENTS:
        raise BadRequest(f"{member} can contain at most {MAX_ARGUMENTS} entries, got {len(value)}")
    bad = [k for k, v in value.items() if not isinstance(v, str)]
    if bad:
        raise BadRequest(f"{member} values must be strings; not a string: {bad[0]!r}")
    return dict(value)


async def _json_body(request: web.Request) -> dict:
    raw = await request.read()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body


def _path_id(request: web.Request, name: str, label: str) -> str:
    value = request.match_info.get(name, "")
    if not NON_EMPTY.fullmatch(value):
        raise BadRequest(f"{label} must not be empty")
    return value


def build_app(backend: Backend) -> web.Application:
    """The aiohttp application serving the API for `backend`."""

    async def update_call(request: web.Request) -> web.Response:
        sma_id = _path_id(request, "sma_id", "SipMediaApplicationId")
        tx_id = _path_id(request, "tx_id", "TransactionId")
        arguments = _string_map(await _json_body(request), "Arguments", required=True)
        transaction_id = backend.update_call(sma_id, tx_id, arguments)
        return _ok(202, {"SipMediaApplicationCall": {"TransactionId": transaction_id}})

    async def ready(request: web.Request) -> web.Response:
        return _ok(200, {"status": "ready"})

    @web.middleware
    async def modeled_errors(request: web.Request, handler):
        try:
            return await handler(request)
        except SmaError as exc:
            return _error(exc.code, exc.message)
        except web.HTTPException as exc:
            if exc.status == 404:
                return _error("NotFound", f"no such resource: {request.method} {request.path}")
            if exc.status == 405:
                return _error("BadRequest", f"method {request.method} not allowed on {request.path}")
            if exc.status == 413:
                return _error("BadRequest", "request body too large")
            raise
        except Exception:
            log.exception("internal fault serving %s %s", request.method, request.path)
            return _error("ServiceFailure", "internal fault; see the stub's log")

    app = web.Application(middlewares=[modeled_errors], client_max_size=MAX_BODY_BYTES)
    # Ids may be blank in the path (botocore sends them so); the handler answers 400 for them.
    app.router.add_post("/sip-media-applications/{sma_id:[^/]*}/calls/{tx_id:[^/]*}", update_call)
    app.router.add_get("/ready", ready)
    return app
