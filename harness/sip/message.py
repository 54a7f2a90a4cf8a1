"""SIP messages (RFC 3261 §7, §20, §25): parse and serialize, sans-IO.

Header names are matched case-insensitively and compact forms are expanded; a header may
appear several times and comma-separated values stay as written (split them with
`Headers.get_all`). Bodies are framed by Content-Length when present.
"""
from __future__ import annotations

from dataclasses import dataclass, field

COMPACT = {"i": "call-id", "m": "contact", "f": "from", "t": "to", "v": "via",
           "l": "content-length", "c": "content-type", "k": "supported", "s": "subject",
           "e": "content-encoding", "o": "event", "r": "refer-to", "u": "allow-events"}
#: Canonical spelling used when serializing a header name given in lower case.
CANONICAL = {"call-id": "Call-ID", "cseq": "CSeq", "www-authenticate": "WWW-Authenticate",
             "mime-version": "MIME-Version"}
MAX_MESSAGE_BYTES = 65535


class SipParseError(ValueError):
    """The bytes are not a well-formed SIP message; `reason` names the fault for a 400."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


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
        key = canonical_name(name)
        idx = next((i for i, (k, _) in enumerate(self._items) if k == key), None)
        self._items = [(k, v) for k, v in self._items if k != key]
        self._items.insert(len(self._items) if idx is None else idx, (key, value))

    def add(self, name: str, value: str, first: bool = False) -> None:
        """Add one more `name` header, at the end or (first=True) before all others."""
        item = (canonical_name(name), value)
        if first:
            self._items.insert(0, item)
        else:
            self._items.append(item)

    def remove(self, name: str) -> None:
        key = canonical_name(name)
        self._items = [(k, v) for k, v in self._items if k != key]

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
        try:
            return int(num), method.strip().upper()
        except ValueError:
            raise SipParseError(f"bad CSeq header {raw!r}") from None

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
            lines[-1] += " " + line.strip()
        else:
            lines.append(line)
    return lines


def split_head(data: bytes) -> tuple[bytes, bytes] | None:
    """Split at the blank line ending the headers; None when it has not arrived yet."""
    for sep in (b"\r\n\r\n", b"\n\n"):
        idx = data.find(sep)
        if idx >= 0:
            return data[:idx], data[idx + len(sep):]
    return None


def parse_message(data: bytes, stream: bool = False) -> SipMessage:
    """Parse one SIP message.

    On a datagram (stream=False) a missing Content-Length means "the rest of the datagram".
    Raises SipParseError naming the fault.
    """
    if len(data) > MAX_MESSAGE_BYTES:
        raise SipParseError(f"message of {len(data)} bytes exceeds {MAX_MESSAGE_BYTES}")
    data = data.lstrip(b"\r\n")
    parts = split_head(data)
    if parts is None:
        raise SipParseError("no blank line after the headers")
    head_b, rest = parts
    try:
        head = head_b.decode("utf-8")
    except UnicodeDecodeError:
        raise SipParseError("headers are not UTF-8") from None
    lines = _unfold(head)
    start, header_lines = lines[0].strip(), lines[1:]
    items = []
    for line in header_lines:
        name, sep, value = line.partition(":")
        if not sep or not name.strip() or " " in name.strip():
            raise SipParseError(f"malformed header line {line[:40]!r}")
        items.append((name.strip(), value.strip()))
    headers = Headers(items)
    length_raw = headers.get("content-length")
    if length_raw is None:
        if stream:
            raise SipParseError("missing Content-Length on a stream transport")
        body = rest
    else:
        try:
            length = int(length_raw)
        except ValueError:
            raise SipParseError(f"bad Content-Length {length_raw!r}") from None
        if length < 0 or length > len(rest):
            raise SipParseError(f"Content-Length {length} but {len(rest)} body bytes")
        body = rest[:length]
    if start.startswith("SIP/2.0 "):
        code, _, reason = start[8:].partition(" ")
        if not (code.isdigit() and len(code) == 3 and 100 <= int(code) <= 699):
            raise SipParseError(f"bad status code {code!r}")
        msg: SipMessage = SipResponse(headers=headers, body=body, status=int(code), reason=reason)
    else:
        fields = start.split(" ")
        if len(fields) != 3 or fields[2] != "SIP/2.0":
            raise SipParseError(f"bad request line {start[:60]!r}")
        method, uri = fields[0], fields[1]
        if not method.isalpha() or not method.isupper():
            raise SipParseError(f"bad method {method!r}")
        msg = SipRequest(headers=headers, body=body, method=method, uri=uri)
    for required in ("call-id", "cseq", "from", "to", "via"):
        if required not in headers:
            raise SipParseError(f"missing {canonical_name(required)} header")
    msg.cseq  # validates CSeq
    return msg
