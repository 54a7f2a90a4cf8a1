"""The allowed-Host check: a request must name this stub, not some other site's host name.

A web page can make the user's browser resolve its own host name to 127.0.0.1 (DNS
rebinding) and then talk to a stub there as if it were that site; the browser still sends the
page's host name in `Host`. IP literals and `localhost` cannot be rebound, so they are always
allowed; any other name must be one the operator named (`serve --allowed-host`).
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable

ALWAYS_ALLOWED = frozenset({"localhost"})


def host_name(header: str) -> str:
    """The host part of a Host header (`name`, `name:port`, `[v6]`, `[v6]:port`), lower-cased."""
    value = header.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def is_allowed(header: str | None, names: Iterable[str]) -> bool:
    """Whether a request with this Host header may be served (None: no Host, not a browser)."""
    if header is None:
        return True
    name = host_name(header)
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    return name in ALWAYS_ALLOWED or name in {n.lower() for n in names}
