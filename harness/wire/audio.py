"""What a captured RTP stream carries: prompts, tones, silence, DTMF events.

Each G.711 packet is decoded and labelled on its own:
- "prompt": it carries a known prompt (by name) from a given sample offset. Fast path: the
  packet's bytes equal a frame of the prompt encoded the way the stub sends it (G.711 from
  sample 0, one frame per packet, repeats restarting at sample 0). Frames that several prompts
  or offsets share (digital silence, a steady tone) are resolved by following the track of
  consecutive frames to one that is unambiguous. Fallback for audio not aligned to frames or
  not bit-exact: normalised cross-correlation of the decoded audio with the prompts.
- "tone" with its frequency (a single spectral peak holding most of the energy),
- "silence" (level below a threshold), or "other" (speech, noise, dual tones...).
Telephone-event packets are left out of the audio and decoded to DTMF events instead.

`segments` merges consecutive packets with the same label. `content_segments` is what a
person would say the stream carries: runs shorter than a real tone (`MIN_SEGMENT_MS`) are
merged into their neighbour, so a vowel that happens to look like a pure tone does not break
a sentence apart, and sound with pauses shorter than `PAUSE_MS` is one segment: "speech" when
its level moves like syllables do, else "other". `stream_pcm` is a stream's audio as one
signal, each packet at its RTP timestamp (G.711, and G.722 with the G722 package).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import G722  # sippy's libg722 binding: the ITU-T reference decoder

from harness.media.g711 import DECODERS, ENCODERS
from harness.media.sources import read_wav
from harness.media.rtp import RtpError, TelephoneEvent
from harness.wire.rtp_streams import RtpFrame, RtpStream

SAMPLE_RATE = 8000
#: Below this level (dB relative to full scale) a packet is silence.
SILENCE_DBFS = -50.0
#: Share of a packet's energy within ±100 Hz of the spectral peak for it to be a tone.
TONE_PURITY = 0.9
#: Minimum normalised correlation for the correlation fallback to recognise a prompt.
CORRELATION_THRESHOLD = 0.9
#: runs shorter than this are not a tone of their own: call progress tones last 250 ms and
#: more, and a DTMF digit is two frequencies (not a tone here)
MIN_SEGMENT_MS = 100.0
#: a spectral peak below this is not a tone (hum, DC)
MIN_TONE_HZ = 50.0
#: silences shorter than this between two stretches of sound are part of them
PAUSE_MS = 500.0
#: per-packet level spread (dB, standard deviation) above which sound is taken for speech
SPEECH_LEVEL_SPREAD_DB = 5.0
_FFT_SIZE = 8192
_MAX_GAP_PACKETS = 50
#: packets of audio correlated at once, and packets to wait after a search found nothing
_SEARCH_PACKETS = 4
_SEARCH_PAUSE_PACKETS = 25


@dataclass(frozen=True, slots=True)
class PacketAudio:
    """The label of one audio packet. `offset` is the prompt sample the packet starts at."""

    number: int
    ts_ns: int
    sequence: int
    kind: str
    level_dbfs: float
    frequency_hz: float | None = None
    prompt: str | None = None
    offset: int | None = None
    #: how the prompt was recognised: "exact" or "correlation"
    match: str | None = None

    @property
    def time(self) -> float:
        return self.ts_ns / 1e9

    @property
    def label(self) -> str:
        """'prompt:NAME', 'tone:440Hz', 'silence' or 'other'."""
        if self.kind == "prompt":
            return f"prompt:{self.prompt}"
        if self.kind == "tone":
            return f"tone:{round(self.frequency_hz)}Hz"
        return self.kind


@dataclass(frozen=True, eq=False)
class PacketLabels(Sequence[PacketAudio]):
    """The labels of a stream's packets as columns; indexing and iterating build PacketAudio."""

    number: list[int]
    ts_ns: list[int]
    sequence: list[int]
    kind: list[str]
    level_dbfs: list[float]
    frequency_hz: list[float | None]
    prompt: list[str | None]
    offset: list[int | None]
    match: list[str | None]

    def __len__(self) -> int:
        return len(self.number)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return PacketAudio(*(getattr(self, name)[index] for name in _LABEL_COLUMNS))

    def __iter__(self):
        return map(PacketAudio, *(getattr(self, name) for name in _LABEL_COLUMNS))

    @classmethod
    def of(cls, labels: Sequence[PacketAudio]) -> PacketLabels:
        if isinstance(labels, PacketLabels):
            return labels
        return cls(*([getattr(p, name) for p in labels] for name in _LABEL_COLUMNS))


_LABEL_COLUMNS = ("number", "ts_ns", "sequence", "kind", "level_dbfs", "frequency_hz", "prompt", "offset",
                  "match")


@dataclass(frozen=True, slots=True)
class AudioSegment:
    """A run of consecutive packets with the same label."""

    kind: str
    label: str
    start_ts_ns: int
    end_ts_ns: int
    packets: int
    prompt: str | None = None
    frequency_hz: float | None = None
    first_offset: int | None = None
    last_offset: int | None = None

    @property
    def duration_ms(self) -> float:
        return (self.end_ts_ns - self.start_ts_ns) / 1e6


@dataclass(frozen=True, slots=True)
class DtmfEvent:
    """One RFC 4733 event: the digit (None for non-DTMF events), when it started, how long."""

    digit: str | None
    event: int
    start_ts_ns: int
    duration_ms: float
    ended: bool
    volume: int
    packets: int


def level_dbfs(samples: np.ndarray) -> float:
    """RMS level of 16-bit samples in dB relative to full scale (-120 for digital silence)."""
    rms = float(np.sqrt(np.mean(np.square(samples.astype(np.float64))))) if len(samples) else 0.0
    return 20 * np.log10(rms / 32768) if rms > 0 else -120.0


def tone_frequency(samples: np.ndarray, rate: int = SAMPLE_RATE) -> float | None:
    """The frequency of a pure tone in `samples`, or None when it is not one tone."""
    x = samples.astype(np.float64)
    x = (x - x.mean()) * np.hanning(len(x))
    power = np.abs(np.fft.rfft(x, _FFT_SIZE)) ** 2
    total = power.sum()
    if total <= 0:
        return None
    peak = int(np.argmax(power))
    bin_hz = rate / _FFT_SIZE
    lobe = int(round(2 * rate / len(x) / bin_hz))  # Hann main lobe: ±2 DFT bins
    if power[max(peak - lobe, 0):peak + lobe + 1].sum() / total < TONE_PURITY:
        return None
    if 0 < peak < len(power) - 1:  # parabolic interpolation on the log spectrum
        a, b, c = np.log(power[peak - 1:peak + 2] + 1e-12)
        peak += 0.5 * (a - c) / (a - 2 * b + c)
    return float(peak * bin_hz)


def decode_frame(stream: RtpStream, frame: RtpFrame) -> np.ndarray | None:
    """The PCM samples of a G.711 packet, or None for events and other codecs."""
    name = (stream.encoding_name(frame.payload_type) or "").upper()
    decoder = DECODERS.get(name)
    return decoder(frame.payload) if decoder else None


def audio_frames(stream: RtpStream) -> list[tuple[RtpFrame, np.ndarray]]:
    """The stream's G.711 packets with their decoded samples, in capture order."""
    frames, decoded, starts = decoded_g711(stream)
    return [(frame, decoded[start:start + size]) for frame, start, size
            in zip(frames, starts.tolist(), frames.length.tolist())]


def decoded_g711(stream: RtpStream):
    """(the stream's G.711 packets, all their samples decoded in one array, where each
    packet's samples start in it), decoded at once rather than packet by packet."""
    names = {pt: (stream.encoding_name(pt) or "").upper() for pt in stream.payload_types}
    g711 = [pt for pt, name in names.items() if name in DECODERS]
    frames = stream.packets.select(np.isin(stream.packets.payload_type, g711))
    lengths = frames.length
    ends = np.cumsum(lengths)
    starts = ends - lengths
    if not len(frames):
        return frames, np.zeros(0, np.int16), starts
    buf = np.frombuffer(frames.data, np.uint8)
    flat = buf[np.repeat(frames.offset - starts, lengths) + np.arange(int(ends[-1]))]
    codecs = {names[pt] for pt in np.unique(frames.payload_type).tolist()}
    decoded = DECODERS[codecs.pop()](flat.tobytes())
    for other in codecs:  # a stream that changes law midway
        mask = np.repeat(np.array([names[pt] == other for pt in frames.payload_type.tolist()]), lengths)
        decoded = np.where(mask, DECODERS[other](flat.tobytes()), decoded)
    return frames, decoded, starts


def dtmf_events(stream: RtpStream) -> list[DtmfEvent]:
    """The RFC 4733 events of a stream, one per event (packets sharing an RTP timestamp)."""
    events: dict[tuple[int, int], list[tuple[RtpFrame, TelephoneEvent]]] = {}
    carrying = np.isin(stream.packets.payload_type, list(stream.event_payload_types))
    for frame in stream.packets.select(carrying):
        try:
            ev = TelephoneEvent.parse(frame.payload)
        except RtpError:
            continue
        events.setdefault((frame.timestamp, ev.event), []).append((frame, ev))
    out = []
    for (_ts, code), items in events.items():
        rate = stream.encodings[items[0][0].payload_type][1] or SAMPLE_RATE
        first = items[0][1]
        out.append(DtmfEvent(digit=first.digit, event=code, start_ts_ns=items[0][0].ts_ns,
                             duration_ms=max(ev.duration for _, ev in items) * 1000 / rate,
                             ended=any(ev.end for _, ev in items), volume=first.volume,
                             packets=len(items)))
    return sorted(out, key=lambda e: e.start_ts_ns)


class PromptMatcher:
    """Recognises known prompts ({name: int16 samples at 8 kHz}) in decoded packets."""

    def __init__(self, prompts: Mapping[str, np.ndarray], codec: str = "PCMU"):
        self.prompts = {name: np.asarray(pcm, dtype=np.int16) for name, pcm in prompts.items()}
        self.codec = codec.upper()
        self._encoded = {name: ENCODERS[self.codec](pcm) for name, pcm in self.prompts.items()}
        self._index: dict[int, tuple[dict[bytes, list[tuple[str, int]]], dict[str, tuple[int, bytes]]]] = {}
        self._float = {name: pcm.astype(np.float64) for name, pcm in self.prompts.items()}
        self._energy = {name: np.concatenate(([0.0], np.cumsum(ref * ref)))
                        for name, ref in self._float.items()}
        self._spectra: dict[tuple[str, int], np.ndarray] = {}

    def candidates(self, payload: bytes) -> set[tuple[str, int]]:
        """Every (prompt, offset) whose encoded frame equals `payload` (a short last frame
        matches the start of the payload)."""
        full, tails = self._frames(len(payload))
        found = set(full.get(payload, ()))
        for name, (offset, tail) in tails.items():
            if payload.startswith(tail):
                found.add((name, offset))
        return found

    def _frames(self, size: int):
        if size not in self._index:
            full: dict[bytes, list[tuple[str, int]]] = {}
            tails: dict[str, tuple[int, bytes]] = {}
            for name, enc in self._encoded.items():
                for off in range(0, len(enc), size):
                    chunk = enc[off:off + size]
                    if len(chunk) == size:
                        full.setdefault(chunk, []).append((name, off))
                    elif chunk:
                        tails[name] = (off, chunk)
            self._index[size] = (full, tails)
        return self._index[size]

    def advance(self, name: str, offset: int, size: int, steps: int) -> int:
        """The offset `steps` packets of `size` samples later, restarting at 0 after the end."""
        length = len(self.prompts[name])
        for _ in range(steps):
            offset = offset + size if offset + size < length else 0
        return offset

    def similarity(self, name: str, offset: int, samples: np.ndarray) -> float:
        """Normalised correlation of `samples` with the prompt from `offset` (0 if out of range)."""
        if offset < 0 or offset + len(samples) > len(self._float[name]):
            return 0.0
        ref = self._float[name][offset:offset + len(samples)]
        x = samples.astype(np.float64)
        denom = np.sqrt(np.dot(x, x) * np.dot(ref, ref))
        return float(np.dot(x, ref) / denom) if denom > 0 else 0.0

    def search(self, samples: np.ndarray) -> tuple[str, int, float] | None:
        """The best (prompt, offset, score) for `samples` anywhere in any prompt."""
        x = samples.astype(np.float64)
        n = len(x)
        norm_x = np.sqrt(np.dot(x, x))
        best = None
        if norm_x == 0:
            return None
        for name, ref in self._float.items():
            if len(ref) < n:
                continue
            size = 1 << int(np.ceil(np.log2(len(ref) + n)))
            if (name, size) not in self._spectra:
                self._spectra[(name, size)] = np.fft.rfft(ref, size)
            corr = np.fft.irfft(np.conj(np.fft.rfft(x, size)) * self._spectra[(name, size)], size)
            corr = corr[:len(ref) - n + 1]
            energy = self._energy[name]
            window = np.sqrt(np.maximum(energy[n:] - energy[:-n], 1e-9))
            score = corr / (norm_x * window)
            k = int(np.argmax(score))
            if best is None or score[k] > best[2]:
                best = (name, k, float(score[k]))
        return best


def label_packets(stream: RtpStream, prompts: Mapping[str, np.ndarray] | None = None,
                  matcher: PromptMatcher | None = None, decoded=None) -> PacketLabels:
    """Label every audio packet of a stream (see the module docstring).

    Pass `prompts`, or a `matcher` built once to reuse for several streams. Levels are
    computed for all packets at once; packets with the same payload (digital silence, a
    steady tone, a repeated prompt) are searched for a tone once. `decoded` is the stream's
    `decoded_g711`, when the caller has it already.
    """
    frames, decoded, starts = decoded or decoded_g711(stream)
    lengths = frames.length
    if not len(frames):
        return PacketLabels.of([])
    power = np.add.reduceat(decoded.astype(np.float64) ** 2, starts) / np.maximum(lengths, 1)
    rms = np.sqrt(np.where(lengths > 0, power, 0.0))
    levels = np.where(rms > 0, 20 * np.log10(np.maximum(rms, 1e-12) / 32768), -120.0).tolist()
    if matcher is None and prompts:
        codec = stream.encoding_name(int(frames.payload_type[0])) or "PCMU"
        matcher = PromptMatcher(prompts, codec.upper())
    prompt_labels = _match_prompts(audio_frames(stream), levels, matcher) if matcher else None
    loud = np.asarray(levels) >= SILENCE_DBFS
    tones = [None] * len(frames)
    tone_of: dict[tuple[int, bytes], float | None] = {}
    data = frames.data
    for i, pt, start, size, offset in zip(np.flatnonzero(loud).tolist(), frames.payload_type[loud].tolist(),
                                          starts[loud].tolist(), lengths[loud].tolist(),
                                          frames.offset[loud].tolist()):
        key = (pt, data[offset:offset + size])
        if key not in tone_of:
            found = tone_frequency(decoded[start:start + size])
            tone_of[key] = found if found is not None and found >= MIN_TONE_HZ else None
        tones[i] = tone_of[key]
    matches = prompt_labels or [None] * len(frames)
    kinds = ["prompt" if m is not None else "silence" if not on else "tone" if f is not None else "other"
             for m, on, f in zip(matches, loud.tolist(), tones)]
    return PacketLabels(frames.number.tolist(), frames.ts_ns.tolist(), frames.sequence.tolist(), kinds,
                        levels, [None if m is not None else f for m, f in zip(matches, tones)],
                        [m and m[0] for m in matches], [m and m[1] for m in matches],
                        [m and m[2] for m in matches])


def _match_prompts(frames: Sequence[tuple[RtpFrame, np.ndarray]], levels: Sequence[float],
                   matcher: PromptMatcher) -> list[tuple[str, int, str] | None]:
    """(prompt, offset, how) per packet, following tracks of consecutive prompt frames.

    A track starts at an anchor: a frame with a single candidate, or audible with candidates
    from one prompt only. It continues while each packet holds the frame expected after the
    previous one (counting lost packets by sequence number). Frames that are ambiguous
    (silence) are kept in a track only if it reaches an anchor again, or ends without having
    restarted the prompt since its last anchor; a track is then extended backwards over the
    ambiguous frames that lead to its first anchor (a prompt that starts with silence).
    """
    cands = [matcher.candidates(f.payload) for f, _ in frames]
    labels: list[tuple[str, int, str] | None] = [None] * len(frames)

    def gap(i: int) -> int:
        return (frames[i][0].sequence - frames[i - 1][0].sequence) & 0xFFFF if i else 0

    def is_anchor(j: int) -> bool:
        return len(cands[j]) == 1 or (len({name for name, _ in cands[j]}) == 1
                                      and levels[j] >= SILENCE_DBFS)

    last_anchor, restarted, skip_search_until = -1, False, -1
    for i, (frame, pcm) in enumerate(frames):
        prev, size = labels[i - 1] if i else None, len(frame.payload)
        if prev is not None and 0 < gap(i) <= _MAX_GAP_PACKETS:
            expected = matcher.advance(prev[0], prev[1], size, gap(i))
            label = None
            if (prev[0], expected) in cands[i]:
                label = (prev[0], expected, "exact")
            elif prev[2] == "correlation" and not cands[i] and \
                    matcher.similarity(prev[0], expected, pcm) >= CORRELATION_THRESHOLD:
                label = (prev[0], expected, "correlation")
            if label is not None:
                labels[i] = label
                restarted |= expected < prev[1]
                if label[2] == "correlation" or is_anchor(i):
                    last_anchor, restarted = i, False
                continue
        if restarted:  # the track broke: drop its unconfirmed frames after a restart
            labels[last_anchor + 1:i] = [None] * (i - last_anchor - 1)
            restarted = False
        if is_anchor(i):
            labels[i] = (*min(cands[i]), "exact")
        elif not cands[i] and levels[i] >= SILENCE_DBFS and i >= skip_search_until:
            found = matcher.search(_contiguous_audio(frames, i))
            if found is not None and found[2] >= CORRELATION_THRESHOLD:
                labels[i] = (found[0], found[1], "correlation")
            else:
                skip_search_until = i + _SEARCH_PAUSE_PACKETS
        if labels[i] is not None:
            last_anchor, restarted = i, False
    if restarted:
        labels[last_anchor + 1:] = [None] * (len(frames) - last_anchor - 1)
    _extend_backwards(frames, cands, labels, matcher)
    return labels


def _extend_backwards(frames, cands, labels, matcher: PromptMatcher) -> None:
    """Label the packets before each track's first one that hold the preceding frames."""
    for i in range(1, len(frames)):
        if labels[i] is None or labels[i - 1] is not None:
            continue
        name, offset, how = labels[i]
        for j in range(i - 1, -1, -1):
            steps = (frames[j + 1][0].sequence - frames[j][0].sequence) & 0xFFFF
            offset -= len(frames[j][0].payload) * steps
            if labels[j] is not None or offset < 0 or not 0 < steps <= _MAX_GAP_PACKETS:
                break
            if how == "exact" and (name, offset) not in cands[j]:
                break
            if how == "correlation" and \
                    matcher.similarity(name, offset, frames[j][1]) < CORRELATION_THRESHOLD:
                break
            labels[j] = (name, offset, how)


def _contiguous_audio(frames, i: int) -> np.ndarray:
    """Samples of packet i and up to the next few packets that follow it without a gap."""
    parts = [frames[i][1]]
    for j in range(i + 1, min(i + _SEARCH_PACKETS, len(frames))):
        if (frames[j][0].sequence - frames[j - 1][0].sequence) & 0xFFFF != 1:
            break
        parts.append(frames[j][1])
    return np.concatenate(parts)


def segments(labels: Sequence[PacketAudio]) -> list[AudioSegment]:
    """Merge consecutive packets with the same label (tones within 2 % of a run's first)."""
    cols = PacketLabels.of(labels)
    kind, freq, prompt, ts, offset = cols.kind, cols.frequency_hz, cols.prompt, cols.ts_ns, cols.offset
    out: list[AudioSegment] = []
    start = 0
    for i in range(1, len(cols) + 1):
        if i < len(cols) and kind[i] == kind[start] and (
                (kind[i] == "prompt" and prompt[i] == prompt[start])
                or (kind[i] == "tone" and abs(freq[i] - freq[start]) <= 0.02 * freq[start])
                or kind[i] not in ("prompt", "tone")):
            continue
        run_freq = float(np.median(freq[start:i])) if kind[start] == "tone" else None
        label = (f"tone:{round(run_freq)}Hz" if run_freq is not None
                 else f"prompt:{prompt[start]}" if kind[start] == "prompt" else kind[start])
        out.append(AudioSegment(kind[start], label, ts[start], ts[i - 1], i - start, prompt[start],
                                run_freq, offset[start], offset[i - 1]))
        start = i
    return out


def content_segments(labels: Sequence[PacketAudio]) -> list[AudioSegment]:
    """What the stream carries, as a person would name it (see the module docstring)."""
    segs = segments(labels)
    while len(segs) > 1:  # fold the shortest too-short run into its longer neighbour
        short = [i for i, seg in enumerate(segs)
                 if seg.kind != "prompt" and seg.duration_ms + 20 < MIN_SEGMENT_MS]
        if not short:
            break
        i = short[0]
        into = max((j for j in (i - 1, i + 1) if 0 <= j < len(segs)), key=lambda j: segs[j].packets)
        segs = _merge(segs, min(i, into), max(i, into), segs[into])
    out: list[AudioSegment] = []
    for i, seg in enumerate(segs):
        pause = (seg.kind == "silence" and seg.duration_ms < PAUSE_MS and bool(out)
                 and out[-1].kind == "other" and i + 1 < len(segs) and segs[i + 1].kind == "other")
        if (seg.kind == "other" or pause) and out and out[-1].kind == "other":
            out[-1] = _merge([out[-1], seg], 0, 1, out[-1])[0]
        else:
            out.append(seg)
    cols = PacketLabels.of(labels)
    times, levels = np.array(cols.ts_ns, np.int64), np.array(cols.level_dbfs)
    return [_speech_or_other(seg, times, levels) if seg.kind == "other" else seg for seg in out]


def _merge(segs: list[AudioSegment], first: int, last: int, like: AudioSegment) -> list[AudioSegment]:
    """segs[first..last] as one segment labelled like `like`."""
    same = [s for s in segs[first:last + 1] if s.label == like.label]
    merged = AudioSegment(like.kind, like.label, segs[first].start_ts_ns, segs[last].end_ts_ns,
                          sum(s.packets for s in segs[first:last + 1]), like.prompt,
                          like.frequency_hz, same[0].first_offset, same[-1].last_offset)
    return segs[:first] + [merged] + segs[last + 1:]


def _speech_or_other(seg: AudioSegment, times: np.ndarray, levels: np.ndarray) -> AudioSegment:
    """Speech when the audible packets' levels spread like syllables, else other sound."""
    inside = levels[np.searchsorted(times, seg.start_ts_ns):np.searchsorted(times, seg.end_ts_ns, "right")]
    audible = inside[inside >= SILENCE_DBFS]
    kind = "speech" if len(audible) >= 5 and float(np.std(audible)) >= SPEECH_LEVEL_SPREAD_DB else "other"
    return AudioSegment(kind, kind, seg.start_ts_ns, seg.end_ts_ns, seg.packets)


def stream_pcm(stream: RtpStream, decoded=None) -> tuple[np.ndarray, int, int]:
    """(samples, sample rate, capture time in ns of sample 0) of the stream's audio: G.711 at
    8 kHz or G.722 at 16 kHz, each packet placed by its RTP timestamp (lost packets and
    pauses are silence), the whole anchored on the least delayed packet, so that arrival
    jitter does not tear the audio apart. Empty for other codecs. `decoded` is the stream's
    `decoded_g711`, when the caller has it already."""
    names = {pt: (stream.encoding_name(pt) or "").upper() for pt in stream.payload_types}
    codec = next((n for n in names.values() if n in DECODERS or n == "G722"), None)
    if codec is None:
        return np.zeros(0, np.int16), SAMPLE_RATE, stream.start_ts_ns
    kinds = ("G722",) if codec == "G722" else tuple(DECODERS)
    frames = stream.packets.select(np.isin(stream.packets.payload_type,
                                           [pt for pt, n in names.items() if n in kinds]))
    rate = 16000 if codec == "G722" else SAMPLE_RATE
    per_tick = rate // SAMPLE_RATE  # G.722's RTP clock runs at 8 kHz (RFC 3551)
    ticks = (frames.timestamp - int(frames.timestamp[0]) + 0x80000000) % 0x100000000 - 0x80000000
    at = (ticks - ticks.min()) * per_tick
    decoded, starts, sizes = _decode_all(codec, stream, frames, decoded)
    total = min(int((at + sizes).max()), 3600 * rate)  # a timestamp jump: keep short of an hour
    pcm = np.zeros(total, np.int16)
    where = np.repeat(at - starts, sizes) + np.arange(len(decoded))
    inside = where < total
    pcm[where[inside]] = decoded[inside]  # in capture order: a duplicate overwrites
    origin = int(np.min(frames.ts_ns - (at * 1e9 / rate).astype(np.int64)))
    return pcm, rate, origin


def _decode_all(codec: str, stream: RtpStream, frames, g711=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(all samples, where each packet's start, how many each has)."""
    if codec != "G722":
        _, decoded, starts = g711 or decoded_g711(stream)
        return decoded, starts, frames.length
    decoder = G722.G722(16000, 64000)  # one decoder across the packets: ADPCM state runs on
    parts = [np.asarray(decoder.decode(frames.payload(i)), np.int16) for i in range(len(frames))]
    sizes = np.array([len(part) for part in parts], np.int64)
    return np.concatenate(parts) if parts else np.zeros(0, np.int16), np.cumsum(sizes) - sizes, sizes


def prompts_in(found: Sequence[AudioSegment]) -> list[str]:
    """The prompts (by name) of these segments, in order; a prompt that plays on back to back
    (repeated, or split by a gap) counts once."""
    played = [seg.prompt for seg in found if seg.kind == "prompt"]
    return [p for i, p in enumerate(played) if i == 0 or played[i - 1] != p]


def prompts_played(stream: RtpStream, prompts: Mapping[str, np.ndarray]) -> list[str]:
    """The prompts a stream carried, in order (see `prompts_in`)."""
    return prompts_in(segments(label_packets(stream, prompts)))


def load_prompts(bucket_dir: Path) -> dict[str, np.ndarray]:
    """Every WAV under a bucket folder, by file name, as 8 kHz int16 PCM: the prompts to
    recognise in a stream."""
    return {p.name: read_wav(p.read_bytes(), p.name) for p in sorted(Path(bucket_dir).rglob("*.wav"))}
