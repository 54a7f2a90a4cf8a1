"""One pass over a capture: SIP ladder and dialogs, HTTP requests, RTP streams, ICMP errors."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from harness.wire.datagrams import decode_capture
from harness.sip.sdes import SdesCrypto
from harness.wire.http_requests import HttpRequest, http_requests
from harness.wire.icmp import IcmpError
from harness.wire.message_log import logged_messages, read_message_logs
from harness.wire.packets import Address
from harness.wire.pcap_records import read_records
from harness.wire.rtcp_reports import RtcpReports, find_rtcp
from harness.wire.rtp_streams import RtpFrame, RtpStream, find_rtp_streams
from harness.wire.sip_ladder import SipOnWire, group_dialogs, ladder_text, sip_from_tcp, sip_from_udp
from harness.wire.srtp import SrtpFlow, decrypt_srtp
from harness.wire.tcp_streams import frame_messages, reassemble

UPDATE_CALL_PATH = ("/sip-media-applications/", "/calls/")


@dataclass(frozen=True)
class WireAnalysis:
    """Everything the harness reads from one capture file."""

    path: str
    #: time of the capture's first frame; relative times in statistics count from it
    start_ns: int
    frames: int
    sip: tuple[SipOnWire, ...]
    dialogs: dict[str, list[SipOnWire]]
    http: tuple[HttpRequest, ...]
    rtp_streams: tuple[RtpStream, ...]
    #: the SRTP flows decrypted (their RTP is in `rtp_streams`), one per keyed media address
    srtp: tuple[SrtpFlow, ...] = ()
    #: the SIP messages taken from message logs, not from the capture (SIP over TLS)
    logged_sip: int = 0
    icmp: tuple[IcmpError, ...] = ()
    rtcp: RtcpReports = RtcpReports((), (), (), ())
    #: what could not be read (a file cut short, snapped frames, incomplete fragments)
    warnings: tuple[str, ...] = ()

    def ladder_text(self) -> str:
        """The SIP dialogs as text ladders, one column per endpoint."""
        return ladder_text(self.dialogs)

    def streams(self, src: Address | None = None, dst: Address | None = None) -> list[RtpStream]:
        """The RTP streams from `src` and/or to `dst` (an address with port 0 matches any port)."""
        return [s for s in self.rtp_streams if _match(s.src, src) and _match(s.dst, dst)]

    def flow(self, src: Address, dst: Address) -> list[RtpFrame]:
        """Every RTP packet from `src` to `dst` whatever its SSRC, in capture order."""
        frames = [f for s in self.streams(src, dst) for f in s.packets]
        return sorted(frames, key=lambda f: f.number)

    def update_requests(self, transaction_id: str | None = None) -> list[HttpRequest]:
        """HTTP requests to POST /sip-media-applications/{id}/calls/{transaction_id}."""
        found = []
        for req in self.http:
            path = req.path.split("?")[0]
            if req.method == "POST" and path.startswith(UPDATE_CALL_PATH[0]) and UPDATE_CALL_PATH[1] in path:
                if transaction_id is None or path.rstrip("/").endswith("/" + transaction_id):
                    found.append(req)
        return found


def _match(addr: Address, want: Address | None) -> bool:
    return want is None or (addr[0] == want[0] and (want[1] == 0 or addr[1] == want[1]))


def analyze_pcap(path: str, message_logs: Iterable[Path] = (),
                 srtp_keys: Mapping[tuple[str, int], SdesCrypto] | None = None) -> WireAnalysis:
    """Read a pcap/pcapng file and find its SIP, HTTP and RTP (raises PcapError if unreadable).

    message_logs: SIP message logs of user agents (`harness.wire.message_log`) whose messages
        join the captured ones: the only SIP of calls over TLS.
    srtp_keys: media address -> SDES key for SRTP from that address, in place of (or beside)
        the keys the SDP announced; SRTP is decrypted before streams are looked for.
    """
    capture = decode_capture(read_records(path))
    text_messages = [m for run in reassemble(capture.tcp) for m in frame_messages(run)]
    logged = logged_messages(read_message_logs(message_logs), capture.udp.number, capture.udp.ts_ns)
    sip = sorted(sip_from_udp(capture.udp.text_packets()) + sip_from_tcp(text_messages) + logged,
                 key=lambda m: (m.ts_ns, m.number))
    datagrams, srtp = decrypt_srtp(capture.udp, sip, srtp_keys)
    streams = find_rtp_streams(datagrams, sip, capture.start_ns)
    return WireAnalysis(path=path, start_ns=capture.start_ns, frames=capture.frames,
                        sip=tuple(sip), dialogs=group_dialogs(sip),
                        http=tuple(http_requests(text_messages)), rtp_streams=tuple(streams),
                        srtp=tuple(srtp), logged_sip=len(logged), icmp=capture.icmp,
                        rtcp=find_rtcp(capture.udp), warnings=capture.warnings)
