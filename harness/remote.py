"""A stub in another process or container (`sip-harness serve`), driven over its control API
with the same interface the runner uses for an embedded `Stub`."""
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


class RemoteStub:
    """`sip-harness serve` at `url` (its API base URL, e.g. http://stub:8080).

    `config` is the local view of the profile's stub section (bucket folder for prompt
    recognition) with the remote's host and ports.
    """

    def __init__(self, url: str, config: StubConfig):
        self.url = url.rstrip("/")
        self.config = config
        self.sip_port = self.api_port = 0
        self.tls_port: int | None = None

    def _request(self, path: str, body: dict | None = None, timeout: float = 10.0):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method="POST" if data else "GET",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")
            raise RemoteStubError(f"{self.url}{path}: HTTP {exc.code} {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise RemoteStubError(f"{self.url}{path}: {exc}") from None

    def start(self, profile_path: Path) -> "RemoteStub":
        """Wait until the remote is ready, then make it serve the profile at `profile_path`
        (a path the remote can read: the same image or the same mounted folder)."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            try:
                self._request("/ready", timeout=2)
                break
            except RemoteStubError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        info = self._request("/_harness/configure", {"profile": str(profile_path)})
        self.sip_port, self.api_port = info["sip_port"], info["api_port"]
        self.tls_port = info.get("tls_port")
        host = urllib.parse.urlsplit(self.url).hostname
        low_high = tuple(info["rtp_port_range"]) if info["rtp_port_range"] else None
        self.config = dataclasses.replace(self.config, host=host, rtp_port_range=low_high)
        return self

    def stop(self) -> None:
        """Nothing to release: the remote stub keeps serving."""

    @property
    def api_url(self) -> str:
        return self.url

    def sip_uri(self, user: str, transport: str = "udp") -> str:
        return sip_uri(user, self.config.host, self.sip_port, self.tls_port, transport)

    def add_route(self, number: str, uri: str) -> None:
        self._request("/_harness/routes", {"number": number, "uri": uri})

    def journal_json(self) -> list[dict]:
        return self._request("/_harness/journal")

    def resources(self) -> dict[str, int]:
        return self._request("/_harness/resources")

    def dynamodb_tables(self) -> dict[str, list[dict]]:
        return self._request("/_harness/aws/dynamodb", timeout=60)
