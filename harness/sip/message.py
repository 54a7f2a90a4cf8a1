"""SIP messages (RFC 3261 §7, §20, §25): parse and serialize, sans-IO.

Header names are matched case-insensitively and compact forms are expanded; a header may
appear several times and comma-separated values stay as written (split them with
`Headers.get_all`); folded header lines are joined. Bodies are framed by Content-Length when
present. Every fault raises `SipParseError`, whose `reason` names it and whose `status` is the
response it deserves (400, or 513 for an oversized message).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from .uri import with_tag

COMPACT = {"i": "call-id", "m": "contact", "f": "from", "t": "to", "v": "via",
           "l": "content-length", "c": "content-type", "k": "supported", "s": "subject",
           "e": "content-encoding", "o": "event", "r": "refer-to", "u": "allow-events"}
#: Canonical spelling used when serializing a header name given in lower case.
CANONICAL = {"call-id": "Call-ID", "cseq": "CSeq", "www-authenticate": "WWW-Authenticate",
             "mime-version": "MIME-Version"}
MAX_MESSAGE_BYTES = 65535
REASONS = {100: "Trying", 180: "Ringing", 183: "Session Progress", 200: "OK",
           400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
           407: "Proxy Authentication Required",
           408: "Request Timeout", 415: "Unsupported Media Type", 416: "Unsupported URI Scheme",
           420: "Bad Extension", 480: "Temporarily Unavailable",
           481: "Call/Transaction Does Not Exist", 482: "Loop Detected", 486: "Busy Here",
           487: "Request Terminated", 488: "Not Acceptable Here", 491: "Request Pending",
           500: "Server Internal Error", 501: "Not Implemented", 503: "Service Unavailable",
           513: "Message Too Large", 603: "Decline"}
REQUIRED_HEADERS = ("call-id", "cseq", "from", "to", "via")

_TOKEN = re.compile(r"[A-Za-z0-9.!%*_+`'~-]+")
_DIGITS = re.compile(r"[0-9]+")
_STATUS_LINE = re.compile(r"SIP/2\.0 ([0-9]{3})(?: (.*))?")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S+")


class SipParseError(ValueError):
    """The bytes are not a well-formed SIP message; `reason` names the fault for a 400."""

    def __init__(self, reason: str, status: int = 400):
        super().__init__(reason)
        self.reason = reason
        self.status = status


@lru_cache(maxsize=4096)
def canonical_name(name: str) -> str:
    """The header name as we write it: compact forms expanded, words capitalised."""
    low = name.strip().lower()
    low = COMPACT.get(low, low)
    return CANONICAL.get(low) or "-".join(w.capitalize() for w in low.split("-"))


class Headers:
    """An ordered multi-map of headers with case-insensitive, compact-form-aware names."""

    def __init__(self, items: list[tuple[str, str]] | None = None):
        self._items: list[tuple[str, str]] = [(canonical_name(k), v) for k, v in items or []]

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of `name`, or `default`."""
        key = canonical_name(name)
        return next((v for k, v in self._items if k == key), default)

    def get_all(self, name: str) -> list[str]:
        """Every value of `name`, repeated headers and comma-separated values split apart."""
        key = canonical_name(name)
        return [part for k, v in self._items if k == key for part in split_commas(v)]

    def set(self, name: str, value: str) -> None:
        """Replace every `name` header by one with `value` (appended if absent)."""
        self.replace(name, [value])

    def replace(self, name: str, values: list[str]) -> None:
        """Replace every `name` header by one line per value, where the first one was."""
        key = canonical_name(name)
        idx = next((i for i, (k, _) in enumerate(self._items) if k == key), len(self._items))
        after = [(k, v) for k, v in self._items[idx:] if k != key]
        self._items = self._items[:idx] + [(key, v) for v in values] + after

    def add(self, name: str, value: str, first: bool = False) -> None:
        """Add one more `name` header, at the end or (first=True) before all others."""
        item = (canonical_name(name), value)
        if first:
            self._items.insert(0, item)
        else:
            self._items.append(item)

    def remove(self, name: str) -> None:
        self.replace(name, [])

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def copy(self) -> "Headers":
        return Headers(self._items)

    def __contains__(self, name: str) -> bool:
        return self.get(name) is not None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._items == other._items

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


def split_commas(value: str) -> list[str]:
    """Split a header value at commas outside quotes and angle brackets."""
    parts, cur, quote, angle = [], [], False, False
    for ch in value:
        if ch == '"':
            quote = not quote
        elif ch == "<" and not quote:
            angle = True
        elif ch == ">" and not quote:
            angle = False
        if ch == "," and not quote and not angle:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur).strip())
    return [p for p in parts if p]


@dataclass(eq=True)
class SipMessage:
    """Fields shared by requests and responses."""

    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    @property
    def call_id(self) -> str:
        return self.headers.get("call-id", "")

    @property
    def cseq(self) -> tuple[int, str]:
        """(number, method) of the CSeq header."""
        raw = self.headers.get("cseq", "")
        num, _, method = raw.strip().partition(" ")
        method = method.strip()
        if not (_DIGITS.fullmatch(num) and len(num) <= 10 and _TOKEN.fullmatch(method)):
            raise SipParseError(f"bad CSeq header {raw!r}")
        return int(num), method.upper()

    def _serialize(self, start: str) -> bytes:
        headers = self.headers.copy()
        headers.set("Content-Length", str(len(self.body)))
        lines = [start] + [f"{k}: {v}" for k, v in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + self.body


@dataclass(eq=True)
class SipRequest(SipMessage):
    method: str = "OPTIONS"
    uri: str = ""

    def serialize(self) -> bytes:
        return self._serialize(f"{self.method} {self.uri} SIP/2.0")

    def reply(self, status: int, reason: str | None = None, to_tag: str | None = None
              ) -> "SipResponse":
        """A response to this request (RFC 3261 §8.2.6): Via, From, To, Call-ID and CSeq
        copied, `to_tag` added to a To without a tag (never to a 100)."""
        resp = SipResponse(status=status, reason=reason or REASONS.get(status, "Unknown"))
        to = self.headers.get("to", "")
        if to_tag and status > 100:
            to = with_tag(to, to_tag)
        for via in self.headers.get_all("via"):
            resp.headers.add("Via", via)
        for name, value in (("From", self.headers.get("from")), ("To", to),
                            ("Call-ID", self.headers.get("call-id")),
                            ("CSeq", self.headers.get("cseq"))):
            if value is not None:
                resp.headers.add(name, value)
        return resp


@dataclass(eq=True)
class SipResponse(SipMessage):
    status: int = 200
    reason: str = "OK"

    def serialize(self) -> bytes:
        return self._serialize(f"SIP/2.0 {self.status} {self.reason}")


def _unfold(head: str) -> list[str]:
    lines: list[str] = []
    for line in head.replace("\r\n", "\n").split("\n"):
        if line[:1] in (" ", "\t") and lines:
            lines[-1] = lines[-1].rstrip(" \t") + " " + line.strip(" \t")
        else:
            lines.append(line)
    return lines


def split_head(data: bytes) -> tuple[bytes, bytes] | None:
    """Split at the blank line ending the headers; None when it has not arrived yet."""
    found = [(idx, sep) for sep in (b"\r\n\r\n", b"\n\n") if (idx := data.find(sep)) >= 0]
    if not found:
        return None
    idx, sep = min(found)
    return data[:idx], data[idx + len(sep):]


def parse_head(head: bytes, strict: bool = True) -> tuple[str, Headers]:
    """The start line and headers of a message head (everything before the blank line);
    `strict=False` skips what cannot be read instead of raising."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        if strict:
            raise SipParseError("headers are not UTF-8") from None
        text = head.decode("utf-8", "replace")
    lines = _unfold(text)
    items = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        name = name.rstrip(" \t")
        if sep and _TOKEN.fullmatch(name):
            items.append((name, value.strip(" \t")))
        elif strict:
            raise SipParseError(f"malformed header line {line[:40]!r}")
    return lines[0], Headers(items)


def content_length(headers: Headers) -> int | None:
    """The Content-Length value, None when absent; every copy of it must agree."""
    values = {v.strip() for v in headers.get_all("content-length")}
    if not values:
        return None
    if len(values) > 1 or not _DIGITS.fullmatch(raw := values.pop()) or len(raw) > 10:
        raise SipParseError(f"bad Content-Length {headers.get('content-length')!r}")
    return int(raw)


def parse_message(data: bytes, stream: bool = False, max_bytes: int = MAX_MESSAGE_BYTES
                  ) -> SipMessage:
    """Parse one SIP message.

    On a datagram (stream=False) a missing Content-Length means "the rest of the datagram"
    and bytes beyond Content-Length are ignored. Raises SipParseError naming the fault.
    """
    if len(data) > max_bytes:
        raise SipParseError(f"message of {len(data)} bytes exceeds {max_bytes}", 513)
    data = data.lstrip(b"\r\n")
    parts = split_head(data)
    if parts is None:
        raise SipParseError("no blank line after the headers")
    start, headers = parse_head(parts[0])
    rest = parts[1]
    length = content_length(headers)
    if length is None:
        if stream:
            raise SipParseError("missing Content-Length on a stream transport")
        length = len(rest)
    if length > len(rest):
        raise SipParseError(f"Content-Length {length} but {len(rest)} body bytes")
    body = rest[:length]
    status = _STATUS_LINE.fullmatch(start)
    if status:
        code = int(status.group(1))
        if not 100 <= code <= 699:
            raise SipParseError(f"bad status code {status.group(1)!r}")
        msg: SipMessage = SipResponse(headers=headers, body=body, status=code,
                                      reason=status.group(2) or "")
    elif start.startswith("SIP/2.0 "):
        raise SipParseError(f"bad status code {start[8:11]!r}")
    else:
        fields = start.split(" ")
        if len(fields) != 3 or fields[2] != "SIP/2.0":
            raise SipParseError(f"bad request line {start[:60]!r}")
        method, uri = fields[0], fields[1]
        if not _TOKEN.fullmatch(method):
            raise SipParseError(f"bad method {method[:20]!r}")
        if not _URI.fullmatch(uri):
            raise SipParseError(f"bad Request-URI {uri[:40]!r}")
        msg = SipRequest(headers=headers, body=body, method=method, uri=uri)
    for required in REQUIRED_HEADERS:
        if required not in headers:
            raise SipParseError(f"missing {canonical_name(required)} header")
    _, cseq_method = msg.cseq
    if isinstance(msg, SipRequest) and cseq_method != msg.method.upper():
        raise SipParseError(f"CSeq method {cseq_method} does not match {msg.method}")
    return msg


def salvage_request(data: bytes) -> SipRequest | None:
    """What can be read of a request that failed to parse (its method and headers), so that
    it can still be answered; None when not even that can be read or it is a response."""
    parts = split_head(data.lstrip(b"\r\n"))
    start, headers = parse_head(parts[0] if parts else data[:MAX_MESSAGE_BYTES], strict=False)
    if start.startswith("SIP/"):
        return None
    return SipRequest(headers=headers, method=start.split(" ", 1)[0], uri="")
