"""Audio sources as 8 kHz 16-bit mono PCM (WAV files, tones, silence) and their G.711 encoding
into 20 ms frames, so that the media clock only slices bytes.

WAV files are read with a small RIFF parser rather than `wave`: Python 3.11's `wave` rejects
WAVE_FORMAT_EXTENSIBLE and 24-bit files, and trusts the data size that streaming writers such
as `espeak-ng --stdout` leave at 0x7FFFFFFF.
"""
from __future__ import annotations

import os
import struct
from functools import lru_cache
from pathlib import Path

import numpy as np

from .g711 import ENCODERS
from .wavfile import wav_header

RATE = 8000
FRAME_SAMPLES = 160  # 20 ms at 8 kHz
MAX_WAV_BYTES = 50 * 1024 * 1024  # the service's PlayAudio limit

_FORMAT_PCM = 0x0001
_FORMAT_EXTENSIBLE = 0xFFFE
_FORMAT_NAMES = {0x0003: "IEEE float", 0x0006: "A-law", 0x0007: "µ-law", 0x0011: "IMA ADPCM",
                 0x0055: "MP3"}
#: The GUID tail shared by every KSDATAFORMAT_SUBTYPE; its first two bytes are the format tag.
_GUID_TAIL = bytes.fromhex("000000001000800000aa00389b71")
_ANTIALIAS_TAPS = 63


class InvalidAudioSource(ValueError):
    """The audio cannot be played; the SMA reports ErrorType InvalidAudioSource."""


def read_wav(data: bytes, name: str = "audio") -> np.ndarray:
    """Decode a PCM WAV file (8/16/24/32-bit, any rate and channel count) to 8 kHz mono int16."""
    frames, rate = _pcm_frames(data, name)
    return _int16(_resample(frames.mean(axis=1), rate))


def read_wav_channels(data: bytes, name: str = "audio") -> list[np.ndarray]:
    """Each channel of a PCM WAV file as 8 kHz int16 (a call recording: incoming, outgoing)."""
    frames, rate = _pcm_frames(data, name)
    return [_int16(_resample(frames[:, c], rate)) for c in range(frames.shape[1])]


def _pcm_frames(data: bytes, name: str) -> tuple[np.ndarray, int]:
    """The samples of a PCM WAV file as (frames, channels), and its rate."""
    if len(data) > MAX_WAV_BYTES:
        raise InvalidAudioSource(f"{name}: {len(data)} bytes exceeds the 50 MB limit")
    fmt, raw = _riff_chunks(data, name)
    if len(fmt) < 16:
        raise InvalidAudioSource(f"{name}: fmt chunk too short ({len(fmt)} bytes)")
    tag, channels, rate, _, block, bits = struct.unpack_from("<HHIIHH", fmt)
    if tag == _FORMAT_EXTENSIBLE and len(fmt) >= 40 and fmt[26:40] == _GUID_TAIL:
        tag = struct.unpack_from("<H", fmt, 24)[0]
    if tag != _FORMAT_PCM:
        kind = _FORMAT_NAMES.get(tag, f"format 0x{tag:04x}")
        raise InvalidAudioSource(f"{name}: {kind} WAV is not linear PCM")
    width = bits // 8 if bits % 8 == 0 else 0
    if width not in (1, 2, 3, 4) or channels < 1 or rate < 1000 or block != width * channels:
        raise InvalidAudioSource(f"{name}: unsupported PCM layout ({bits} bits, {channels} "
                                 f"channels, {rate} Hz, block {block})")
    raw = raw[: len(raw) // block * block]
    return _samples(raw, width).reshape(-1, channels), rate


def _int16(pcm: np.ndarray) -> np.ndarray:
    return np.clip(np.round(pcm), -32768, 32767).astype(np.int16)


def _riff_chunks(data: bytes, name: str) -> tuple[bytes, bytes]:
    """The fmt and data chunk bodies; a data chunk longer than the file is cut to the file."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise InvalidAudioSource(f"{name}: not a RIFF/WAVE file")
    fmt = None
    pos = 12
    while pos + 8 <= len(data):
        chunk_id, size = struct.unpack_from("<4sI", data, pos)
        body = data[pos + 8: pos + 8 + size]
        if chunk_id == b"fmt ":
            fmt = body
        elif chunk_id == b"data":
            if fmt is None:
                raise InvalidAudioSource(f"{name}: data chunk before fmt chunk")
            return fmt, body
        pos += 8 + size + (size & 1)
    raise InvalidAudioSource(f"{name}: no {'data' if fmt is not None else 'fmt'} chunk")


def _samples(raw: bytes, width: int) -> np.ndarray:
    """Little-endian PCM of `width` bytes per sample as float64 on the 16-bit scale."""
    if width == 1:
        return (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128) * 256
    if width == 2:
        return np.frombuffer(raw, dtype="<i2").astype(np.float64)
    if width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        value = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        return (value - ((value & 0x800000) << 1)).astype(np.float64) / 256
    return np.frombuffer(raw, dtype="<i4").astype(np.float64) / 65536


def _resample(pcm: np.ndarray, rate: int) -> np.ndarray:
    """Resample to 8 kHz: a windowed-sinc low-pass below 4 kHz first when downsampling, then
    linear interpolation."""
    if rate == RATE or not len(pcm):
        return pcm
    if rate > RATE:
        n = np.arange(_ANTIALIAS_TAPS) - _ANTIALIAS_TAPS // 2
        cutoff = 0.45 * RATE / rate  # in cycles per input sample
        taps = 2 * cutoff * np.sinc(2 * cutoff * n) * np.hamming(_ANTIALIAS_TAPS)
        pcm = np.convolve(pcm, taps / taps.sum(), mode="same")
    n_out = int(round(len(pcm) * RATE / rate))
    return np.interp(np.arange(n_out) * rate / RATE, np.arange(len(pcm)), pcm)


def write_wav(path: Path, pcm: np.ndarray, rate: int = RATE) -> None:
    """Write mono (1-D) or multi-channel (2-D: samples x channels) int16 PCM as WAV. The
    file appears whole or not at all (written beside it, then renamed)."""
    pcm = np.asarray(pcm, dtype=np.int16)
    channels = 1 if pcm.ndim == 1 else pcm.shape[1]
    body = pcm.astype("<i2").tobytes()
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_bytes(wav_header(channels, len(body), rate) + body)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def tone(freq_hz: float, duration_s: float, amplitude: float = 0.3) -> np.ndarray:
    """A sine tone as 8 kHz int16 PCM."""
    t = np.arange(int(duration_s * RATE)) / RATE
    return np.round(np.sin(2 * np.pi * freq_hz * t) * amplitude * 32767).astype(np.int16)


def silence(duration_s: float) -> np.ndarray:
    """Digital silence as 8 kHz int16 PCM."""
    return np.zeros(int(round(duration_s * RATE)), dtype=np.int16)


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
