"""RTP packets (RFC 3550 §5.1) and RFC 4733 telephone-event payloads, parsed and built."""
from __future__ import annotations

import struct
from dataclasses import dataclass

RTP_VERSION = 2
_HEADER = struct.Struct("!BBHII")


class RtpError(ValueError):
    """Raised for bytes that are not a well-formed RTP packet or event payload."""


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """One RTP packet. `payload` excludes padding; `extension` is (profile, data) or None."""

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrc: tuple[int, ...] = ()
    extension: tuple[int, bytes] | None = None
    padding: int = 0

    def build(self) -> bytes:
        """Serialize to wire bytes."""
        b0 = (RTP_VERSION << 6) | (0x20 if self.padding else 0) | len(self.csrc)
        if self.extension is not None:
            b0 |= 0x10
        b1 = (0x80 if self.marker else 0) | (self.payload_type & 0x7F)
        out = [_HEADER.pack(b0, b1, self.sequence & 0xFFFF, self.timestamp & 0xFFFFFFFF,
                            self.ssrc & 0xFFFFFFFF)]
        out += [struct.pack("!I", c) for c in self.csrc]
        if self.extension is not None:
            profile, data = self.extension
            if len(data) % 4:
                raise RtpError("header extension length must be a multiple of 4 bytes")
            out.append(struct.pack("!HH", profile, len(data) // 4) + data)
        out.append(self.payload)
        if self.padding:
            out.append(bytes(self.padding - 1) + bytes([self.padding]))
        return b"".join(out)

    @classmethod
    def parse(cls, data: bytes) -> "RtpPacket":
        """Parse wire bytes; raise RtpError when they are not RTP version 2."""
        if len(data) < _HEADER.size:
            raise RtpError(f"RTP packet too short: {len(data)} bytes")
        b0, b1, seq, ts, ssrc = _HEADER.unpack_from(data)
        if b0 >> 6 != RTP_VERSION:
            raise RtpError(f"RTP version {b0 >> 6}, expected 2")
        pos = _HEADER.size
        cc = b0 & 0x0F
        if len(data) < pos + 4 * cc:
            raise RtpError("RTP packet truncated in the CSRC list")
        csrc = struct.unpack_from(f"!{cc}I", data, pos)
        pos += 4 * cc
        extension = None
        if b0 & 0x10:
            if len(data) < pos + 4:
                raise RtpError("RTP packet truncated in the header extension")
            profile, words = struct.unpack_from("!HH", data, pos)
            end = pos + 4 + 4 * words
            if len(data) < end:
                raise RtpError("RTP header extension longer than the packet")
            extension = (profile, bytes(data[pos + 4:end]))
            pos = end
        end = len(data)
        padding = 0
        if b0 & 0x20:
            padding = data[-1]
            if padding == 0 or end - padding < pos:
                raise RtpError(f"invalid RTP padding count {padding}")
            end -= padding
        return cls(payload_type=b1 & 0x7F, sequence=seq, timestamp=ts, ssrc=ssrc,
                   payload=bytes(data[pos:end]), marker=bool(b1 & 0x80), csrc=tuple(csrc),
                   extension=extension, padding=padding)


#: RFC 4733 §3.2 event codes for DTMF.
DTMF_EVENTS = "0123456789*#ABCD"


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """An RFC 4733 named-event payload: event code, end flag, volume (dBm0 below 0), duration."""

    event: int
    end: bool
    volume: int
    duration: int
    _struct = struct.Struct("!BBH")

    @property
    def digit(self) -> str | None:
        """The DTMF digit of this event, or None for a non-DTMF event."""
        return DTMF_EVENTS[self.event] if self.event < len(DTMF_EVENTS) else None

    def build(self) -> bytes:
        """Serialize to the 4-byte payload."""
        return self._struct.pack(self.event, (0x80 if self.end else 0) | (self.volume & 0x3F),
                                 self.duration & 0xFFFF)

    @classmethod
    def parse(cls, payload: bytes) -> "TelephoneEvent":
        """Parse the first event block of a payload; raise RtpError if it is too short."""
        if len(payload) < 4:
            raise RtpError(f"telephone-event payload too short: {len(payload)} bytes")
        event, flags, duration = cls._struct.unpack_from(payload)
        return cls(event=event, end=bool(flags & 0x80), volume=flags & 0x3F, duration=duration)
