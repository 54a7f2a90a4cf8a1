"""A stub in another process or container (`sip-harness serve`), driven over its control API
with the same interface the runner uses for an embedded `Stub`.

The run opens a session on the served stub (its own SMA, rules, handler and routes on ports of
their own, see `sessions.py`), talks to the session's API for everything else, and closes it
when it stops: the served profile is never changed."""
from __future__ import annotations

import dataclasses
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from .stub import StubConfig, sip_uri

READY_TIMEOUT_S = 30.0


class RemoteStubError(RuntimeError):
    """The remote stub cannot be reached, or refused a control request."""


def control_request(url: str, path: str, body: dict | None = None, timeout: float = 10.0,
                    method: str | None = None):
    """A JSON request to a stub's control route; RemoteStubError when it fails."""
    data = json.dumps(body).encode() if body is not None else None
    where = url.rstrip("/") + path
    req = urllib.request.Request(where, data=data, method=method or ("POST" if data else "GET"),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")
        raise RemoteStubError(f"{where}: HTTP {exc.code} {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise RemoteStubError(f"{where}: {exc}") from None


class RemoteStub:
    """`sip-harness serve` at `url` (its API base URL, e.g. http://stub:8080).

    `config` is the local view of the profile's stub section (bucket folder for prompt
    recognition) with the remote's host and ports.
    """

    def __init__(self, url: str, config: StubConfig):
        self.url = url.rstrip("/")
        self.config = config
        self.sip_port = self.api_port = 0
        self.session: str | None = None
        self.session_url: str | None = None
        self._journal: list[dict] | None = None
        self.tls_port: int | None = None

    def _request(self, path: str, body: dict | None = None, timeout: float = 10.0,
                 method: str | None = None, base: str | None = None):
        """A control request to the served stub (`base`: the session's API instead)."""
        return control_request(base or self.url, path, body, timeout, method)

    def start(self, profile_path: Path) -> "RemoteStub":
        """Wait until the remote is ready, then open a session serving the profile at
        `profile_path` (a path the remote can read: the same image or mounted folder)."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            try:
                self._request("/ready", timeout=2)
                break
            except RemoteStubError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        info = self._request("/_harness/sessions", {"profile": str(profile_path)}, timeout=60)
        self.session = info["session"]
        self.sip_port, self.api_port = info["sip_port"], info["api_port"]
        self.tls_port = info.get("tls_port")
        parts = urllib.parse.urlsplit(self.url)
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        self.session_url = f"{parts.scheme}://{host}:{self.api_port}"
        low_high = tuple(info["rtp_port_range"]) if info["rtp_port_range"] else None
        self.config = dataclasses.replace(self.config, host=parts.hostname, rtp_port_range=low_high)
        return self

    def stop(self) -> None:
        """Close the session and keep its whole journal (what it noted while stopping too):
        the served stub keeps serving its own profile."""
        if self.session is not None:
            closed = self._request(f"/_harness/sessions/{self.session}", method="DELETE", timeout=60)
            self.session, self._journal = None, closed["journal"]

    @property
    def api_url(self) -> str:
        return self.session_url or self.url

    def sip_uri(self, user: str, transport: str = "udp") -> str:
        return sip_uri(user, self.config.host, self.sip_port, self.tls_port, transport)

    def add_route(self, number: str, uri: str) -> None:
        self._request("/_harness/routes", {"number": number, "uri": uri}, base=self.api_url)

    def journal_json(self) -> list[dict]:
        if self.session is None and self._journal is not None:  # the session is closed
            return self._journal
        return self._request("/_harness/journal", base=self.api_url)

    def resources(self) -> dict[str, int]:
        return self._request("/_harness/resources", base=self.api_url)

    def dynamodb_tables(self) -> dict[str, list[dict]]:
        return self._request("/_harness/aws/dynamodb", timeout=60, base=self.api_url)
