"""SDP (RFC 4566) and offer/answer (RFC 3264) for one audio stream of G.711 and telephone-event.

Both roles: `answer_offer` + `build_answer` answer a remote offer (rejecting every other
stream with port 0), `build_offer` + `read_answer` make our own offer and read its answer,
`answer_reoffer` answers a re-INVITE (hold and resume) within the session already agreed.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace

from .sdes import SECURE_PROFILE, SdesCrypto, choose

#: Static payload types of RFC 3551 that we can carry.
STATIC_CODECS = {0: ("PCMU", 8000), 8: ("PCMA", 8000)}
DEFAULT_DTMF_PT = 101
HOLD_ADDRESS = "0.0.0.0"
#: The longest packet time we accept from an offer (ms); longer ones fall back to 20.
MAX_PTIME = 1000


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
    format_text: str = ""
    crypto: list[str] = field(default_factory=list)  # a=crypto values (RFC 4568), in order

    @property
    def secure(self) -> bool:
        """Whether the stream is SRTP (RTP/SAVP)."""
        return self.proto.upper() == SECURE_PROFILE

    def codec_name(self, pt: int) -> str | None:
        """The encoding name of payload type `pt` (static table or a=rtpmap)."""
        return self._codec(pt)[0]

    def _codec(self, pt: int) -> tuple[str | None, int]:
        if pt in self.rtpmap:
            return self.rtpmap[pt]
        return STATIC_CODECS.get(pt, (None, 0))

    def find(self, name: str) -> int | None:
        """The first payload type carrying `name` at 8000 Hz, or None."""
        return next((pt for pt in self.formats if (self._codec(pt)[0] or "").upper()
                     == name.upper() and self._codec(pt)[1] == 8000), None)


@dataclass
class SessionDescription:
    origin: str = ""
    connection: str | None = None
    media: list[MediaDescription] = field(default_factory=list)

    def audio(self) -> MediaDescription | None:
        """The audio stream offer/answer uses: the first one with a port, else the first."""
        audios = [m for m in self.media if m.media == "audio"]
        return next((m for m in audios if m.port), audios[0] if audios else None)


_DIRECTIONS = {"sendrecv", "sendonly", "recvonly", "inactive"}
_MAX_DIGITS = 10


def _number(text: str, limit: int | None = None) -> int | None:
    """`text` as a number when it is at most 10 ASCII digits (and at most `limit`), else None."""
    if not (text.isascii() and text.isdigit() and len(text) <= _MAX_DIGITS):
        return None
    value = int(text)
    return value if limit is None or value <= limit else None


def parse_sdp(body: bytes | str) -> SessionDescription:
    """Parse an SDP body; raise SdpError for anything malformed."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    sd = SessionDescription()
    session_direction = "sendrecv"
    cur: MediaDescription | None = None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or lines[0] != "v=0":
        raise SdpError("SDP does not start with v=0")
    for line in lines:
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
            cur = _media_line(value, session_direction)
            sd.media.append(cur)
        elif kind == "a":
            _attribute(cur, value)
            if cur is None and value in _DIRECTIONS:
                session_direction = value
    return sd


def _media_line(value: str, direction: str) -> MediaDescription:
    parts = value.split()
    port = _number(parts[1].split("/")[0], 65535) if len(parts) >= 3 else None
    if port is None:
        raise SdpError(f"bad media line {value[:60]!r}")
    fmts = parts[3:]
    rtp = parts[2].upper().startswith("RTP/")
    formats = [_number(f, 127) for f in fmts] if rtp else []
    if None in formats:
        raise SdpError(f"bad payload types in media line {value[:60]!r}")
    return MediaDescription(media=parts[0], port=port, proto=parts[2], formats=formats,
                            direction=direction, format_text=" ".join(fmts))


def _attribute(cur: MediaDescription | None, value: str) -> None:
    name, _, arg = value.partition(":")
    if name in _DIRECTIONS and cur is not None:
        cur.direction = name
    elif cur is not None and name in ("rtpmap", "fmtp"):
        pt_s, _, rest = arg.partition(" ")
        pt = _number(pt_s)
        if pt is None:
            raise SdpError(f"bad a={name} line {value[:60]!r}")
        if name == "rtpmap":
            enc, _, rate_s = rest.strip().partition("/")
            rate = _number(rate_s.split("/")[0])
            if not enc or rate is None:
                raise SdpError(f"bad a=rtpmap line {value[:60]!r}")
            cur.rtpmap[pt] = (enc, rate)
        else:
            cur.fmtp[pt] = rest
    elif cur is not None and name == "crypto":
        cur.crypto.append(arg.strip())
    elif cur is not None and name == "ptime":
        ptime = _number(arg.strip().split(".")[0], MAX_PTIME)
        if ptime:
            cur.ptime = ptime


@dataclass(frozen=True)
class AudioAnswer:
    """What offer/answer agreed: the remote RTP address, codec and telephone-event type, and
    our own direction (`recvonly` or `inactive` while the remote holds the call)."""

    remote_host: str
    remote_port: int
    payload_type: int
    codec: str
    dtmf_payload_type: int | None
    ptime: int
    direction: str
    #: the remote's SDES key for SRTP (RTP/SAVP), None for plain RTP
    remote_crypto: SdesCrypto | None = None

    @property
    def sending(self) -> bool:
        """Whether we may send media in this direction."""
        return self.direction in ("sendrecv", "sendonly")


_ANSWER_DIRECTION = {"sendrecv": "sendrecv", "sendonly": "recvonly",
                     "recvonly": "sendonly", "inactive": "inactive"}
_HELD = {"sendrecv": "sendonly", "recvonly": "inactive"}


def _remote_direction(sd: SessionDescription, audio: MediaDescription) -> str:
    """The remote's direction; c=0.0.0.0 is the old way of saying it does not receive."""
    if (audio.connection or sd.connection) == HOLD_ADDRESS:
        return _HELD.get(audio.direction, audio.direction)
    return audio.direction


def answer_offer(offer: SessionDescription, codecs: tuple[str, ...] = ("PCMU", "PCMA")
                 ) -> AudioAnswer:
    """Choose the first offered format we support, in the offerer's order (RFC 3264 §6.1);
    telephone-event is taken at whatever payload type the offer gives it."""
    audio = offer.audio()
    if audio is None or audio.port == 0:
        raise SdpError("no audio stream offered")
    host = audio.connection or offer.connection
    if not host:
        raise SdpError("no connection address for the audio stream")
    try:
        ipaddress.ip_address(host)
    except ValueError:  # media is sent to literal addresses only: no DNS lookup per packet
        raise SdpError(f"connection address {host[:60]!r} is not an IP address") from None
    wanted = {c.upper() for c in codecs}
    common = [pt for pt in audio.formats if (audio.codec_name(pt) or "").upper() in wanted
              and audio.find(audio.codec_name(pt)) == pt]
    if not common:
        offered = [audio.codec_name(pt) or str(pt) for pt in audio.formats]
        raise SdpError(f"no common audio codec: offered {offered}, supported {sorted(wanted)}")
    chosen = common[0]
    crypto = None
    if audio.secure:
        crypto = choose(audio.crypto)
        if crypto is None:
            raise SdpError(f"no supported SRTP crypto suite offered: {audio.crypto or 'no a=crypto'}")
    return AudioAnswer(remote_host=host, remote_port=audio.port, payload_type=chosen,
                       codec=audio.codec_name(chosen).upper(),
                       dtmf_payload_type=audio.find("telephone-event"), ptime=audio.ptime or 20,
                       direction=_ANSWER_DIRECTION[_remote_direction(offer, audio)],
                       remote_crypto=crypto)


def read_answer(offer: SessionDescription, answer: SessionDescription) -> AudioAnswer:
    """What the remote chose from our offer (RFC 3264 §7): the first answered format we
    offered; raise SdpError when it rejected the audio stream or chose nothing we offered."""
    ours, theirs = offer.audio(), answer.audio()
    if ours is None:
        raise SdpError("our offer has no audio stream")
    if theirs is None or theirs.port == 0:
        raise SdpError("the answer rejected the audio stream")
    names = [(ours.codec_name(pt) or "").upper() for pt in ours.formats]
    offered = tuple(n for n in names if n and n != "TELEPHONE-EVENT")
    try:
        result = answer_offer(answer, offered)
    except SdpError as exc:
        raise SdpError(f"unusable answer: {exc}") from None
    if ours.find("telephone-event") is None:
        return replace(result, dtmf_payload_type=None)
    return result


def answer_reoffer(offer: SessionDescription, previous_local: bytes, codec: str
                   ) -> tuple[AudioAnswer, bytes]:
    """Answer a re-INVITE's offer within the current session: the same codec, our same
    address and port, the o= version incremented (RFC 3264 §8). Raises SdpError (488)."""
    answer = answer_offer(offer, (codec,))
    ours = parse_sdp(previous_local)
    audio = ours.audio()
    fields = ours.origin.split()
    if audio is None or len(fields) < 3 or not fields[2].isdigit():
        raise SdpError("our previous SDP has no audio stream or origin")
    if audio.secure != (answer.remote_crypto is not None):
        raise SdpError("a re-offer cannot switch between RTP and SRTP")
    return answer, build_answer(offer, answer, audio.connection or ours.connection,
                                audio.port, fields[1], int(fields[2]) + 1, choose(audio.crypto))


def _write(host: str, port: int, session_id: int | str, version: int,
           formats: list[tuple[int, str]], dtmf_payload_type: int | None, ptime: int,
           direction: str, before: tuple[str, ...] = (), after: tuple[str, ...] = (),
           crypto: SdesCrypto | None = None) -> bytes:
    pts = [pt for pt, _ in formats] + ([dtmf_payload_type] if dtmf_payload_type is not None else [])
    proto = SECURE_PROFILE if crypto is not None else "RTP/AVP"
    lines = ["v=0", f"o=sip-harness {session_id} {version} IN IP4 {host}", "s=sip-harness",
             f"c=IN IP4 {host}", "t=0 0", *before,
             f"m=audio {port} {proto} {' '.join(map(str, pts))}"]
    lines += [f"a=rtpmap:{pt} {codec}/8000" for pt, codec in formats]
    if dtmf_payload_type is not None:
        lines += [f"a=rtpmap:{dtmf_payload_type} telephone-event/8000",
                  f"a=fmtp:{dtmf_payload_type} 0-16"]
    lines += [f"a=ptime:{ptime}", f"a={direction}"]
    lines += [crypto.attribute()] if crypto is not None else []
    lines += after
    return ("\r\n".join(lines) + "\r\n").encode()


def build_sdp(host: str, port: int, session_id: int, version: int, payload_type: int,
              codec: str, dtmf_payload_type: int | None, ptime: int = 20,
              direction: str = "sendrecv") -> bytes:
    """Write an audio-only SDP body with one codec (an answer to an audio-only offer)."""
    return _write(host, port, session_id, version, [(payload_type, codec)], dtmf_payload_type,
                  ptime, direction)


def build_answer(offer: SessionDescription, answer: AudioAnswer, host: str, port: int,
                 session_id: int | str, version: int, crypto: SdesCrypto | None = None) -> bytes:
    """Our answer to `offer`: its audio stream accepted as `answer` says, every other
    stream rejected with port 0, in the offer's order (RFC 3264 §6). An SRTP offer is
    answered with `crypto` (our own key) at the tag the offer chose."""
    if (answer.remote_crypto is None) != (crypto is None):
        raise ValueError("an SRTP offer is answered with our own crypto, a plain one without")
    if crypto is not None:
        crypto = replace(crypto, tag=answer.remote_crypto.tag, suite=answer.remote_crypto.suite)
    chosen = offer.audio()
    rejected = [f"m={m.media} 0 {m.proto} {m.format_text}".rstrip() for m in offer.media]
    idx = offer.media.index(chosen)
    return _write(host, port, session_id, version, [(answer.payload_type, answer.codec)],
                  answer.dtmf_payload_type, answer.ptime, answer.direction,
                  tuple(rejected[:idx]), tuple(rejected[idx + 1:]), crypto)


def build_offer(host: str, port: int, session_id: int, version: int = 1,
                codecs: tuple[str, ...] = ("PCMU", "PCMA"),
                dtmf_payload_type: int | None = DEFAULT_DTMF_PT, ptime: int = 20,
                direction: str = "sendrecv") -> bytes:
    """Our offer: G.711 codecs at their static payload types, then telephone-event."""
    static = {name: pt for pt, (name, _) in STATIC_CODECS.items()}
    return _write(host, port, session_id, version, [(static[c.upper()], c.upper()) for c in codecs],
                  dtmf_payload_type, ptime, direction)
