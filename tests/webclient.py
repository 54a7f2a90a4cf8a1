"""Raw HTTP requests to a stub with exactly the headers a test gives (a foreign Host, no
Content-Type, text/plain): what a browser page or a hostile client could send."""
from __future__ import annotations

import http.client
import json


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
