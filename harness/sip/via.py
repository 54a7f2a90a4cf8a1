"""The Via header (RFC 3261 §20.42, RFC 3581): what transactions are matched by and responses
are routed with."""
from __future__ import annotations

import re
from dataclasses import dataclass

from .message import Headers, SipMessage, SipParseError, split_commas
from .uri import UriError, parse_params

MAGIC_COOKIE = "z9hG4bK"
_VIA = re.compile(r"SIP\s*/\s*2\.0\s*/\s*([A-Za-z]+)\s+(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)"
                  r"(?:\s*:\s*([0-9]{1,5}))?\s*((?:;[^;]*)*)", re.IGNORECASE)


@dataclass(frozen=True)
class Via:
    transport: str
    host: str
    port: int | None
    params: tuple[tuple[str, str | None], ...]

    @classmethod
    def parse(cls, value: str) -> "Via":
        m = _VIA.fullmatch(value.strip())
        if m is None:
            raise SipParseError(f"malformed Via {value[:60]!r}", kind="malformed Via")
        try:
            params = parse_params(m[4], strict=True)
        except UriError:
            raise SipParseError(f"empty parameter in Via {value[:60]!r}",
                                kind="empty Via parameter") from None
        return cls(m[1].upper(), m[2].lower(), int(m[3]) if m[3] else None,
                   tuple(params.items()))

    @property
    def branch(self) -> str:
        return dict(self.params).get("branch") or ""

    @property
    def sent_by(self) -> str:
        return f"{self.host}:{self.port or 5060}"


def top_via(msg: SipMessage) -> Via:
    """The first Via of a message; SipParseError when its Via headers are all empty or one
    of them lists an empty value (`,,`: RFC 4475 §3.1.2.1)."""
    vias = msg.headers.get_all("via")
    if not vias:
        raise SipParseError("empty Via header")
    lines = [value for name, value in msg.headers.items() if name == "Via"]
    if any(len(split_commas(line, keep_empty=True)) != len(split_commas(line))
           for line in lines):
        raise SipParseError("empty value in a Via header")
    return Via.parse(vias[0])


def stamp_received(headers: Headers, source: tuple[str, int]) -> None:
    """Record where a request came from in its top Via: `received` when the sent-by host
    differs (RFC 3261 §18.2.1) and the port in an empty `rport` (RFC 3581)."""
    vias = headers.get_all("via")
    top, params = vias[0], dict(Via.parse(vias[0]).params)
    if "rport" in params and params["rport"] is None:
        top = re.sub(r";\s*rport(?=\s*(;|$))", f";rport={source[1]}", top, count=1,
                     flags=re.IGNORECASE)
    if Via.parse(top).host.strip("[]") != source[0] and "received" not in params:
        top += f";received={source[0]}"
    if top != vias[0]:
        headers.replace("via", [top] + vias[1:])
