"""The calls of a capture and the quality of their streams.

One call per SIP dialog (Call-ID): who called whom (the From and To of its first request),
when it started and ended (its first and last message; a BYE's response ends it), its final
status (the final response to its first INVITE), the RTP streams its SDP set up, and the worst
loss, jitter and MOS among them. Each stream's quality joins what the capture shows (loss
pattern, jitter, packet time) with what RTCP reports about it (`rtcp_reports`) into the
E-model (`quality`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.sip.message import SipRequest, SipResponse
from harness.wire.analysis import WireAnalysis
from harness.wire.icmp import IcmpError
from harness.wire.quality import Quality, burst_ratio, estimate, loss_pattern
from harness.wire.rtcp_reports import ReceptionReport, SenderInfo, XrVoipReport
from harness.wire.rtp_streams import RtpStream
from harness.wire.sip_ladder import SipOnWire


@dataclass(frozen=True)
class StreamQuality:
    """What is known of one stream's quality: RTCP about it and the E-model estimate."""

    sender_reports: tuple[SenderInfo, ...]
    reception_reports: tuple[ReceptionReport, ...]
    voip_metrics: tuple[XrVoipReport, ...]
    #: RTT in ms of each reception report that allowed one
    rtt_ms: tuple[float, ...]
    quality: Quality | None
    #: why there is no estimate (a codec without E-model values, no audio packets)
    no_quality_reason: str | None = None


@dataclass(frozen=True)
class Call:
    """One SIP dialog of the capture."""

    call_id: str
    from_uri: str
    to_uri: str
    start_ns: int
    end_ns: int
    #: the final status of the first INVITE (None: no INVITE, or no final response seen)
    final_status: int | None
    final_reason: str | None
    messages: tuple[SipOnWire, ...]
    streams: tuple[RtpStream, ...]
    icmp: tuple[IcmpError, ...]

    @property
    def duration_s(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9


def find_calls(analysis: WireAnalysis) -> list[Call]:
    """The capture's dialogs in order of their first message."""
    calls = []
    for call_id, messages in analysis.dialogs.items():
        first = next((m for m in messages if isinstance(m.message, SipRequest)), messages[0])
        invite = next((m for m in messages if isinstance(m.message, SipRequest)
                       and m.message.method == "INVITE"), None)
        final = None
        if invite is not None:
            final = next((m.message for m in messages if isinstance(m.message, SipResponse)
                          and m.message.status >= 200 and m.message.cseq == invite.message.cseq), None)
        streams = tuple(s for s in analysis.rtp_streams if s.call_id == call_id)
        end = max([m.ts_ns for m in messages] + [s.end_ts_ns for s in streams])
        calls.append(Call(call_id, _uri(first, "from"), _uri(first, "to"), messages[0].ts_ns, end,
                          final.status if final else None, final.reason if final else None,
                          tuple(messages), streams, tuple(_icmp_of(analysis, call_id, messages))))
    return calls


def _uri(msg: SipOnWire, header: str) -> str:
    value = msg.message.headers.get(header) or ""
    if "<" in value:
        return value[value.index("<") + 1:value.index(">")] if ">" in value else value
    return value.split(";")[0].strip()


def _icmp_of(analysis: WireAnalysis, call_id: str, messages: list[SipOnWire]) -> list[IcmpError]:
    """ICMP errors about this dialog's messages: by the Call-ID they quote, else by the
    endpoints of a message sent before them."""
    found = []
    for error in analysis.icmp:
        if error.quoted_call_id is not None:
            if error.quoted_call_id == call_id:
                found.append(error)
        elif any(m.src == error.original_src and m.dst == error.original_dst and m.number < error.number
                 for m in messages):
            found.append(error)
    return found


def stream_quality(analysis: WireAnalysis, stream: RtpStream, call: Call | None = None) -> StreamQuality:
    """RTCP about the stream and its E-model estimate (see `quality` for the inputs)."""
    senders, receptions, voip = analysis.rtcp.about(stream.ssrc)
    rtts = tuple(r.rtt_ms for r in receptions if r.rtt_ms is not None) \
        + tuple(v.rtt_ms for v in voip if v.rtt_ms is not None)
    audio = [pt for pt in stream.payload_types if stream.encodings.get(pt, ("", 0))[0].lower()
             not in ("telephone-event", "cn")]
    rtcp = (tuple(senders), tuple(receptions), tuple(voip), rtts)
    if not audio:
        return StreamQuality(*rtcp, None, "no audio packets")
    codec = stream.encoding_name(audio[0]) or str(audio[0])
    frames = stream.packets
    lost = loss_pattern(frames.sequence)
    capture_loss = 100.0 * np.count_nonzero(lost) / len(lost) if len(lost) else 0.0
    ppl, source = capture_loss, "capture"
    if receptions:
        last = receptions[-1]
        expected = int(lost.size) or 1
        reported = 100.0 * max(last.cumulative_lost, 0) / expected
        if reported > ppl:
            ppl, source = reported, "rtcp"
    network, delay_source = 0.0, "none"
    if rtts:
        network, delay_source = float(np.mean(rtts)) / 2, "rtcp"
    elif call is not None and (sip_rtt := _sip_round_trip(call)) is not None:
        network, delay_source = sip_rtt / 2, "sip"
    rate = stream.encodings.get(audio[0], ("", 8000))[1] or 8000
    steps = np.diff(frames.timestamp[np.isin(frames.payload_type, audio)]) % (1 << 32)
    steps = steps[(steps > 0) & (steps < rate)]
    packet_time = float(np.median(steps)) * 1000 / rate if len(steps) else 20.0
    result = estimate(codec, ppl, source, burst_ratio(lost), network, delay_source, packet_time,
                      stream.stats.mean_jitter_ms)
    return StreamQuality(*rtcp, result, None if result else f"no E-model values for {codec}")


def _sip_round_trip(call: Call) -> float | None:
    """The quickest request-to-first-response time of the call, in ms."""
    best = None
    for i, m in enumerate(call.messages):
        if not isinstance(m.message, SipRequest) or m.message.method == "ACK":
            continue
        reply = next((r for r in call.messages[i + 1:] if isinstance(r.message, SipResponse)
                      and r.message.cseq == m.message.cseq and r.src == m.dst), None)
        if reply is not None:
            gap = (reply.ts_ns - m.ts_ns) / 1e6
            best = gap if best is None else min(best, gap)
    return best
