"""HTTP/1.x requests seen on TCP, each paired with its response when that was captured."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from harness.wire.packets import Address
from harness.wire.tcp_streams import TextMessage, decode_chunked


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One HTTP request: time of the packet carrying its request line, and its response."""

    number: int
    ts_ns: int
    src: Address
    dst: Address
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    response_status: int | None = None
    response_ts_ns: int | None = None

    @property
    def time(self) -> float:
        return self.ts_ns / 1e9

    def header(self, name: str) -> str | None:
        """The first value of header `name` (case-insensitive), or None."""
        low = name.lower()
        return next((v for k, v in self.headers if k.lower() == low), None)


def http_requests(messages: Iterable[TextMessage]) -> list[HttpRequest]:
    """The HTTP requests among framed TCP messages, in capture order.

    Final responses are matched to requests in order on each connection (HTTP/1.1
    pipelining); interim 1xx responses (100 Continue) are skipped.
    """
    requests: list[HttpRequest] = []
    pending: dict[tuple[Address, Address], list[int]] = {}
    responses: list[TextMessage] = []
    for tm in sorted(messages, key=lambda m: m.first_packet.number):
        fields = tm.start_line.split(" ")
        if tm.start_line.startswith("HTTP/1."):
            if tm.start_line[9:10] != "1":
                responses.append(tm)
        elif len(fields) == 3 and fields[2].startswith("HTTP/1."):
            headers = _headers(tm.head)
            body = tm.body
            if any(k.lower() == "transfer-encoding" and "chunked" in v.lower() for k, v in headers):
                body = decode_chunked(body)
            pending.setdefault((tm.src, tm.dst), []).append(len(requests))
            requests.append(HttpRequest(tm.first_packet.number, tm.first_packet.ts_ns, tm.src,
                                        tm.dst, fields[0], fields[1], headers, body))
    for resp in responses:
        queue = pending.get((resp.dst, resp.src))
        if queue:
            idx = queue.pop(0)
            code = resp.start_line.split(" ")[1]
            requests[idx] = replace(requests[idx], response_status=int(code) if code.isdigit() else None,
                                    response_ts_ns=resp.first_packet.ts_ns)
    return requests


def _headers(head: bytes) -> tuple[tuple[str, str], ...]:
    items = []
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, sep, value = line.partition(":")
        if sep:
            items.append((name.strip(), value.strip()))
    return tuple(items)
