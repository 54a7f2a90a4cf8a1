"""SDP (RFC 4566) parsing and the answerer's side of offer/answer (RFC 3264) for audio."""
from __future__ import annotations

from dataclasses import dataclass, field

#: Static payload types of RFC 3551 that we can carry.
STATIC_CODECS = {0: "PCMU", 8: "PCMA"}


class SdpError(ValueError):
    """The body is not usable SDP, or no audio format matches (answered with 488)."""


@dataclass
class MediaDescription:
    media: str
    port: int
    proto: str
    formats: list[int]
    connection: str | None = None
    rtpmap: dict[int, tuple[str, int]] = field(default_factory=dict)
    fmtp: dict[int, str] = field(default_factory=dict)
    ptime: int | None = None
    direction: str = "sendrecv"

    def codec_name(self, pt: int) -> str | None:
        """The encoding name of payload type `pt` (static table or a=rtpmap)."""
        if pt in self.rtpmap:
            return self.rtpmap[pt][0]
        return STATIC_CODECS.get(pt)


@dataclass
class SessionDescription:
    origin: str = ""
    connection: str | None = None
    media: list[MediaDescription] = field(default_factory=list)

    def audio(self) -> MediaDescription | None:
        """The first audio stream, or None."""
        return next((m for m in self.media if m.media == "audio"), None)


_DIRECTIONS = {"sendrecv", "sendonly", "recvonly", "inactive"}


def parse_sdp(body: bytes | str) -> SessionDescription:
    """Parse an SDP body; raise SdpError for anything malformed."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    sd = SessionDescription()
    session_direction = "sendrecv"
    cur: MediaDescription | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if len(line) < 2 or line[1] != "=":
            raise SdpError(f"bad SDP line {line[:40]!r}")
        kind, value = line[0], line[2:]
        if kind == "o":
            sd.origin = value
        elif kind == "c":
            parts = value.split()
            if len(parts) != 3:
                raise SdpError(f"bad connection line {value!r}")
            addr = parts[2].split("/")[0]
            if cur is None:
                sd.connection = addr
            else:
                cur.connection = addr
        elif kind == "m":
            parts = value.split()
            if len(parts) < 3:
                raise SdpError(f"bad media line {value!r}")
            try:
                port = int(parts[1].split("/")[0])
                formats = [int(f) for f in parts[3:]] if parts[2].startswith("RTP") else []
            except ValueError:
                raise SdpError(f"bad media line {value!r}") from None
            cur = MediaDescription(media=parts[0], port=port, proto=parts[2], formats=formats,
                                   direction=session_direction)
            sd.media.append(cur)
        elif kind == "a":
            name, _, arg = value.partition(":")
            if name in _DIRECTIONS:
                if cur is None:
                    session_direction = name
                else:
                    cur.direction = name
            elif cur is not None and name in ("rtpmap", "fmtp"):
                pt_s, _, rest = arg.partition(" ")
                try:
                    pt = int(pt_s)
                except ValueError:
                    raise SdpError(f"bad a={name} line {value!r}") from None
                if name == "rtpmap":
                    enc, _, rate = rest.partition("/")
                    cur.rtpmap[pt] = (enc, int(rate.split("/")[0]) if rate[:1].isdigit() else 8000)
                else:
                    cur.fmtp[pt] = rest
            elif cur is not None and name == "ptime" and arg.strip().isdigit():
                cur.ptime = int(arg)
    return sd


@dataclass(frozen=True)
class AudioAnswer:
    """What offer/answer agreed: the remote RTP address, codec and telephone-event type."""

    remote_host: str
    remote_port: int
    payload_type: int
    codec: str
    dtmf_payload_type: int | None
    ptime: int
    direction: str


_ANSWER_DIRECTION = {"sendrecv": "sendrecv", "sendonly": "recvonly",
                     "recvonly": "sendonly", "inactive": "inactive"}


def answer_offer(offer: SessionDescription, codecs: tuple[str, ...] = ("PCMU", "PCMA")
                 ) -> AudioAnswer:
    """Choose the first offered format we support, in the offerer's order (RFC 3264 §6.1)."""
    audio = offer.audio()
    if audio is None or audio.port == 0:
        raise SdpError("no audio stream offered")
    host = audio.connection or offer.connection
    if not host:
        raise SdpError("no connection address for the audio stream")
    wanted = {c.upper() for c in codecs}
    chosen = next((pt for pt in audio.formats if (audio.codec_name(pt) or "").upper() in wanted),
                  None)
    if chosen is None:
        offered = [audio.codec_name(pt) or str(pt) for pt in audio.formats]
        raise SdpError(f"no common audio codec: offered {offered}, supported {sorted(wanted)}")
    dtmf = next((pt for pt in audio.formats
                 if (audio.codec_name(pt) or "").lower() == "telephone-event"), None)
    return AudioAnswer(remote_host=host, remote_port=audio.port, payload_type=chosen,
                       codec=audio.codec_name(chosen).upper(), dtmf_payload_type=dtmf,
                       ptime=audio.ptime or 20, direction=_ANSWER_DIRECTION[audio.direction])


def build_sdp(host: str, port: int, session_id: int, version: int, payload_type: int,
              codec: str, dtmf_payload_type: int | None, ptime: int = 20,
              direction: str = "sendrecv") -> bytes:
    """Write an audio-only SDP body (used both for answers and for our own offers)."""
    formats = [payload_type] + ([dtmf_payload_type] if dtmf_payload_type is not None else [])
    lines = ["v=0", f"o=sip-harness {session_id} {version} IN IP4 {host}", "s=sip-harness",
             f"c=IN IP4 {host}", "t=0 0",
             f"m=audio {port} RTP/AVP {' '.join(map(str, formats))}",
             f"a=rtpmap:{payload_type} {codec}/8000"]
    if dtmf_payload_type is not None:
        lines += [f"a=rtpmap:{dtmf_payload_type} telephone-event/8000",
                  f"a=fmtp:{dtmf_payload_type} 0-16"]
    lines += [f"a=ptime:{ptime}", f"a={direction}"]
    return ("\r\n".join(lines) + "\r\n").encode()
