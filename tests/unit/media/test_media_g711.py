"""G.711 against known code points and, as an independent oracle, Python 3.11's `audioop`."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from harness.media.g711 import (DECODERS, ENCODERS, SILENCE_BYTE, alaw_decode, alaw_encode,
                                ulaw_decode, ulaw_encode)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # removed in Python 3.13; this project pins 3.11-3.12

ALL_SAMPLES = np.arange(-32768, 32768, dtype=np.int16)
ALL_CODES = bytes(range(256))


@pytest.mark.parametrize("ours, oracle", [(ulaw_encode, audioop.lin2ulaw),
                                          (alaw_encode, audioop.lin2alaw)])
def test_encoding_every_sample_matches_audioop(ours, oracle):
    assert ours(ALL_SAMPLES) == oracle(ALL_SAMPLES.tobytes(), 2)


@pytest.mark.parametrize("ours, oracle", [(ulaw_decode, audioop.ulaw2lin),
                                          (alaw_decode, audioop.alaw2lin)])
def test_decoding_every_code_matches_audioop(ours, oracle):
    assert ours(ALL_CODES).tobytes() == oracle(ALL_CODES, 2)


@pytest.mark.parametrize("codec, sample, code", [
    ("PCMU", 0, 0xFF), ("PCMU", -1, 0x7E), ("PCMU", 32767, 0x80), ("PCMU", -32768, 0x00),
    ("PCMU", 1000, 0xCE),
    ("PCMA", 0, 0xD5), ("PCMA", -1, 0x55), ("PCMA", 32767, 0xAA), ("PCMA", -32768, 0x2A),
    ("PCMA", 1000, 0xFA),
])
def test_known_code_points(codec, sample, code):
    assert ENCODERS[codec](np.array([sample], dtype=np.int16)) == bytes([code])


@pytest.mark.parametrize("codec, code, sample", [
    ("PCMU", 0xFF, 0), ("PCMU", 0x80, 32124), ("PCMU", 0x00, -32124),
    ("PCMA", 0xD5, 8), ("PCMA", 0xAA, 32256), ("PCMA", 0x2A, -32256),
])
def test_decoded_code_points(codec, code, sample):
    assert DECODERS[codec](bytes([code]))[0] == sample


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_round_trip_is_idempotent_and_silence_byte_is_zero(codec):
    once = DECODERS[codec](ENCODERS[codec](ALL_SAMPLES))
    assert ENCODERS[codec](once) == ENCODERS[codec](ALL_SAMPLES)
    assert abs(int(DECODERS[codec](bytes([SILENCE_BYTE[codec]]))[0])) <= 8
