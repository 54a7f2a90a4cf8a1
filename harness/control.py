"""The stub's control surface for a runner in another process or container (remote mode).

Beside the chime-sdk-voice API, under `/_harness/`: `info` (addresses and ports), `journal`,
`resources` (leak counts), `aws/dynamodb` (the local DynamoDB tables' items), `calls` (the
transactions up now, with their legs), `routes` (where the legs the SMA places go),
`configure` (serve another profile) and, on a served stub, `sessions` (a remote run's own SMA
and handler beside the served ones, see `sessions.py`). Errors use the same restJson1 format
as the API.
"""
from __future__ import annotations

import json

from aiohttp import web

from .profiles.strict import ProfileError
from .sma.errors import BadRequest


def _json(payload) -> web.Response:
    return web.Response(body=json.dumps(payload, default=str).encode(),
                        content_type="application/json")


def add_control_routes(app: web.Application, stub) -> None:
    """Register the `/_harness/` routes of `stub` on the API application."""

    async def info(request: web.Request) -> web.Response:
        cfg = stub.config
        return _json({"host": cfg.host, "sip_port": stub.sip_port, "tls_port": stub.tls_port,
                      "api_port": stub.api_port,
                      "rtp_port_range": cfg.rtp_port_range,
                      "applications": [a.sip_media_application_id for a in cfg.applications]})

    async def journal(request: web.Request) -> web.Response:
        return _json(stub.journal_json())

    async def resources(request: web.Request) -> web.Response:
        return _json(stub.count_resources())

    async def dynamodb(request: web.Request) -> web.Response:
        return _json(await stub.dynamodb_tables_async())

    async def routes(request: web.Request) -> web.Response:
        body = await _body(request)
        if not isinstance(body.get("number"), str) or not isinstance(body.get("uri"), str):
            raise BadRequest("routes needs {\"number\": ..., \"uri\": ...}")
        stub.add_route(body["number"], body["uri"])
        return _json({"routes": stub.config.routes})

    async def configure(request: web.Request) -> web.Response:
        body = await _body(request)
        if not isinstance(body.get("profile"), str):
            raise BadRequest("configure needs {\"profile\": PATH}")
        await stub.reconfigure(body["profile"])
        return await info(request)

    async def calls(request: web.Request) -> web.Response:
        out = [{"session": None, **c} for c in stub.live_calls()]
        for session_id, session in (stub.sessions.sessions.items() if stub.sessions else ()):
            out += [{"session": session_id, **c} for c in session.live_calls()]
        return _json(out)

    app.router.add_get("/_harness/info", info)
    app.router.add_get("/_harness/calls", calls)
    if stub.sessions is not None:
        add_session_routes(app, stub.sessions)
    app.router.add_get("/_harness/journal", journal)
    app.router.add_get("/_harness/resources", resources)
    app.router.add_get("/_harness/aws/dynamodb", dynamodb)
    app.router.add_post("/_harness/routes", routes)
    app.router.add_post("/_harness/configure", configure)


def add_session_routes(app: web.Application, sessions) -> None:
    """`/_harness/sessions`: list (GET), open (POST {"profile": PATH}), close (DELETE .../ID)."""

    async def listing(request: web.Request) -> web.Response:
        return _json(sessions.list())

    async def open_session(request: web.Request) -> web.Response:
        body = await _body(request)
        if not isinstance(body.get("profile"), str):
            raise BadRequest("sessions needs {\"profile\": PATH}")
        try:
            info = await sessions.open(body["profile"])
        except (ProfileError, OSError) as exc:
            raise BadRequest(f"the session's profile cannot be served: {exc}") from None
        return web.Response(status=201, body=json.dumps(info).encode(), content_type="application/json")

    async def close_session(request: web.Request) -> web.Response:
        return _json(await sessions.close(request.match_info["session_id"]))

    app.router.add_get("/_harness/sessions", listing)
    app.router.add_post("/_harness/sessions", open_session)
    app.router.add_delete("/_harness/sessions/{session_id}", close_session)


async def _body(request: web.Request) -> dict:
    try:
        body = json.loads(await request.read() or b"{}")
    except ValueError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body
