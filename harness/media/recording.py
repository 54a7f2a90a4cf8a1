"""Call recording, sans-IO: the packets of each direction are kept as they are sent or arrive
and rebuilt into PCM when the recording stops.

Each direction is put back in sequence-number order; a packet's place follows its RTP
timestamp (so lost packets and far-end silence suppression leave silence of the right length)
unless the timestamp is implausible against the arrival times, when the place follows the
sequence number and the packet length. RFC 4733 events are rendered as their DTMF tones, as
the service's recordings capture DTMF. A track starts where its packets say it started
relative to the start of the recording, and the result lasts at least as long as the recording.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .dtmf import dtmf_tone
from .g711 import DECODERS
from .rtp import RtpError, RtpPacket, TelephoneEvent
from .sources import FRAME_SAMPLES, RATE
from .statistics import signed32

INCOMING, OUTGOING, BOTH = "INCOMING", "OUTGOING", "BOTH"
TRACKS = (INCOMING, OUTGOING, BOTH)
#: How far an RTP timestamp may disagree with the arrival times before it is not trusted.
TIMESTAMP_TOLERANCE_S = 1.0


class TrackAssembler:
    """The packets of one direction of one stream, and the PCM they make."""

    def __init__(self, codec: str, payload_type: int, dtmf_payload_type: int | None):
        self.decode = DECODERS[codec]
        self.payload_type, self.dtmf_payload_type = payload_type, dtmf_payload_type
        self._packets: list[tuple[float, bytes]] = []
        self.paused = False

    def add(self, datagram: bytes, now: float) -> None:
        """Keep one RTP datagram sent or received at `now` (dropped while paused: silence)."""
        if not self.paused:
            self._packets.append((now, datagram))

    def pcm(self, origin: float) -> np.ndarray:
        """The track as int16 PCM whose sample 0 is at time `origin`."""
        pieces: list[tuple[int, np.ndarray]] = []
        for run in self._ssrc_runs():
            pieces += self._place(run, origin)
        end = max((start + len(pcm) for start, pcm in pieces), default=0)
        out = np.zeros(end, dtype=np.int16)
        for start, pcm in pieces:
            out[start:start + len(pcm)] = pcm
        return out

    def _ssrc_runs(self) -> list[list[tuple[float, int, RtpPacket]]]:
        """Valid packets split where the SSRC changes, each with its extended sequence number."""
        runs: list[list[tuple[float, int, RtpPacket]]] = []
        for now, datagram in self._packets:
            try:
                packet = RtpPacket.parse(datagram)
            except RtpError:
                continue
            if packet.payload_type not in (self.payload_type, self.dtmf_payload_type):
                continue
            if not runs or runs[-1][-1][2].ssrc != packet.ssrc:
                runs.append([(now, packet.sequence, packet)])
                continue
            _, last_ext, last = runs[-1][-1]
            step = ((packet.sequence - last.sequence + 0x8000) & 0xFFFF) - 0x8000
            runs[-1].append((now, last_ext + step, packet))
        return runs

    def _place(self, run, origin: float) -> list[tuple[int, np.ndarray]]:
        """Decoded pieces of one SSRC run at sample positions relative to `origin`."""
        by_sequence = {ext: (now, packet) for now, ext, packet in run}
        placed: list[tuple[int, float, np.ndarray]] = []  # position, arrival, pcm
        events: dict[int, tuple[int, float, TelephoneEvent]] = {}  # by event timestamp
        ref: tuple[int, int, int, int, float] | None = None  # position, ts, ext, length, arrival
        for ext in sorted(by_sequence):
            now, packet = by_sequence[ext]
            if packet.payload_type == self.payload_type:
                pos = 0 if ref is None else self._position(ref, ext, packet.timestamp, now)
                ref = (pos, packet.timestamp, ext, len(packet.payload), now)
                placed.append((pos, now, self.decode(packet.payload)))
                continue
            try:
                event = TelephoneEvent.parse(packet.payload)
            except RtpError:
                continue
            if event.digit is None:
                continue
            if ref is None:
                ref = (0, packet.timestamp, ext, FRAME_SAMPLES, now)
            pos = ref[0] + signed32(packet.timestamp - ref[1])
            known = events.get(packet.timestamp)
            if known is None or event.duration > known[2].duration:
                events[packet.timestamp] = (pos, now, event)
        for pos, now, event in events.values():
            start = now - max(event.duration - FRAME_SAMPLES, 0) / RATE
            placed.append((pos, start, dtmf_tone(event.digit, event.duration)))
        if not placed:
            return []
        offset = min(round((arrival - origin) * RATE) - pos for pos, arrival, _ in placed)
        pieces = []
        for pos, _, pcm in placed:
            start = offset + pos
            if start + len(pcm) > 0:
                pieces.append((max(start, 0), pcm[max(-start, 0):]))
        return pieces

    @staticmethod
    def _position(ref, ext: int, timestamp: int, now: float) -> int:
        pos, ref_ts, ref_ext, ref_len, ref_arrival = ref
        by_timestamp = signed32(timestamp - ref_ts)
        if by_timestamp > 0 and abs(by_timestamp / RATE - (now - ref_arrival)) <= TIMESTAMP_TOLERANCE_S:
            return pos + by_timestamp
        return pos + (ext - ref_ext) * ref_len


class Recording:
    """A recording of one leg from `start`: INCOMING or OUTGOING as mono PCM, or BOTH as two
    channels (incoming left, outgoing right). `path` is where the engine writes the WAV."""

    def __init__(self, path: Path, track: str, start: float, codec: str, payload_type: int,
                 incoming_dtmf: int | None, outgoing_dtmf: int | None):
        self.track = track.upper()
        if self.track not in TRACKS:
            raise ValueError(f"track {track!r} is not one of {', '.join(TRACKS)}")
        self.path, self.start = Path(path), start
        self.stop_time: float | None = None
        wants = {INCOMING: (INCOMING, BOTH), OUTGOING: (OUTGOING, BOTH)}
        self.incoming = TrackAssembler(codec, payload_type, incoming_dtmf) \
            if self.track in wants[INCOMING] else None
        self.outgoing = TrackAssembler(codec, payload_type, outgoing_dtmf) \
            if self.track in wants[OUTGOING] else None

    def stop(self, now: float) -> None:
        self.stop_time = now

    def pause(self, paused: bool = True) -> None:
        """Pause (or resume) both tracks: what passes meanwhile is recorded as silence."""
        for track in (self.incoming, self.outgoing):
            if track is not None:
                track.paused = paused

    def pcm(self) -> np.ndarray:
        """The recorded audio: 1-D for one track, samples x 2 for BOTH."""
        minimum = round(((self.stop_time or self.start) - self.start) * RATE)
        tracks = [t.pcm(self.start) for t in (self.incoming, self.outgoing) if t is not None]
        length = max([minimum] + [len(t) for t in tracks])
        padded = [np.pad(t, (0, length - len(t))) for t in tracks]
        return padded[0] if len(padded) == 1 else np.stack(padded, axis=1)
