"""The SipHeaders a placed leg may carry, checked as the service checks them, on both paths
that give them: CreateSipMediaApplicationCall's `SipHeaders` and CallAndBridge's.

The service's rules (sip-headers.md, unexpected-action-fail.md): a key starts with `x-` or
is `User-to-User` or `Diversion`; its own internal headers (`x-amzn`, `x-vine`, `x-vc`,
`x-canary`, `x-voice`) are refused; a header is at most 2048 characters; the map has at most
20 entries. A SIP header must also be a header on the wire: its name a token, its value one
line (RFC 3261 §7.3.1, §25.1), so CR, LF and other control characters are refused, whatever
the key.
"""
from __future__ import annotations

import re

MAX_HEADERS = 20
MAX_VALUE_CHARS = 2048
ALLOWED_NAMES = ("user-to-user", "diversion")
INTERNAL_PREFIXES = ("x-amzn", "x-vine", "x-vc", "x-canary", "x-voice")
_TOKEN_CHARS = r"A-Za-z0-9.!%*_+`'~-"
_TOKEN = re.compile(f"[{_TOKEN_CHARS}]+")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # every CTL but HTAB


class InvalidSipHeaders(ValueError):
    """Some SipHeaders cannot be sent; `names` are the offending keys, `message` the
    service's wording."""

    def __init__(self, names: list[str], message: str | None = None):
        self.names = names
        self.message = message or ("Invalid SIP header(s) provided: "
                                   + ", ".join(_printable(n) for n in names))
        super().__init__(self.message)


def _any_case(text: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in text)


#: The rules above as JSON-schema patterns, for the API's OpenAPI document.
NAME_PATTERN = ("^(?!" + "|".join(_any_case(p) + "(?:-|$)" for p in INTERNAL_PREFIXES) + ")"
                "(?:" + _any_case("x-") + "|" + "|".join(_any_case(n) + "$" for n in ALLOWED_NAMES)
                + f")[{_TOKEN_CHARS}]*$")
VALUE_PATTERN = r"^[^\x00-\x08\x0a-\x1f\x7f]*$"


def _printable(name: str) -> str:
    return name if name.isprintable() else repr(name)


def _valid(name: object, value: object) -> bool:
    if not isinstance(name, str) or not isinstance(value, str) or not _TOKEN.fullmatch(name):
        return False
    low = name.lower()
    if not (low.startswith("x-") or low in ALLOWED_NAMES):
        return False
    if any(low == p or low.startswith(p + "-") for p in INTERNAL_PREFIXES):
        return False
    return len(value) <= MAX_VALUE_CHARS and not _CONTROL.search(value)


def check_sip_headers(headers: object) -> dict[str, str]:
    """The headers to send, or InvalidSipHeaders naming every key that cannot be sent."""
    if headers is None:
        return {}
    if not isinstance(headers, dict):
        raise InvalidSipHeaders([], "SipHeaders must be a map of string to string")
    if len(headers) > MAX_HEADERS:
        raise InvalidSipHeaders([], f"SipHeaders can contain at most {MAX_HEADERS} entries, "
                                    f"got {len(headers)}")
    bad = [str(name) for name, value in headers.items() if not _valid(name, value)]
    if bad:
        raise InvalidSipHeaders(bad)
    return dict(headers)


def forwarded(headers) -> dict[str, str]:
    """The headers of a received INVITE the service passes on as its leg's SipHeaders: the
    `x-` ones, User-to-User and Diversion."""
    return {name: value for name, value in headers.items()
            if name.lower().startswith("x-") or name.lower() in ALLOWED_NAMES}
