"""SIP messages found in a capture, grouped into dialogs, drawn as a text ladder (like sngrep)."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from harness.sip.message import SipMessage, SipParseError, SipRequest, SipResponse, parse_message
from harness.wire.packets import Address, Packet
from harness.wire.tcp_streams import TextMessage

_COLUMN = 30


@dataclass(frozen=True, slots=True)
class SipOnWire:
    """One SIP message as captured: when, between which endpoints, over which transport."""

    number: int
    ts_ns: int
    src: Address
    dst: Address
    transport: str
    message: SipMessage
    #: the frame that completed the message (for TCP, the last segment), as Wireshark counts it
    last_number: int
    #: the message as it crossed the wire
    raw: bytes = b""

    @property
    def time(self) -> float:
        return self.ts_ns / 1e9

    @property
    def summary(self) -> str:
        """'INVITE', '200 OK (INVITE)'; ' (SDP)' is appended when the body is SDP."""
        msg = self.message
        if isinstance(msg, SipRequest):
            text = msg.method
        else:
            assert isinstance(msg, SipResponse)
            text = f"{msg.status} {msg.reason} ({msg.cseq[1]})".replace("  ", " ")
        return text + (" (SDP)" if has_sdp(msg) else "")


def has_sdp(msg: SipMessage) -> bool:
    """True when the message body is an SDP session description."""
    ctype = (msg.headers.get("content-type") or "").split(";")[0].strip().lower()
    return bool(msg.body) and (ctype == "application/sdp" or msg.body.lstrip().startswith(b"v=0"))


def _looks_like_sip(payload: bytes) -> bool:
    if not payload or not (65 <= payload[0] <= 90 or payload[0] in (10, 13)):  # RTP: 0x80-0xBF
        return False
    line = payload.lstrip(b"\r\n")[:200].split(b"\r\n", 1)[0]
    return line.startswith(b"SIP/2.0 ") or line.endswith(b" SIP/2.0")


def sip_from_udp(packets: Iterable[Packet]) -> list[SipOnWire]:
    """Every UDP datagram that parses as a SIP message (keep-alives and junk are skipped)."""
    found = []
    for pkt in packets:
        if pkt.transport != "udp" or not _looks_like_sip(pkt.payload):
            continue
        try:
            msg = parse_message(pkt.payload)
        except SipParseError:
            continue
        found.append(SipOnWire(pkt.number, pkt.ts_ns, pkt.src, pkt.dst, "udp", msg, pkt.number,
                               pkt.payload))
    return found


def sip_from_tcp(messages: Iterable[TextMessage]) -> list[SipOnWire]:
    """The SIP messages among framed TCP messages; time is that of their first segment."""
    found = []
    for tm in messages:
        if not (tm.start_line.startswith("SIP/2.0 ") or tm.start_line.endswith(" SIP/2.0")):
            continue
        try:
            msg = parse_message(tm.raw, stream=True)
        except SipParseError:
            continue
        found.append(SipOnWire(tm.first_packet.number, tm.first_packet.ts_ns, tm.src, tm.dst,
                               "tcp", msg, tm.last_packet.number, tm.raw))
    return found


def group_dialogs(messages: Iterable[SipOnWire]) -> dict[str, list[SipOnWire]]:
    """Call-ID -> its messages in capture order, dialogs in order of their first message."""
    dialogs: dict[str, list[SipOnWire]] = {}
    for item in sorted(messages, key=lambda m: (m.ts_ns, m.number)):
        dialogs.setdefault(item.message.call_id, []).append(item)
    return dialogs


def ladder_text(dialogs: dict[str, list[SipOnWire]]) -> str:
    """A text ladder per dialog: one column per endpoint, one arrow per message."""
    return "\n\n".join(_ladder(call_id, msgs) for call_id, msgs in dialogs.items())


def _ladder(call_id: str, msgs: Sequence[SipOnWire]) -> str:
    endpoints: list[Address] = []
    for m in msgs:
        for ep in (m.src, m.dst):
            if ep not in endpoints:
                endpoints.append(ep)
    col = {ep: i for i, ep in enumerate(endpoints)}
    pad = " " * 12
    names = "".join(f"{ep[0]}:{ep[1]}".center(_COLUMN) for ep in endpoints)
    lines = [f"Call-ID: {call_id}", pad + names]
    t0 = msgs[0].ts_ns
    for m in msgs:
        a, b = col[m.src], col[m.dst]
        lo, hi = min(a, b), max(a, b)
        row = list(" " * (_COLUMN * len(endpoints)))
        for i in range(len(endpoints)):
            row[i * _COLUMN + _COLUMN // 2] = "|"
        left, right = lo * _COLUMN + _COLUMN // 2, hi * _COLUMN + _COLUMN // 2
        if a == b:  # a message an endpoint sends to itself
            row[left + 1:left + 1] = f" <- {m.summary}"
        else:
            label = f" {m.summary} "[: right - left - 3]
            arrow = list("-" * (right - left - 1))
            arrow[1:1 + len(label)] = label
            arrow[-1 if a < b else 0] = ">" if a < b else "<"
            row[left + 1:right] = arrow
        tag = f"{(m.ts_ns - t0) / 1e9:+9.3f}s "
        lines.append(tag + "".join(row).rstrip() + ("" if m.transport == "udp" else f"  [{m.transport}]"))
    return "\n".join(lines)
