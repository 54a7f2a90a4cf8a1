"""SIP URIs and the name-addr / addr-spec forms of From, To, Contact and Route (RFC 3261 §19, §25)."""
from __future__ import annotations

import re
from dataclasses import dataclass

_SIP_URI = re.compile(r"(?P<scheme>sips?):(?:(?P<user>[^@]*)@)?"
                      r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(?P<port>[0-9]{1,5}))?"
                      r"(?P<params>(?:;[^;?]*)*)(?:\?(?P<headers>.*))?", re.IGNORECASE)


class UriError(ValueError):
    """Not a SIP URI we can use."""


def parse_params(text: str, strict: bool = False) -> dict[str, str | None]:
    """`;a=1;lr` -> {"a": "1", "lr": None}; names lower-cased, values as written.
    `strict` refuses empty parameters (`;;`, a trailing `;`: RFC 4475 §3.1.2.1)."""
    params: dict[str, str | None] = {}
    for i, part in enumerate(text.split(";")):
        name, sep, value = part.partition("=")
        if name.strip():
            params[name.strip().lower()] = value.strip() if sep else None
        elif strict and (i > 0 or part.strip()):
            raise UriError(f"empty parameter in {text[:60]!r}")
    return params


@dataclass(frozen=True)
class SipUri:
    """A sip: or sips: URI; `port` is None when the URI does not name one."""

    scheme: str
    user: str
    host: str
    port: int | None
    params: tuple[tuple[str, str | None], ...] = ()

    @classmethod
    def parse(cls, text: str) -> "SipUri":
        m = _SIP_URI.fullmatch(text.strip())
        if m is None:
            raise UriError(f"not a SIP URI: {text[:60]!r}")
        port = int(m["port"]) if m["port"] else None
        if port is not None and not 0 < port < 65536:
            raise UriError(f"bad port in {text[:60]!r}")
        # user-info may carry a password and ;parameters (RFC 4475 §3.1.1.9): the user is
        # what comes before either
        user = re.split(r"[:;]", m["user"] or "", maxsplit=1)[0]
        return cls(m["scheme"].lower(), user, m["host"].lower(), port,
                   tuple(parse_params(m["params"]).items()))

    def param(self, name: str) -> str | None:
        return dict(self.params).get(name.lower())

    @property
    def address(self) -> tuple[str, int]:
        """Where to send requests for this URI (no DNS: hosts are literal addresses)."""
        default = 5061 if self.scheme == "sips" else 5060
        return self.host.strip("[]"), self.port or default


@dataclass(frozen=True)
class NameAddr:
    """A From/To/Contact/Route value: optional display name, the URI and header parameters."""

    display: str
    uri: str
    params: tuple[tuple[str, str | None], ...] = ()

    @classmethod
    def parse(cls, value: str) -> "NameAddr":
        """Parse a header value; UriError for an unterminated quoted display name, an
        unclosed `<` or an empty header parameter."""
        value = value.strip()
        quote = escaped = False
        for i, ch in enumerate(value):
            if quote and (escaped or ch == "\\"):  # quoted-pair: the next character is literal
                escaped = not escaped
            elif ch == '"':
                quote = not quote
            elif ch == "<" and not quote:
                end = value.find(">", i)
                if end < 0:
                    raise UriError(f"unclosed '<' in {value[:60]!r}")
                return cls(value[:i].strip(), value[i + 1:end].strip(),
                           tuple(parse_params(value[end + 1:], strict=True).items()))
        if quote:
            raise UriError(f"unterminated quoted display name in {value[:60]!r}")
        uri, sep, params = value.partition(";")  # addr-spec: parameters belong to the header
        return cls("", uri.strip(), tuple(parse_params(sep + params, strict=True).items()))

    @property
    def tag(self) -> str | None:
        return dict(self.params).get("tag")


def uri_of(name_addr: str) -> str:
    """The URI inside a name-addr (`"x" <sip:a@b>;tag=1`) or an addr-spec."""
    return NameAddr.parse(name_addr).uri


def tag_of(name_addr: str) -> str | None:
    """The tag parameter of a From/To value, or None."""
    try:
        return NameAddr.parse(name_addr).tag
    except UriError:
        return None


def with_tag(name_addr: str, tag: str) -> str:
    """A From/To value with `tag` added (unchanged when it already has one)."""
    return name_addr if tag_of(name_addr) else f"{name_addr};tag={tag}"
