"""Raw HTTP requests to a stub with exactly the headers a test gives (a foreign Host, no
Content-Type, text/plain): what a browser page or a hostile client could send; and waiting
for a `sip-harness serve` process to be ready."""
from __future__ import annotations

import http.client
import json
import socket
import subprocess
import time


def call(port: int, method: str, path: str, body: bytes | None = None,
         headers: dict[str, str] | None = None, host: str | None = None) -> tuple[int, dict, dict]:
    """(status, headers, JSON body) of one request to 127.0.0.1:`port`."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", f"127.0.0.1:{port}" if host is None else host)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, dict(resp.getheaders()), json.loads(data) if data else {}
    finally:
        conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """Until `sip-harness serve` (`proc`) answers /ready on `port`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if call(port, "GET", "/ready")[0] == 200:
                return
        except OSError:
            pass
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline, "sip-harness serve did not get ready"
        time.sleep(0.2)
