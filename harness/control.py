"""The stub's control surface for a runner in another process or container (remote mode).

Beside the chime-sdk-voice API, under `/_harness/`: `info` (addresses and ports), `journal`
(in pages), `malformed` (bad SIP counted per reason and source), `resources` (leak counts),
`aws/dynamodb` (the local DynamoDB tables' items), `calls` (the transactions up now, with
their legs), `routes` (where the legs the SMA places go), `configure` (serve another profile)
and, on a served stub, `sessions` (a remote run's own SMA and handler beside the served ones,
see `sessions.py`). `configure` and `sessions` run a profile's handler: code. So the routes
exist only when the operator enables them (`ControlSettings`), and every request must carry
`Authorization: Bearer <token>` or a SigV4 signature made with one of the API's credentials.
Both load profiles only from the folders the operator named, and their errors never quote the
file. Errors use the same restJson1 format as the API.
"""
from __future__ import annotations

import asyncio
import hmac
import json
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from .api.errors import Unauthorized
from .api.server import VERIFIER
from .api.validation import json_body
from .profiles.strict import ProfileError
from .sma.routes import RouteError, check_template
from .sma.errors import BadRequest, Forbidden, NotFound

PROFILE_SUFFIXES = (".yaml", ".yml")
JOURNAL_PAGE = 1000  # entries per page unless `limit` says otherwise
MAX_JOURNAL_PAGE = 10_000


@dataclass(frozen=True)
class ControlSettings:
    """The control routes are served only with these: `token` (None: only SigV4 with the
    API's credentials) and the folders `configure` may load profiles from."""

    token: str | None
    profile_dirs: tuple[Path, ...] = ()


def _json(payload) -> web.Response:
    return web.Response(body=json.dumps(payload, default=str).encode(),
                        content_type="application/json")


def _authorized(request: web.Request, settings: ControlSettings, body: bytes) -> None:
    header = request.headers.get("Authorization", "")
    scheme, _, credential = header.partition(" ")
    if scheme.lower() == "bearer" and settings.token is not None:
        if hmac.compare_digest(credential.strip().encode(), settings.token.encode()):
            return
        raise Unauthorized("the control token is not this stub's")
    verifier = request.app[VERIFIER]
    if header.startswith("AWS4-HMAC-SHA256") and verifier is not None:
        verifier.caller_account(request.method, request.raw_path, request.headers, body,
                                roles=False)
        return
    raise Unauthorized("the /_harness/ routes need Authorization: Bearer <control token>"
                       + (" or a SigV4 signature" if verifier is not None else ""))


def allowed_profile(name: str, folders: tuple[Path, ...]) -> Path:
    """The profile file `name` (absolute, or relative to one of `folders`), if it is a YAML
    file inside one of them; Forbidden or NotFound otherwise (without its content)."""
    roots = [f.resolve() for f in folders]
    candidates = [Path(name)] if Path(name).is_absolute() else [root / name for root in roots]
    for candidate in candidates:
        path = candidate.resolve()
        if any(root == path.parent or root in path.parents for root in roots):
            if path.suffix.lower() not in PROFILE_SUFFIXES or not path.is_file():
                raise NotFound(f"{name} is not a profile file (*.yaml) in the profile folders")
            return path
    raise Forbidden(f"{name} is outside the folders this stub loads profiles from "
                    f"({', '.join(map(str, roots)) or 'none'}); name them with --profiles-dir")


def add_control_routes(app: web.Application, stub, settings: ControlSettings) -> None:
    """Register the `/_harness/` routes of `stub` on the API application, each behind the
    token check."""

    def guarded(handler):
        async def guard(request: web.Request) -> web.Response:
            _authorized(request, settings, await request.read())
            return await handler(request)
        return guard

    async def info(request: web.Request) -> web.Response:
        cfg = stub.config
        return _json({"host": cfg.host, "sip_port": stub.sip_port, "tls_port": stub.tls_port,
                      "api_port": stub.api_port,
                      "rtp_port_range": cfg.rtp_port_range,
                      "applications": [a.sip_media_application_id for a in cfg.applications]})

    async def journal(request: web.Request) -> web.Response:
        since, limit = _index(request, "since", 0), _index(request, "limit", JOURNAL_PAGE)
        if not 1 <= limit <= MAX_JOURNAL_PAGE:
            raise BadRequest(f"limit must be from 1 to {MAX_JOURNAL_PAGE}")
        lines, following = stub.journal.page(since, limit)
        first, total = stub.journal.first, stub.journal.total
        body = await asyncio.get_running_loop().run_in_executor(None, _page_body, lines,
                                                                following, first, total)
        return web.Response(body=body, content_type="application/json")

    async def malformed(request: web.Request) -> web.Response:
        return _json(stub.malformed.to_json())

    async def resources(request: web.Request) -> web.Response:
        return _json(stub.count_resources())

    async def dynamodb(request: web.Request) -> web.Response:
        return _json(await stub.dynamodb_tables_async())

    async def routes(request: web.Request) -> web.Response:
        body = await json_body(request)
        if not isinstance(body.get("number"), str) or not isinstance(body.get("uri"), str):
            raise BadRequest("routes needs {\"number\": ..., \"uri\": ...}")
        try:
            stub.add_route(body["number"], check_template(body["uri"]))
        except RouteError as exc:
            raise BadRequest(str(exc)) from None
        return _json({"routes": stub.config.routes})

    async def configure(request: web.Request) -> web.Response:
        await _load_named_profile(request, settings, "configure", stub.reconfigure)
        return await info(request)

    async def calls(request: web.Request) -> web.Response:
        out = [{"session": None, **c} for c in stub.live_calls()]
        for session_id, session in (stub.sessions.sessions.items() if stub.sessions else ()):
            out += [{"session": session_id, **c} for c in session.live_calls()]
        return _json(out)

    routes_of = [("GET", "info", info), ("GET", "journal", journal), ("GET", "malformed", malformed),
                 ("GET", "resources", resources), ("GET", "aws/dynamodb", dynamodb),
                 ("GET", "calls", calls), ("POST", "routes", routes), ("POST", "configure", configure)]
    if stub.sessions is not None:
        routes_of += session_routes(stub.sessions, settings)
    for method, path, handler in routes_of:
        app.router.add_route(method, f"/_harness/{path}", guarded(handler))


def session_routes(sessions, settings: ControlSettings) -> list[tuple]:
    """`/_harness/sessions`: list (GET), open (POST {"profile": PATH}, a profile inside the
    operator's folders), close (DELETE .../ID)."""

    async def listing(request: web.Request) -> web.Response:
        return _json(sessions.list())

    async def open_session(request: web.Request) -> web.Response:
        info = await _load_named_profile(request, settings, "sessions",
                                         lambda path: sessions.open(str(path)))
        return web.Response(status=201, body=json.dumps(info).encode(), content_type="application/json")

    async def close_session(request: web.Request) -> web.Response:
        return _json(await sessions.close(request.match_info["session_id"]))

    return [("GET", "sessions", listing), ("POST", "sessions", open_session),
            ("DELETE", "sessions/{session_id}", close_session)]


async def _load_named_profile(request: web.Request, settings: ControlSettings, route: str, load):
    """`load(path)` for the profile a control request's body names (inside the operator's
    folders); what cannot be loaded is answered without quoting the file."""
    body = await json_body(request)
    if not isinstance(body.get("profile"), str):
        raise BadRequest(f"{route} needs {{\"profile\": PATH}}")
    path = allowed_profile(body["profile"], settings.profile_dirs)
    try:
        return await load(path)
    except ProfileError as exc:  # its message quotes the file: say only where it is wrong
        raise _unquoted(exc) from None
    except (UnicodeDecodeError, OSError) as exc:
        raise BadRequest(f"{path}: not a readable profile ({type(exc).__name__})") from None


def _unquoted(exc: ProfileError) -> BadRequest:
    """A profile error as the control routes answer it: where it is wrong, never its text."""
    return BadRequest(f"{exc.filename}:{exc.line}:{exc.column}: not a valid profile; "
                      f"`sip-harness validate` on it tells why")
def _index(request: web.Request, name: str, default: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit() and len(text) <= 15):
        raise BadRequest(f"{name} must be a whole number")
    return int(text)


def _page_body(lines: list[bytes], following: int, first: int, total: int) -> bytes:
    """`{"entries": [...], "next": N, "first": F, "total": T}` from ready JSON lines."""
    head = json.dumps({"next": following, "first": first, "total": total}).encode()
    return head[:-1] + b', "entries": [' + b",".join(lines) + b"]}"
