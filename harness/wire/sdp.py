"""The little of SDP (RFC 4566) that finding RTP streams in a capture needs.

Kept in `wire/` on purpose: the analysis must read any peer's SDP leniently, and it only
needs the audio address, port and payload-type map.
"""
from __future__ import annotations

from dataclasses import dataclass

#: RFC 3551 static payload types: encoding name and clock rate.
STATIC_PAYLOAD_TYPES = {0: ("PCMU", 8000), 3: ("GSM", 8000), 4: ("G723", 8000),
                        8: ("PCMA", 8000), 9: ("G722", 8000), 13: ("CN", 8000),
                        18: ("G729", 8000)}


@dataclass(frozen=True, slots=True)
class SdpAudio:
    """The first audio media of an SDP body: where it receives RTP and its payload types."""

    address: str
    port: int
    payload_types: tuple[int, ...]
    #: payload type -> (encoding name, clock rate), from a=rtpmap or the static table.
    rtpmap: dict[int, tuple[str, int]]
    direction: str
    #: where RTCP goes: the port after the RTP port unless a=rtcp names one (RFC 3605), or
    #: the RTP port itself with a=rtcp-mux (RFC 5761)
    rtcp_port: int = 0
    rtcp_mux: bool = False


def parse_sdp_audio(body: bytes) -> SdpAudio | None:
    """The audio media of an SDP body, or None when there is none (or port 0 = rejected)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    session_addr = media_addr = None
    port, pts, in_audio, seen_audio = 0, (), False, False
    rtpmap: dict[int, tuple[str, int]] = {}
    direction = session_dir = "sendrecv"
    rtcp_port, rtcp_mux = 0, False
    for line in text.splitlines():
        key, _, value = line.strip().partition("=")
        if key == "m":
            if seen_audio:
                break
            fields = value.split()
            in_audio = len(fields) >= 3 and fields[0] == "audio"
            if in_audio:
                seen_audio = True
                port = int(fields[1].split("/")[0]) if fields[1].split("/")[0].isdigit() else 0
                pts = tuple(int(f) for f in fields[3:] if f.isdigit())
                direction = session_dir
        elif key == "c":
            parts = value.split()
            if len(parts) >= 3:
                addr = parts[2].split("/")[0]
                if in_audio:
                    media_addr = addr
                elif not seen_audio:
                    session_addr = addr
        elif key == "a" and (in_audio or not seen_audio):
            name, _, arg = value.partition(":")
            if name == "rtpmap" and in_audio:
                pt, _, enc = arg.partition(" ")
                enc_name, _, rate = enc.strip().partition("/")
                if pt.isdigit():
                    rtpmap[int(pt)] = (enc_name, int(rate.split("/")[0]) if rate[:1].isdigit() else 8000)
            elif name == "rtcp" and in_audio and arg.split(" ")[0].isdigit():
                rtcp_port = int(arg.split(" ")[0])
            elif name == "rtcp-mux" and in_audio:
                rtcp_mux = True
            elif name in ("sendrecv", "sendonly", "recvonly", "inactive"):
                if in_audio:
                    direction = name
                else:
                    session_dir = name
    address = media_addr or session_addr
    if not seen_audio or not port or address is None:
        return None
    full = {pt: rtpmap.get(pt) or STATIC_PAYLOAD_TYPES[pt]
            for pt in pts if pt in rtpmap or pt in STATIC_PAYLOAD_TYPES}
    return SdpAudio(address=address, port=port, payload_types=pts, rtpmap=full,
                    direction=direction, rtcp_port=port if rtcp_mux else rtcp_port or port + 1,
                    rtcp_mux=rtcp_mux)
