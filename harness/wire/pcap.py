"""Read a capture's UDP and TCP packets as `Packet` objects; write synthetic captures.

`read_pcap` is the simple, complete view of a file (every UDP datagram and TCP segment as an
object); the analysis itself works on the columns of `datagrams.decode_capture`.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from scapy.utils import RawPcapWriter

from harness.wire.datagrams import decode_capture
from harness.wire.packets import LINKTYPE_ETHERNET, Address, Packet
from harness.wire.pcap_records import PcapError, read_records

#: Address, Packet and PcapError are defined in `packets` and `pcap_records`; other packages
#: import them from here.
__all__ = ["Address", "Packet", "PcapContents", "PcapError", "read_pcap", "write_pcap"]
_MAX_FRAME = 262144


@dataclass(frozen=True, slots=True)
class PcapContents:
    """The UDP/TCP packets of a capture file, its frame count and its first frame's time."""

    start_ns: int
    frames: int
    packets: tuple[Packet, ...]


def read_pcap(path: str) -> PcapContents:
    """Read a pcap or pcapng file; raise PcapError if it is not one."""
    capture = decode_capture(read_records(path))
    udp = [capture.udp.packet(i) for i in range(len(capture.udp))]
    packets = sorted(udp + list(capture.tcp), key=lambda p: p.number)
    return PcapContents(capture.start_ns, capture.frames, tuple(packets))


def write_pcap(path: str, frames: Iterable[tuple[int, bytes]],
               linktype: int = LINKTYPE_ETHERNET) -> int:
    """Write (ts_ns, frame bytes) pairs to a nanosecond pcap; return the number written."""
    writer = RawPcapWriter(path, nano=True, snaplen=_MAX_FRAME)
    writer.linktype = linktype  # set directly: the constructor ignores linktype 0 (NULL)
    writer.write_header(None)
    count = 0
    with writer:
        for ts_ns, frame in frames:
            sec, nsec = divmod(ts_ns, 1_000_000_000)
            writer.write_packet(frame, sec=sec, usec=nsec)
            count += 1
    return count
