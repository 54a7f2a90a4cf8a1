"""Bridged media: what one leg receives is heard, live, on another leg's stream.

A `LiveFeed` is a leg's standing source while it is bridged: the frames the other leg sends
arrive into it, and the sender takes one per tick whenever no action plays (silence when
nothing has arrived). A `BridgeTap` is the incoming tap of the other leg's session that
decodes its audio and feeds the `LiveFeed`, transcoding between G.711 laws when the legs differ.
"""
from __future__ import annotations

from collections import deque

from .g711 import DECODERS, SILENCE_BYTE
from .rtp import RtpError, RtpPacket
from .sources import FRAME_SAMPLES, encode_frames

MAX_QUEUED_FRAMES = 10  # 200 ms: beyond that the oldest audio is dropped, keeping delay low


class LiveFeed:
    """Frames fed while they are taken, one per tick."""

    def __init__(self, codec: str):
        self.codec = codec
        self._frames: deque[bytes] = deque(maxlen=MAX_QUEUED_FRAMES)
        self._silence = bytes([SILENCE_BYTE[codec]]) * FRAME_SAMPLES

    def push_pcm(self, pcm) -> None:
        self._frames.extend(encode_frames(pcm, self.codec))

    def next_frame(self) -> bytes:
        """The oldest frame not yet taken, or silence."""
        return self._frames.popleft() if self._frames else self._silence


class BridgeTap:
    """The incoming tap of a leg whose audio (payload type `payload_type`, `codec`) goes to `feed`."""

    def __init__(self, payload_type: int, codec: str, feed: LiveFeed):
        self.payload_type, self.decode, self.feed = payload_type, DECODERS[codec], feed

    def add(self, datagram: bytes, now: float) -> None:
        try:
            packet = RtpPacket.parse(datagram)
        except RtpError:
            return
        if packet.payload_type == self.payload_type and packet.payload:
            self.feed.push_pcm(self.decode(packet.payload))
