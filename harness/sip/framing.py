"""Cutting a TCP byte stream into SIP messages by Content-Length (RFC 3261 §18.3)."""
from __future__ import annotations

from .message import MAX_MESSAGE_BYTES, SipParseError, content_length, parse_head, split_head


class StreamFramer:
    """One connection's receive buffer. `feed` returns every message completed so far (several
    may arrive in one segment, one may span many); CRLF keep-alives between messages are
    skipped. A stream that cannot be framed sets `error` and keeps the bytes in `buffer`:
    the connection has to be closed, as nothing after them can be trusted."""

    def __init__(self, max_bytes: int = MAX_MESSAGE_BYTES):
        self.max_bytes = max_bytes
        self.buffer = b""
        self.error: SipParseError | None = None

    def feed(self, data: bytes) -> list[bytes]:
        if self.error is not None:
            return []
        self.buffer += data
        messages = []
        try:
            while (message := self._next()) is not None:
                messages.append(message)
        except SipParseError as exc:
            self.error = exc
        return messages

    def _next(self) -> bytes | None:
        self.buffer = self.buffer.lstrip(b"\r\n")
        parts = split_head(self.buffer)
        if parts is None:
            if len(self.buffer) > self.max_bytes:
                raise SipParseError(f"headers exceed {self.max_bytes} bytes", 513,
                                    kind="message too large")
            return None
        head, rest = parts
        length = content_length(parse_head(head)[1])
        if length is None:
            raise SipParseError("missing Content-Length on a stream transport")
        size = len(self.buffer) - len(rest) + length
        if size > self.max_bytes:
            raise SipParseError(f"message of {size} bytes exceeds {self.max_bytes}", 513,
                                kind="message too large")
        if len(rest) < length:
            return None
        message, self.buffer = self.buffer[:size], self.buffer[size:]
        return message
