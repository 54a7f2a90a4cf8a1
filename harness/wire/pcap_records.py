"""The records of a pcap or pcapng file: where each frame is, its time, length and link type.

The file is read into memory once and its record headers are walked in one pass. Runs of
records of the same size (the RTP packets of one codec and packet time, however many streams
interleave) are read as numpy strided views, so the walk costs per run rather than per
packet; other records are read one by one with `struct`. Each frame's first `HEAD_BYTES`
are copied into one matrix for the vectorised decoding in `datagrams`.

pcap: both byte orders, microsecond and nanosecond magic. pcapng: several sections and
interfaces, enhanced, simple and obsolete packet blocks, if_tsresol and if_tsoffset. A
record cut short at the end of the file (a capture copied while it was written, or cut with
`head -c`) ends the reading, as in Wireshark: the frames before it are analysed and
`CaptureRecords.warnings` says where the file was cut; frames captured shorter than they were
on the wire (a snap length) are counted there too.
"""
from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Bytes of each frame copied into `CaptureRecords.head`: Ethernet + IPv4 + UDP + RTP fit.
HEAD_BYTES = 64
_PCAP_MAGIC = {b"\xd4\xc3\xb2\xa1": ("<", False), b"\xa1\xb2\xc3\xd4": (">", False),
               b"\x4d\x3c\xb2\xa1": ("<", True), b"\xa1\xb2\x3c\x4d": (">", True)}
_SHB, _IDB, _PB, _SPB, _EPB = 0x0A0D0D0A, 1, 2, 3, 6
_MAX_RECORD = 1 << 28
_FIRST_WINDOW = 64


class PcapError(ValueError):
    """The file is not a readable pcap or pcapng capture."""


@dataclass(frozen=True)
class CaptureRecords:
    """Every frame of a capture file as columns; frame bytes are slices of `data`."""

    #: the file's bytes (a read-only memory map of it)
    data: bytes | mmap.mmap
    #: where each frame's bytes start in `data`, and how many were captured
    offset: np.ndarray
    length: np.ndarray
    ts_ns: np.ndarray
    linktype: np.ndarray
    #: each frame's first HEAD_BYTES bytes; bytes past the frame's length are undefined
    head: np.ndarray
    #: what could not be read: the file cut inside a record, frames cut by a snap length
    warnings: tuple[str, ...] = ()

    @property
    def frames(self) -> int:
        return len(self.offset)

    def frame(self, i: int) -> bytes:
        """The captured bytes of frame i (0-based)."""
        start = int(self.offset[i])
        return self.data[start:start + int(self.length[i])]


def read_records(path: str | Path) -> CaptureRecords:
    """Read a pcap or pcapng file; raise PcapError if it is not one."""
    try:
        with open(path, "rb") as file:  # mapped, not copied: frames are read where they lie
            data = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) if os.fstat(file.fileno()).st_size \
                else b""
    except (OSError, ValueError) as exc:
        raise PcapError(f"{path}: {exc}") from exc
    if len(data) >= 24 and data[:4] in _PCAP_MAGIC:
        order, nano = _PCAP_MAGIC[data[:4]]
        return _read_pcap(data, order, nano)
    if len(data) >= 12 and data[:4] == b"\x0a\x0d\x0d\x0a":
        return _read_pcapng(data)
    raise PcapError(f"{path}: not a pcap or pcapng file")


class _Collector:
    """Gathers the records found one by one or in runs.

    Each record becomes one item of `dtype`: the record header's fields, then a `head`
    field with the frame's first HEAD_BYTES. Where the frame follows its header (pcap,
    enhanced packet blocks) that is the record's own bytes, so a run is one strided view.
    """

    def __init__(self, data: bytes, header: list[tuple[str, str]]):
        self.data = data
        self.dtype = np.dtype(header + [("head", np.uint8, (HEAD_BYTES,))])
        self.header_size = self.dtype.itemsize - HEAD_BYTES
        self.chunks: list[tuple[np.ndarray, np.ndarray, int]] = []
        self._singles: list[tuple[int, int]] = []
        self.base = 0  # pcapng: index of the current section's first interface

    def single(self, pos: int, frame_at: int) -> None:
        self._singles.append((pos, pos + frame_at))

    def run(self, pos: int, step: int, count: int) -> int:
        """Take up to `count` records of `step` bytes from `pos`, each with its frame right
        after its header; return how many were taken."""
        count = min(count, (len(self.data) - pos - self.dtype.itemsize) // step + 1)
        if count < 2:
            return 0
        self.flush()
        items = np.ndarray((count,), self.dtype, self.data, pos, (step,))
        start = pos + self.header_size
        self.chunks.append((items, np.arange(start, start + count * step, step, dtype=np.int64),
                            self.base))
        return count

    def flush(self) -> None:
        if not self._singles:
            return
        data, size = self.data, self.header_size
        raw = b"".join(data[p:p + size].ljust(size, b"\0") + data[f:f + HEAD_BYTES].ljust(HEAD_BYTES, b"\0")
                       for p, f in self._singles)
        self.chunks.append((np.frombuffer(raw, self.dtype),
                            np.array([f for _, f in self._singles], np.int64), self.base))
        self._singles = []

    def columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(items, frame offsets, section base per record), all records in file order; the
        runs stay views of the file until this one copy."""
        self.flush()
        if not self.chunks:
            return np.zeros(0, self.dtype), np.zeros(0, np.int64), np.zeros(0, np.int64)
        items, offsets, bases = zip(*self.chunks)
        return (np.concatenate(items), np.concatenate(offsets),
                np.repeat(np.array(bases, np.int64), [len(o) for o in offsets]))


def _run_length(data: bytes, pos: int, step: int, dtype: str, limit: int) -> int:
    """How many records from `pos`, `step` bytes apart, have the same `dtype` value there as
    the first one, up to `limit`; checked in doubling windows."""
    first = np.ndarray((1,), dtype, data, pos)[0]
    count, window = 0, _FIRST_WINDOW
    while count < limit:
        k = min(window, limit - count)
        differs = np.flatnonzero(np.ndarray((k,), dtype, data, pos + count * step, (step,)) != first)
        if len(differs):
            return count + int(differs[0])
        count, window = count + k, window * 2
    return count


def _read_pcap(data: bytes, order: str, nano: bool) -> CaptureRecords:
    linktype = struct.unpack_from(order + "I", data, 20)[0] & 0xFFFF
    u32 = struct.Struct(order + "I").unpack_from
    found = _Collector(data, [("sec", order + "u4"), ("frac", order + "u4"),
                              ("caplen", order + "u4"), ("wirelen", order + "u4")])
    pos, end = 24, len(data)
    while pos + 16 <= end:
        caplen = u32(data, pos + 8)[0]
        step = 16 + caplen
        if caplen > _MAX_RECORD or pos + step > end:
            break
        taken = 0
        if pos + step + 16 <= end and u32(data, pos + step + 8)[0] == caplen:
            limit = (end - pos) // step
            taken = found.run(pos, step, _run_length(data, pos + 8, step, "<u4", limit))
        if taken:
            pos += taken * step
        else:
            found.single(pos, 16)
            pos += step
    items, offsets, _ = found.columns()
    ts_ns = items["sec"].astype(np.int64) * 1_000_000_000 + \
        items["frac"].astype(np.int64) * (1 if nano else 1000)
    caplen = items["caplen"].astype(np.int64)
    warnings = _warnings(len(offsets), pos, end, caplen < items["wirelen"].astype(np.int64))
    return CaptureRecords(data, offsets, caplen, ts_ns, np.full(len(offsets), linktype, np.int64),
                          items["head"], warnings)


@dataclass
class _Interface:
    linktype: int
    snaplen: int
    #: timestamp units per second, and an offset in seconds (if_tsresol, if_tsoffset)
    units: int = 1_000_000
    offset_s: int = 0


def _read_pcapng(data: bytes) -> CaptureRecords:
    order = "<"
    header_of = {o: [(name, o + "u4") for name in
                     ("type", "blocklen", "iface", "high", "low", "caplen", "wirelen")] for o in "<>"}
    found: _Collector | None = None
    interfaces: list[_Interface] = []
    pos, end = 0, len(data)
    while pos + 12 <= end:
        kind = struct.unpack_from(order + "I", data, pos)[0]
        if kind == _SHB:
            order = "<" if data[pos + 8:pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            if found is None:
                found, file_order = _Collector(data, header_of[order]), order
            elif order != file_order:
                break  # a later section in the other byte order: not read
            found.flush()
            found.base = len(interfaces)
        blocklen = struct.unpack_from(order + "I", data, pos + 4)[0]
        if blocklen < 12 or blocklen % 4 or pos + blocklen > end or found is None:
            break
        if kind == _IDB:
            interfaces.append(_interface(data, pos, blocklen, order))
        elif kind == _EPB and pos + 2 * blocklen <= end and data[pos:pos + 8] == \
                data[pos + blocklen:pos + blocklen + 8]:
            count = _run_length(data, pos, blocklen, "<u8", (end - pos) // blocklen)
            taken = found.run(pos, blocklen, count)
            if taken:
                pos += taken * blocklen
                continue
            found.single(pos, 28)
        elif kind in (_EPB, _PB):
            found.single(pos, 28)
        elif kind == _SPB:
            found.single(pos, 12)
        pos += blocklen
    if found is None:
        raise PcapError("pcapng file without a section header")
    fields, offsets, bases = found.columns()
    kinds = fields["type"]
    iface = fields["iface"].astype(np.int64)
    obsolete = kinds == _PB
    iface[obsolete] = (iface[obsolete] & 0xFFFF) if file_order == "<" else (iface[obsolete] >> 16)
    simple = kinds == _SPB
    iface[simple] = 0
    iface += bases
    known = iface < len(interfaces)
    iface[~known] = 0
    linktypes = np.array([i.linktype for i in interfaces] or [-1], np.int64)[iface]
    linktypes[~known] = -1
    caplen = np.minimum(fields["caplen"].astype(np.int64), fields["blocklen"].astype(np.int64) - 32)
    if simple.any():  # an SPB holds the original length at +8 and its data at +12
        snap = np.array([i.snaplen or _MAX_RECORD for i in interfaces] or [0], np.int64)[iface]
        caplen[simple] = np.minimum.reduce([fields["iface"][simple].astype(np.int64),
                                            fields["blocklen"][simple].astype(np.int64) - 16,
                                            snap[simple]])
    units = (fields["high"].astype(np.uint64) << np.uint64(32)) | fields["low"].astype(np.uint64)
    ts_ns = _to_ns(units, iface, interfaces)
    if simple.any():  # no timestamp: the previous frame's
        ts_ns = ts_ns[np.maximum.accumulate(np.where(simple, 0, np.arange(len(ts_ns))))]
    wirelen = np.where(simple, fields["iface"].astype(np.int64), fields["wirelen"].astype(np.int64))
    caplen = np.maximum(caplen, 0)
    warnings = _warnings(len(offsets), pos, end, caplen < wirelen)
    return CaptureRecords(data, offsets, caplen, ts_ns, linktypes, fields["head"], warnings)


def _warnings(frames: int, pos: int, end: int, snapped: np.ndarray) -> tuple[str, ...]:
    """What the reader could not take: bytes after the last whole record, short frames."""
    found = []
    if pos < end:
        found.append(f"the file is cut short: {end - pos} bytes at its end (from byte {pos}) are "
                     f"an incomplete record; analysed the {frames} frames before it")
    if snapped.any():
        found.append(f"{int(snapped.sum())} frames were captured shorter than they were on the "
                     f"wire (a snap length); what they lost is not analysed")
    return tuple(found)


def _interface(data: bytes, pos: int, blocklen: int, order: str) -> _Interface:
    linktype, _reserved, snaplen = struct.unpack_from(order + "HHI", data, pos + 8)
    found = _Interface(linktype, snaplen)
    opt, end = pos + 16, pos + blocklen - 4
    while opt + 4 <= end:
        code, length = struct.unpack_from(order + "HH", data, opt)
        value = data[opt + 4:opt + 4 + length]
        if code == 0:
            break
        if code == 9 and length >= 1:
            found.units = 2 ** (value[0] & 0x7F) if value[0] & 0x80 else 10 ** value[0]
        elif code == 14 and length >= 8:
            found.offset_s = struct.unpack_from(order + "q", value)[0]
        opt += 4 + (length + 3) // 4 * 4
    return found


def _to_ns(units: np.ndarray, iface: np.ndarray, interfaces: list[_Interface]) -> np.ndarray:
    ts_ns = np.zeros(len(units), np.int64)
    for index, itf in enumerate(interfaces):
        mask = iface == index
        if not mask.any():
            continue
        if 1_000_000_000 % itf.units == 0:
            ns = units[mask].astype(np.int64) * (1_000_000_000 // itf.units)
        elif itf.units % 1_000_000_000 == 0:
            ns = (units[mask] // np.uint64(itf.units // 1_000_000_000)).astype(np.int64)
        else:
            ns = np.array([u * 1_000_000_000 // itf.units for u in units[mask].tolist()], np.int64)
        ts_ns[mask] = ns + itf.offset_s * 1_000_000_000
    return ts_ns
