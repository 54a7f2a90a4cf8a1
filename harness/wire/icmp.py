"""ICMP and ICMPv6 error messages, and the packet each one quotes (RFC 792, RFC 4443).

An error quotes the IP header and the start of the packet that caused it: so "port
unreachable" after an INVITE names the INVITE's source and destination (address and port),
and, when enough of it was quoted, its SIP start line and Call-ID.
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from harness.wire.packets import ICMP, TCP, UDP, Address, ip_text

_V4_TYPES = {3: "Destination unreachable", 11: "Time exceeded", 12: "Parameter problem"}
_V4_UNREACHABLE = {0: "Network unreachable", 1: "Host unreachable", 2: "Protocol unreachable",
                   3: "Port unreachable", 4: "Fragmentation needed", 9: "Network prohibited",
                   10: "Host prohibited", 13: "Communication administratively prohibited"}
_V6_TYPES = {1: "Destination unreachable", 2: "Packet too big", 3: "Time exceeded",
             4: "Parameter problem"}
_V6_UNREACHABLE = {0: "No route to destination", 1: "Communication administratively prohibited",
                   3: "Address unreachable", 4: "Port unreachable"}
_CALL_ID = re.compile(rb"\r\n(?:Call-ID|i)[ \t]*:[ \t]*([^\r\n]+)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class IcmpError:
    """One ICMP error: who sent it, and the packet it is about (`original_*`)."""

    number: int
    ts_ns: int
    reporter: str
    icmp_type: int
    code: int
    description: str
    original_protocol: int
    original_src: Address
    original_dst: Address
    #: the first line of the quoted payload when it is a SIP message, and its Call-ID
    quoted_start_line: str | None
    quoted_call_id: str | None

    @property
    def summary(self) -> str:
        """'ICMP Destination unreachable (Port unreachable) for INVITE'."""
        what = self.quoted_start_line.split(" ")[0] if self.quoted_start_line else None
        if what == "SIP/2.0" and self.quoted_start_line:
            what = self.quoted_start_line
        return f"ICMP {self.description}" + (f" for {what}" if what else "")


def parse_icmp_error(number: int, ts_ns: int, reporter: str, protocol: int,
                     message: bytes) -> IcmpError | None:
    """The error an ICMP (protocol 1) or ICMPv6 (58) message reports, or None when it is not
    an error that quotes a packet (echo, neighbour discovery, ...)."""
    if len(message) < 8:
        return None
    kind, code = message[0], message[1]
    types, unreachable = (_V4_TYPES, _V4_UNREACHABLE) if protocol == ICMP else (_V6_TYPES, _V6_UNREACHABLE)
    if kind not in types:
        return None
    description = types[kind]
    if kind == (3 if protocol == ICMP else 1):
        description += f" ({unreachable.get(code, f'code {code}')})"
    quoted = _quoted(message[8:])
    if quoted is None:
        return None
    proto, src, dst, payload = quoted
    start_line = call_id = None
    if payload[:1].isalpha():
        first = payload.split(b"\r\n", 1)[0]
        if first.startswith(b"SIP/2.0 ") or first.endswith(b" SIP/2.0"):
            start_line = first.decode("latin-1")
            found = _CALL_ID.search(payload)
            call_id = found.group(1).strip().decode("latin-1") if found else None
    return IcmpError(number, ts_ns, reporter, kind, code, description, proto, src, dst,
                     start_line, call_id)


def _quoted(data: bytes) -> tuple[int, Address, Address, bytes] | None:
    """(protocol, source, destination, transport payload) of the quoted packet."""
    if len(data) < 20:
        return None
    if data[0] >> 4 == 4:
        ihl = (data[0] & 0x0F) * 4
        proto = data[9]
        src, dst = ip_text(data[12:16]), ip_text(data[16:20])
        inner = data[ihl:]
    elif data[0] >> 4 == 6 and len(data) >= 40:
        proto = data[6]
        src, dst = ip_text(data[8:24]), ip_text(data[24:40])
        inner = data[40:]
    else:
        return None
    if proto in (UDP, TCP) and len(inner) >= 4:
        sport, dport = struct.unpack_from("!HH", inner)
        header = 8 if proto == UDP else max(20, (inner[12] >> 4) * 4 if len(inner) > 12 else 20)
        return proto, (src, sport), (dst, dport), inner[header:]
    return proto, (src, 0), (dst, 0), b""
