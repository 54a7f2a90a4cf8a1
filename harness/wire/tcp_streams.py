"""TCP payload reassembly per flow, and framing of text messages (SIP, HTTP) in it.

Each direction of a connection is one flow. Segments are placed by sequence number relative
to the first one seen (SYN + 1 when the SYN was captured), so reordering and retransmissions
are handled; a hole (a segment missing from the capture) ends the current byte run and the
framer resynchronises at the next start line.
"""
from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from harness.wire.packets import Address, Packet

_SYN = 0x02
_START_LINE = re.compile(rb"(?:[A-Z]+ \S+ (?:SIP/2\.0|HTTP/1\.[01])|SIP/2\.0 \d{3}|HTTP/1\.[01] \d{3})")


@dataclass(frozen=True, slots=True)
class ByteRun:
    """Contiguous reassembled bytes of one flow; `packets[i]` carries bytes from `starts[i]`."""

    src: Address
    dst: Address
    data: bytes
    starts: tuple[int, ...]
    packets: tuple[Packet, ...]

    def packet_at(self, offset: int) -> Packet:
        """The packet that carried byte `offset` of the run."""
        return self.packets[bisect.bisect_right(self.starts, offset) - 1]


@dataclass(frozen=True, slots=True)
class TextMessage:
    """One framed message: its start line, raw head and body, and the packets carrying it."""

    src: Address
    dst: Address
    start_line: str
    head: bytes
    body: bytes
    first_packet: Packet
    last_packet: Packet

    @property
    def raw(self) -> bytes:
        return self.head + b"\r\n\r\n" + self.body


def reassemble(packets: Iterable[Packet]) -> list[ByteRun]:
    """Reassemble the TCP payload of every flow into contiguous byte runs, in capture order."""
    flows: dict[tuple[Address, Address], list[Packet]] = {}
    isn: dict[tuple[Address, Address], int] = {}
    for pkt in packets:
        if pkt.transport != "tcp":
            continue
        key = (pkt.src, pkt.dst)
        if pkt.tcp_flags & _SYN:
            isn[key] = (pkt.tcp_seq + 1) & 0xFFFFFFFF
        if pkt.payload:
            flows.setdefault(key, []).append(pkt)
    runs: list[ByteRun] = []
    for key, segs in flows.items():
        base = isn.get(key, segs[0].tcp_seq)
        ordered = sorted(segs, key=lambda p: (_relative(p.tcp_seq, base), p.number))
        runs.extend(_runs(key, ordered, base))
    runs.sort(key=lambda r: r.packets[0].number)
    return runs


def _relative(seq: int, base: int) -> int:
    rel = (seq - base) & 0xFFFFFFFF
    return rel - (1 << 32) if rel >= 1 << 31 else rel


def _runs(key, ordered: list[Packet], base: int) -> Iterator[ByteRun]:
    chunks: list[bytes] = []
    starts: list[int] = []
    pkts: list[Packet] = []
    run_start = next_off = None
    for pkt in ordered:
        off = _relative(pkt.tcp_seq, base)
        end = off + len(pkt.payload)
        if next_off is not None and off > next_off:  # a hole: close the run
            yield ByteRun(key[0], key[1], b"".join(chunks), tuple(starts), tuple(pkts))
            chunks, starts, pkts, run_start, next_off = [], [], [], None, None
        if next_off is None:
            run_start, next_off = off, off
        if end <= next_off:  # retransmission of bytes we already have
            continue
        chunks.append(pkt.payload[next_off - off:])
        starts.append(next_off - run_start)
        pkts.append(pkt)
        next_off = end
    if chunks:
        yield ByteRun(key[0], key[1], b"".join(chunks), tuple(starts), tuple(pkts))


def frame_messages(run: ByteRun) -> Iterator[TextMessage]:
    """Split a byte run into SIP/HTTP messages framed by Content-Length or chunked coding.

    Bytes that do not start with a start line (e.g. after a hole) are skipped up to the next
    one; a message cut off at the end of the run is dropped.
    """
    data, pos = run.data, 0
    while pos < len(data):
        match = _START_LINE.search(data, pos)
        if match is None:
            return
        start = match.start()
        head_end = data.find(b"\r\n\r\n", start)
        if head_end < 0:
            return
        head = data[start:head_end]
        body_start = head_end + 4
        body_end = _body_end(head, data, body_start)
        if body_end is None:
            return
        yield TextMessage(run.src, run.dst, head.split(b"\r\n", 1)[0].decode("latin-1"),
                          head, data[body_start:body_end], run.packet_at(start),
                          run.packet_at(max(body_end, body_start) - 1))
        pos = body_end


def _header(head: bytes, *names: bytes) -> bytes | None:
    for line in head.split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        if sep and name.strip().lower() in names:
            return value.strip()
    return None


def _body_end(head: bytes, data: bytes, body_start: int) -> int | None:
    encoding = _header(head, b"transfer-encoding")
    if encoding is not None and b"chunked" in encoding.lower():
        return _chunked_end(data, body_start)
    length = _header(head, b"content-length", b"l")
    if length is None:  # only an HTTP response with a body may run to the connection's end
        status = head[9:12]
        bodyless = status[:1] == b"1" or status in (b"204", b"304")
        return len(data) if head.startswith(b"HTTP/") and not bodyless else body_start
    if not length.isdigit() or body_start + int(length) > len(data):
        return None
    return body_start + int(length)


def _chunked_end(data: bytes, pos: int) -> int | None:
    while True:
        line_end = data.find(b"\r\n", pos)
        if line_end < 0:
            return None
        try:
            size = int(data[pos:line_end].split(b";")[0], 16)
        except ValueError:
            return None
        pos = line_end + 2
        if size == 0:
            trailer_end = data.find(b"\r\n\r\n", line_end)
            return None if trailer_end < 0 else trailer_end + 4
        pos += size + 2


def decode_chunked(body: bytes) -> bytes:
    """The payload of a chunked-coded body."""
    out, pos = [], 0
    while True:
        line_end = body.find(b"\r\n", pos)
        size = int(body[pos:line_end].split(b";")[0], 16)
        if size == 0:
            return b"".join(out)
        out.append(body[line_end + 2:line_end + 2 + size])
        pos = line_end + 4 + size
