"""The stub's control surface for a runner in another process or container (remote mode).

Beside the chime-sdk-voice API, under `/_harness/`: `info` (addresses and ports), `journal`,
`resources` (leak counts), `aws/dynamodb` (the local DynamoDB tables' items), `routes` (where
the legs the SMA places go) and `configure` (serve another profile). Errors use the same restJson1 format as the API.
"""
from __future__ import annotations

import json

from aiohttp import web

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

    app.router.add_get("/_harness/info", info)
    app.router.add_get("/_harness/journal", journal)
    app.router.add_get("/_harness/resources", resources)
    app.router.add_get("/_harness/aws/dynamodb", dynamodb)
    app.router.add_post("/_harness/routes", routes)
    app.router.add_post("/_harness/configure", configure)


async def _body(request: web.Request) -> dict:
    try:
        body = json.loads(await request.read() or b"{}")
    except ValueError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body
