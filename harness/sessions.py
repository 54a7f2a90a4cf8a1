"""Sessions of a served stub: a remote run (`sip-harness run --stub URL`) registers its own
SMA, SIP rules, handler and routes for the length of the run, and removes them afterwards.

A session is a stub of its own on the served stub's event loop, with SIP and API ports of its
own (the RTP ports come from the served range): the served profile's SMA, rules, handler and
calls are never touched, and two runs never see each other's calls, whatever numbers their
profiles use. `POST /_harness/sessions {"profile": PATH}` opens one (PATH is read by the
served process: the same image or mounted folder), `DELETE /_harness/sessions/{id}` closes it.
A session left behind by a runner that died (no journal entry and no call for `IDLE_S`) is
closed by `reap`.
"""
from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from .sma.errors import NotFound, ServiceUnavailable

MAX_SESSIONS = 16
IDLE_S = 600.0
REAP_EVERY_S = 30.0


class SessionManager:
    """Opens and closes the sessions of a served stub.

    `configurator` turns a profile path into a `StubConfig` (its SMA, rules, handler,
    bucket); `watch` is called with each new session's stub and id (the serve log).
    """

    def __init__(self, served, configurator: Callable[[Path, Path], object], out_dir: Path,
                 watch: Callable[[object, str], None] | None = None):
        self.served, self.configurator, self.out_dir, self.watch = served, configurator, out_dir, watch
        self.sessions: dict[str, object] = {}
        self.profiles: dict[str, str] = {}
        self.active: dict[str, float] = {}  # when each session last noted something

    async def open(self, profile: str) -> dict:
        """Start a session serving `profile`; its addresses and ports."""
        from .stub import Stub
        if len(self.sessions) >= MAX_SESSIONS:
            raise ServiceUnavailable(f"{MAX_SESSIONS} sessions are open; close one first")
        session_id = uuid.uuid4().hex[:12]
        base, run_dir = self.served.config, self.out_dir / "sessions" / session_id
        run_dir.mkdir(parents=True, exist_ok=True)
        config = dataclasses.replace(
            self.configurator(Path(profile), run_dir),
            host=base.host, sip_port=0, api_port=0, rtp_port_range=base.rtp_port_range,
            api=base.api, routes={})
        if config.tls is not None:
            config.tls.port = 0  # a free one: the served profile may hold 5061
        stub = Stub(config)
        self.active[session_id] = time.monotonic()
        stub.watch(lambda entry: self.active.__setitem__(session_id, time.monotonic()))
        if self.watch is not None:
            self.watch(stub, session_id)
        try:
            await stub.start_async()
        except BaseException:
            await stub.stop_async()
            raise
        self.sessions[session_id], self.profiles[session_id] = stub, profile
        return self.info(session_id)

    def info(self, session_id: str) -> dict:
        stub = self._get(session_id)
        cfg = stub.config
        return {"session": session_id, "profile": self.profiles[session_id], "host": cfg.host,
                "sip_port": stub.sip_port, "api_port": stub.api_port, "tls_port": stub.tls_port,
                "rtp_port_range": cfg.rtp_port_range,
                "applications": [a.sip_media_application_id for a in cfg.applications]}

    async def close(self, session_id: str) -> dict:
        """Stop a session: its calls end, its handler workers and ports are released. The
        answer holds its whole journal (the session is gone afterwards)."""
        stub = self._get(session_id)
        del self.sessions[session_id], self.profiles[session_id], self.active[session_id]
        await stub.stop_async()
        return {"session": session_id, "closed": True, "journal": stub.journal_json()}

    async def reap(self, idle_s: float = IDLE_S) -> list[str]:
        """Close the sessions with no call up that noted nothing for `idle_s`."""
        now = time.monotonic()
        idle = [sid for sid, stub in self.sessions.items()
                if now - self.active[sid] > idle_s and not stub.live_calls()]
        for sid in idle:
            await self.close(sid)
        return idle

    async def reap_forever(self, idle_s: float = IDLE_S, every_s: float = REAP_EVERY_S) -> None:
        while True:
            await asyncio.sleep(every_s)
            await self.reap(idle_s)

    async def close_all(self) -> None:
        for session_id in list(self.sessions):
            await self.close(session_id)

    def list(self) -> list[dict]:
        return [self.info(s) for s in self.sessions]

    def _get(self, session_id: str):
        stub = self.sessions.get(session_id)
        if stub is None:
            raise NotFound(f"no session {session_id}")
        return stub
