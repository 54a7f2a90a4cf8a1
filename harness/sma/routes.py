"""Where the legs the SMA places go: route templates such as `sip:{user}@127.0.0.1:5090`.

`{user}` is replaced by the number or URI the SMA dials, as text (never `str.format`, which
would evaluate attribute lookups in the template), and only when that number is made of the
characters a CallAndBridge endpoint `Uri` may hold, so it cannot add a host, a port or a
parameter to the URI.
"""
from __future__ import annotations

import re

from ..sip.uri import SipUri, UriError

PLACEHOLDER = "{user}"
#: CallAndBridge's `Uri` characters (sma-reference §3.10), E.164's `+` among them.
DIALLED = re.compile(r"[A-Za-z0-9&=+$/%_!~*().-]{1,64}")


class RouteError(ValueError):
    """A route or a dialled number that cannot make a SIP URI."""


def check_template(template: str) -> str:
    """The template itself, if `{user}` expanded in it gives a SIP URI."""
    try:
        SipUri.parse(template.replace(PLACEHOLDER, "0"))
    except UriError:
        raise RouteError(f"route {template[:100]!r} is not a SIP URI template "
                         f"(sip:{{user}}@host:port)") from None
    return template


def expand(template: str, dialled: str) -> str:
    """The SIP URI for `dialled` under `template`."""
    if not DIALLED.fullmatch(dialled):
        raise RouteError(f"{dialled[:64]!r} cannot be dialled through a route")
    uri = check_template(template).replace(PLACEHOLDER, dialled)
    SipUri.parse(uri)  # cannot fail: the dialled characters fit a SIP user part
    return uri
