"""DTMF, sans-IO: SendDigits as RFC 4733 telephone-events (or in-band tones), and digits from
the far end as RFC 4733 events or in-band tones (Goertzel), all reported as `DigitReceived`.
SIP INFO digits are parsed by the SIP core; the stub wraps them in the same type."""
from __future__ import annotations

from collections import deque
from collections.abc import Generator
from dataclasses import dataclass

import numpy as np

from .rtp import DTMF_EVENTS, TelephoneEvent
from .sources import FRAME_SAMPLES, RATE, encode_frames

ROWS = (697.0, 770.0, 852.0, 941.0)
COLUMNS = (1209.0, 1336.0, 1477.0, 1633.0)
KEYPAD = ("123A", "456B", "789C", "*0#D")
#: SendDigits accepts these; a comma pauses for PAUSE_MS.
SEND_DIGITS_ALPHABET = DTMF_EVENTS + ","
PAUSE_MS = 500
DEFAULT_TONE_MS = 250
#: From the end of one tone to the start of the next (it includes the end retransmissions).
DEFAULT_GAP_MS = 100
END_PACKETS = 3
EVENT_VOLUME = 10  # -10 dBm0
MAX_EVENT_DURATION = 0xFFFF
TICK_MS = 1000 * FRAME_SAMPLES // RATE

SOURCE_RFC4733 = "rfc4733"
SOURCE_SIP_INFO = "sip-info"
SOURCE_INBAND = "inband"


@dataclass(frozen=True)
class DigitReceived:
    """A DTMF digit from the far end, reported when it ends, with its duration; `source` is
    SOURCE_RFC4733, SOURCE_SIP_INFO or SOURCE_INBAND."""

    digit: str
    duration_ms: int
    source: str = SOURCE_RFC4733


class InvalidDigits(ValueError):
    """The digit string or tone duration cannot be sent."""


def dtmf_tone(digit: str, samples: int, amplitude: float = 0.25) -> np.ndarray:
    """The dual tone of `digit` as 8 kHz int16 PCM, each component at `amplitude` of full scale."""
    row = next(i for i, keys in enumerate(KEYPAD) if digit in keys)
    t = np.arange(samples) / RATE
    wave = np.sin(2 * np.pi * ROWS[row] * t) + np.sin(2 * np.pi * COLUMNS[KEYPAD[row].index(digit)] * t)
    return np.round(wave * amplitude * 32767).astype(np.int16)


Step = tuple[bytes, int, bool]  # payload, RTP timestamp, marker


class DigitSender:
    """Plays a SendDigits string over the media clock, one decision per 20 ms tick.

    With `codec` None the digits go out as RFC 4733 events: the first packet of each event has
    the marker bit, every packet of an event carries the event's start timestamp and the
    duration so far, the end packet is sent END_PACKETS times, and events longer than 0xFFFF
    samples are split into segments (RFC 4733 §2.5.1.3). With a codec they go out as in-band
    tones in audio packets. Between digits, and during a comma, the tick carries audio.
    """

    def __init__(self, digits: str, tone_ms: int, token: object, payload_type: int,
                 codec: str | None = None, gap_ms: int = DEFAULT_GAP_MS):
        bad = sorted(set(digits) - set(SEND_DIGITS_ALPHABET))
        if bad or not digits:
            raise InvalidDigits(f"cannot send digits {digits!r}" + (f" ({''.join(bad)})" if bad else ""))
        if tone_ms <= 0 or gap_ms < 0:
            raise InvalidDigits(f"tone {tone_ms} ms / gap {gap_ms} ms")
        self.digits, self.token, self.payload_type = digits, token, payload_type
        self.done = False
        plan = self._events(tone_ms * RATE // 1000, gap_ms) if codec is None else \
            self._tones(tone_ms * RATE // 1000, gap_ms, codec)
        self._plan: Generator[Step | None, int, None] = plan
        next(self._plan)

    def tick(self, timestamp: int) -> tuple[int, bytes, int, bool] | None:
        """(payload type, payload, timestamp, marker) for the tick at `timestamp`, or None when
        this tick carries audio; sets `done` once every digit is out."""
        if self.done:
            return None
        try:
            step = self._plan.send(timestamp)
        except StopIteration:
            self.done = True
            return None
        return None if step is None else (self.payload_type, *step)

    def _digits_with_gaps(self, gap_ticks: int) -> Generator[str | None, None, None]:
        """The digits, with None for each audio tick of a comma pause or an inter-digit gap."""
        sent = False
        for char in self.digits:
            if char == ",":
                yield from [None] * (PAUSE_MS // TICK_MS)
                continue
            if sent:
                yield from [None] * gap_ticks
            sent = True
            yield char

    def _events(self, samples: int, gap_ms: int) -> Generator[Step | None, int, None]:
        timestamp = yield None
        for digit in self._digits_with_gaps(max(0, gap_ms // TICK_MS - (END_PACKETS - 1))):
            if digit is None:
                timestamp = yield None
                continue
            code, start, segment, elapsed, marker = DTMF_EVENTS.index(digit), timestamp, 0, 0, True
            while elapsed < samples:
                elapsed = min(elapsed + FRAME_SAMPLES, samples)
                closing = elapsed - segment > MAX_EVENT_DURATION  # this segment is full
                event = TelephoneEvent(code, not closing and elapsed == samples, EVENT_VOLUME,
                                       MAX_EVENT_DURATION if closing else elapsed - segment)
                timestamp = yield event.build(), (start + segment) & 0xFFFFFFFF, marker
                segment += MAX_EVENT_DURATION if closing else 0
                marker = False
            end = TelephoneEvent(code, True, EVENT_VOLUME, samples - segment).build()
            for _ in range(END_PACKETS - event.end):
                timestamp = yield end, (start + segment) & 0xFFFFFFFF, False

    def _tones(self, samples: int, gap_ms: int, codec: str) -> Generator[Step | None, int, None]:
        timestamp = yield None
        for digit in self._digits_with_gaps(gap_ms // TICK_MS):
            if digit is None:
                timestamp = yield None
                continue
            for frame in encode_frames(dtmf_tone(digit, samples), codec):
                timestamp = yield frame, timestamp, False


@dataclass
class _Event:
    timestamp: int
    code: int
    duration: int
    base: int  # duration of earlier segments of a long event
    last_seen: float


class EventDetector:
    """Turns the far end's RFC 4733 packets into digits, each reported once when it ends.

    Retransmitted end packets and late packets of a reported event are ignored. An event whose
    end packets were all lost is reported when the next event starts or after `timeout` s
    without packets (see `poll`); one whose first packets were lost is still reported.
    """

    def __init__(self, clock_rate: int = RATE, timeout: float = 0.3):
        self.clock_rate, self.timeout = clock_rate, timeout
        self._current: _Event | None = None
        self._finished: deque[int] = deque(maxlen=16)

    @property
    def pending(self) -> bool:
        """True while an event has started and not ended."""
        return self._current is not None

    def receive(self, timestamp: int, event: TelephoneEvent, now: float) -> list[DigitReceived]:
        """Feed the event block of one packet that arrived at `now`."""
        if event.digit is None or timestamp in self._finished:
            return []
        out = []
        current = self._current
        if current is not None and timestamp != current.timestamp:
            if (timestamp - current.timestamp) & 0x80000000:
                return []  # a late packet from before the current event
            if event.event == current.code and \
                    timestamp == (current.timestamp + MAX_EVENT_DURATION) & 0xFFFFFFFF:
                self._finished.append(current.timestamp)  # the next segment of a long event
                current.base += MAX_EVENT_DURATION
                current.timestamp, current.duration = timestamp, 0
            else:
                out.append(self._finish())
                current = None
        if current is None:
            current = self._current = _Event(timestamp, event.event, 0, 0, now)
        current.duration = max(current.duration, event.duration)
        current.last_seen = now
        if event.end:
            out.append(self._finish())
        return out

    def poll(self, now: float) -> list[DigitReceived]:
        """Report an event whose end never arrived once `timeout` has passed without packets."""
        if self._current is not None and now - self._current.last_seen > self.timeout:
            return [self._finish()]
        return []

    def _finish(self) -> DigitReceived:
        event, self._current = self._current, None
        self._finished.append(event.timestamp)
        duration_ms = (event.base + event.duration) * 1000 // self.clock_rate
        return DigitReceived(DTMF_EVENTS[event.code], duration_ms, SOURCE_RFC4733)


class ToneDetector:
    """Detects in-band DTMF in 8 kHz PCM, 20 ms blocks at a time, with the Goertzel energies
    of the eight DTMF frequencies (computed as the single-bin DFT they equal, for all eight at
    once). A digit counts when it fills at least `min_blocks` consecutive blocks and is reported
    with its duration at the first block without it."""

    MIN_RMS = 100.0  # about -50 dBFS
    MIN_SHARE = 0.2  # of the block's energy, for each of the two tones
    MIN_PAIR_SHARE = 0.75  # for both together
    MAX_TWIST = 6.3  # 8 dB between the two tones
    MAX_RIVAL = 0.25  # the runner-up of a group against its strongest frequency

    def __init__(self, min_blocks: int = 2):
        self.min_blocks = min_blocks
        n = np.arange(FRAME_SAMPLES)
        freqs = np.array(ROWS + COLUMNS)
        self._basis = np.exp(-2j * np.pi * np.outer(freqs, n) / RATE)
        self._pending = np.empty(0, dtype=np.float64)
        self._digit: str | None = None
        self._blocks = 0

    def feed(self, pcm: np.ndarray) -> list[DigitReceived]:
        """Feed consecutive PCM samples of any length."""
        samples = np.concatenate([self._pending, np.asarray(pcm, dtype=np.float64)])
        whole = len(samples) // FRAME_SAMPLES * FRAME_SAMPLES
        self._pending = samples[whole:]
        out = []
        for block in samples[:whole].reshape(-1, FRAME_SAMPLES):
            digit = self.classify(block)
            if digit == self._digit:
                self._blocks += 1
                continue
            if self._digit is not None and self._blocks >= self.min_blocks:
                out.append(DigitReceived(self._digit, self._blocks * TICK_MS, SOURCE_INBAND))
            self._digit, self._blocks = digit, 1
        return out

    def classify(self, block: np.ndarray) -> str | None:
        """The digit one 20 ms block carries, or None."""
        energy = float(block @ block)
        if energy < FRAME_SAMPLES * self.MIN_RMS ** 2:
            return None
        share = np.abs(self._basis @ block) ** 2 * (2 / (FRAME_SAMPLES * energy))
        rows, cols = share[:4], share[4:]
        r, c = int(np.argmax(rows)), int(np.argmax(cols))
        row, col = rows[r], cols[c]
        if row < self.MIN_SHARE or col < self.MIN_SHARE or row + col < self.MIN_PAIR_SHARE:
            return None
        if not 1 / self.MAX_TWIST <= row / col <= self.MAX_TWIST:
            return None
        if np.sort(rows)[-2] > self.MAX_RIVAL * row or np.sort(cols)[-2] > self.MAX_RIVAL * col:
            return None
        return KEYPAD[r][c]
