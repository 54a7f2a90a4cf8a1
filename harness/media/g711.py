"""G.711 µ-law (PCMU) and A-law (PCMA), vectorised with lookup tables.

Encoding indexes a 65,536-entry table by the 16-bit sample; decoding indexes a 256-entry
table by the code byte. Both directions are exact ITU-T G.711 (the classic segment form).
"""
from __future__ import annotations

import numpy as np

_ULAW_SEG_END = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
_ALAW_SEG_END = np.array([0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF, 0x3FFF, 0x7FFF])


def _ulaw_encode_all() -> np.ndarray:
    pcm = np.arange(-32768, 32768, dtype=np.int32) >> 2
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(pcm), 8159) + 0x21
    seg = np.searchsorted(_ULAW_SEG_END, mag)
    code = (seg << 4) | ((mag >> (seg + 1)) & 0x0F)
    code = np.where(seg >= 8, 0x7F, code)
    return (code ^ mask).astype(np.uint8)


def _ulaw_decode_all() -> np.ndarray:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, 0x84 - t, t - 0x84).astype(np.int16)


def _alaw_encode_all() -> np.ndarray:
    pcm = np.arange(-32768, 32768, dtype=np.int32)
    mask = np.where(pcm >= 0, 0xD5, 0x55)
    mag = np.where(pcm >= 0, pcm, ~pcm)  # one's complement for negatives, as ITU-T G.191
    seg = np.searchsorted(_ALAW_SEG_END, mag)
    shift = np.where(seg < 2, 4, seg + 3)
    code = (seg << 4) | ((mag >> shift) & 0x0F)
    code = np.where(seg >= 8, 0x7F, code)
    return (code ^ mask).astype(np.uint8)


def _alaw_decode_all() -> np.ndarray:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    seg = (a & 0x70) >> 4
    t = (a & 0x0F) << 4
    t = np.where(seg == 0, t + 8, t + 0x108)
    t = np.where(seg > 1, t << np.maximum(seg - 1, 0), t)
    return np.where(a & 0x80, t, -t).astype(np.int16)


_ULAW_ENC = _ulaw_encode_all()
_ULAW_DEC = _ulaw_decode_all()
_ALAW_ENC = _alaw_encode_all()
_ALAW_DEC = _alaw_decode_all()


def _index(pcm: np.ndarray) -> np.ndarray:
    return np.asarray(pcm, dtype=np.int16).astype(np.int32) + 32768


def ulaw_encode(pcm: np.ndarray) -> bytes:
    """Encode 16-bit linear PCM samples to µ-law bytes."""
    return _ULAW_ENC[_index(pcm)].tobytes()


def ulaw_decode(data: bytes) -> np.ndarray:
    """Decode µ-law bytes to 16-bit linear PCM samples."""
    return _ULAW_DEC[np.frombuffer(data, dtype=np.uint8)]


def alaw_encode(pcm: np.ndarray) -> bytes:
    """Encode 16-bit linear PCM samples to A-law bytes."""
    return _ALAW_ENC[_index(pcm)].tobytes()


def alaw_decode(data: bytes) -> np.ndarray:
    """Decode A-law bytes to 16-bit linear PCM samples."""
    return _ALAW_DEC[np.frombuffer(data, dtype=np.uint8)]


#: Static RTP payload types of RFC 3551 and their codec functions.
PAYLOAD_TYPES = {0: "PCMU", 8: "PCMA"}
ENCODERS = {"PCMU": ulaw_encode, "PCMA": alaw_encode}
DECODERS = {"PCMU": ulaw_decode, "PCMA": alaw_decode}
#: The encoding of digital silence (linear 0) in each law.
SILENCE_BYTE = {"PCMU": 0xFF, "PCMA": 0xD5}
