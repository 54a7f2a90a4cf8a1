"""IP fragment reassembly (RFC 791 for IPv4, RFC 8200 for IPv6), as Wireshark does it.

Fragments are collected per (version, source, destination, identification, protocol). A
packet is complete when the fragment without the more-fragments flag has arrived and every
byte before its end is covered; it then belongs to the frame that completed it. Where
fragments overlap, the bytes that arrived first are kept. Fragments of a packet that never
completes are counted, so the analysis can say how many it could not reassemble.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from harness.wire.packets import IpFragment


@dataclass(slots=True)
class _Pending:
    pieces: list[tuple[int, bytes]] = field(default_factory=list)
    total: int | None = None


class Reassembler:
    """Feed fragments in capture order with `add`; each completed packet comes back once."""

    def __init__(self) -> None:
        self._pending: dict[tuple, _Pending] = {}

    def add(self, fragment: IpFragment) -> bytes | None:
        """The whole payload of the fragment's IP packet when this fragment completes it."""
        pending = self._pending.setdefault(fragment.key, _Pending())
        pending.pieces.append((fragment.offset, fragment.data))
        if not fragment.more:
            pending.total = fragment.offset + len(fragment.data)
        if pending.total is None:
            return None
        payload = _joined(pending.pieces, pending.total)
        if payload is not None:
            del self._pending[fragment.key]
        return payload

    @property
    def incomplete(self) -> int:
        """Packets some of whose fragments were seen but which never completed."""
        return len(self._pending)


def _joined(pieces: list[tuple[int, bytes]], total: int) -> bytes | None:
    """The bytes 0..total from the pieces (earlier pieces win), or None while there is a hole."""
    out = bytearray(total)
    covered: list[tuple[int, int]] = []  # sorted, disjoint [start, end) intervals
    for offset, data in pieces:
        start, end = offset, min(offset + len(data), total)
        for gap_start, gap_end in _gaps(covered, start, end):
            out[gap_start:gap_end] = data[gap_start - offset:gap_end - offset]
        covered = _merged(covered + [(start, end)])
    return bytes(out) if covered == [(0, total)] or total == 0 else None


def _gaps(covered: list[tuple[int, int]], start: int, end: int) -> list[tuple[int, int]]:
    """The parts of [start, end) outside the covered intervals."""
    gaps, at = [], start
    for c_start, c_end in covered:
        if c_end <= at or c_start >= end:
            continue
        if c_start > at:
            gaps.append((at, c_start))
        at = max(at, c_end)
    if at < end:
        gaps.append((at, end))
    return gaps


def _merged(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, end in sorted(i for i in intervals if i[1] > i[0]):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out
