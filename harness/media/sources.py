"""Audio sources for the stub: WAV files, tones and silence, as 8 kHz 16-bit mono PCM,
and their G.711 encoding into 20 ms frames ready for the media clock to slice."""
from __future__ import annotations

import io
import wave
from functools import lru_cache
from pathlib import Path

import numpy as np

from .g711 import ENCODERS

RATE = 8000
FRAME_SAMPLES = 160  # 20 ms at 8 kHz
MAX_WAV_BYTES = 50 * 1024 * 1024  # the service's PlayAudio limit


class InvalidAudioSource(ValueError):
    """The audio cannot be played; the SMA reports ErrorType InvalidAudioSource."""


def read_wav(data: bytes, name: str = "audio") -> np.ndarray:
    """Decode PCM WAV bytes to 8 kHz mono int16, converting rate and channels."""
    if len(data) > MAX_WAV_BYTES:
        raise InvalidAudioSource(f"{name}: {len(data)} bytes exceeds the 50 MB limit")
    try:
        with wave.open(io.BytesIO(data)) as w:
            channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            raw = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as exc:
        raise InvalidAudioSource(f"{name}: not a PCM WAV file ({exc})") from None
    if width == 2:
        pcm = np.frombuffer(raw, dtype="<i2").astype(np.float64)
    elif width == 1:
        pcm = (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128) * 256
    elif width == 4:
        pcm = np.frombuffer(raw, dtype="<i4").astype(np.float64) / 65536
    else:
        raise InvalidAudioSource(f"{name}: unsupported sample width {width * 8} bits")
    if channels > 1:
        pcm = pcm[: len(pcm) // channels * channels].reshape(-1, channels).mean(axis=1)
    if rate != RATE and len(pcm):
        n_out = int(round(len(pcm) * RATE / rate))
        pcm = np.interp(np.arange(n_out) * rate / RATE, np.arange(len(pcm)), pcm)
    return np.clip(np.round(pcm), -32768, 32767).astype(np.int16)


def write_wav(path: Path, pcm: np.ndarray, rate: int = RATE) -> None:
    """Write mono (1-D) or multi-channel (2-D: samples x channels) int16 PCM as WAV."""
    pcm = np.asarray(pcm, dtype=np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1 if pcm.ndim == 1 else pcm.shape[1])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.astype("<i2").tobytes())


def tone(freq_hz: float, duration_s: float, amplitude: float = 0.3) -> np.ndarray:
    """A sine tone as 8 kHz int16 PCM."""
    t = np.arange(int(duration_s * RATE)) / RATE
    return np.round(np.sin(2 * np.pi * freq_hz * t) * amplitude * 32767).astype(np.int16)


def encode_frames(pcm: np.ndarray, codec: str) -> list[bytes]:
    """G.711-encode PCM and cut it into 20 ms payloads; the last one is padded with silence."""
    pad = (-len(pcm)) % FRAME_SAMPLES
    if pad:
        pcm = np.concatenate([pcm, np.zeros(pad, dtype=np.int16)])
    data = ENCODERS[codec](pcm)
    return [data[i:i + FRAME_SAMPLES] for i in range(0, len(data), FRAME_SAMPLES)]


@lru_cache(maxsize=256)
def _wav_frames(path: str, mtime_ns: int, codec: str) -> tuple[bytes, ...]:
    return tuple(encode_frames(read_wav(Path(path).read_bytes(), Path(path).name), codec))


def wav_frames(path: Path, codec: str) -> tuple[bytes, ...]:
    """The encoded frames of a WAV file, cached until the file changes."""
    try:
        mtime = path.stat().st_mtime_ns
    except OSError as exc:
        raise InvalidAudioSource(f"{path.name}: {exc.strerror}") from None
    return _wav_frames(str(path), mtime, codec)
