"""Spectrograms of decoded audio: short-time power in dBFS, and the PNG picture of one."""
from __future__ import annotations

import io

import numpy as np
from matplotlib import colormaps
from PIL import Image

NFFT = 256
FLOOR_DB = -90.0
#: picture height in pixels (frequency bins are resampled to it) and its widest width
HEIGHT = 128
MAX_COLUMNS = 4000


def spectrogram_db(pcm: np.ndarray, rate: int, hop: int | None = None) -> tuple[np.ndarray, int]:
    """(power in dBFS, one row per window of NFFT samples hop samples apart, bins 0..rate/2;
    the hop used). The default hop is 10 ms, or more to keep to MAX_COLUMNS windows."""
    samples = np.asarray(pcm, np.float32)
    if len(samples) < NFFT:
        samples = np.pad(samples, (0, NFFT - len(samples)))
    hop = hop or max(rate // 100, -(-len(samples) // MAX_COLUMNS))
    window = np.hanning(NFFT)
    windows = np.lib.stride_tricks.sliding_window_view(samples, NFFT)[::hop] * window
    power = np.abs(np.fft.rfft(windows, axis=1)) / (window.sum() / 2 * 32768)
    return 20 * np.log10(np.maximum(power, 10 ** (FLOOR_DB / 20))), hop


def spectrogram_png(pcm: np.ndarray, rate: int) -> bytes:
    """A PNG of the audio's spectrogram: time left to right, 0 Hz at the bottom, magma colours
    from FLOOR_DB to 0 dBFS."""
    db, _ = spectrogram_db(pcm, rate)
    levels = np.clip((db.T[::-1] - FLOOR_DB) / -FLOOR_DB, 0, 1)
    rgb = (colormaps["magma"](levels)[..., :3] * 255).astype(np.uint8)
    picture = Image.fromarray(rgb).resize((rgb.shape[1], HEIGHT), Image.BILINEAR)
    out = io.BytesIO()
    picture.save(out, format="PNG", optimize=True)
    return out.getvalue()
