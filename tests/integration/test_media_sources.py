"""Audio sources: WAV files of every PCM layout (and clear errors for anything else), tones,
silence, frames, and speech from espeak-ng."""
from __future__ import annotations

import asyncio
import os
import struct

import numpy as np
import pytest

from conftest import require_tool
from harness.media import speech
from harness.media.sources import (FRAME_SAMPLES, RATE, InvalidAudioSource, encode_frames,
                                   read_wav, silence, tone, wav_frames, write_wav)

GUID_PCM = bytes.fromhex("0100000000001000800000aa00389b71")
GUID_FLOAT = bytes.fromhex("0300000000001000800000aa00389b71")


def riff(fmt: bytes, data: bytes, data_size: int | None = None, extra: bytes = b"") -> bytes:
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra + \
        b"data" + struct.pack("<I", len(data) if data_size is None else data_size) + data
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def pcm_fmt(channels: int, rate: int, bits: int, tag: int = 1) -> bytes:
    block = channels * bits // 8
    return struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)


def extensible(channels: int, rate: int, bits: int, guid: bytes) -> bytes:
    return pcm_fmt(channels, rate, bits, 0xFFFE) + struct.pack("<HHI", 22, bits, 0) + guid


SIGNAL = tone(440, 0.5)  # 8 kHz int16


def test_8khz_mono_16bit_is_taken_as_is(tmp_path):
    path = tmp_path / "a.wav"
    write_wav(path, SIGNAL)
    assert np.array_equal(read_wav(path.read_bytes()), SIGNAL)


def test_stereo_is_mixed_down():
    stereo = np.stack([SIGNAL, np.zeros_like(SIGNAL)], axis=1)
    out = read_wav(riff(pcm_fmt(2, RATE, 16), stereo.astype("<i2").tobytes()))
    assert np.abs(out.astype(int) - SIGNAL // 2).max() <= 1


@pytest.mark.parametrize("rate", [16000, 44100, 48000, 11025])
def test_other_rates_are_resampled(rate):
    t = np.arange(int(rate * 0.5)) / rate
    src = np.round(np.sin(2 * np.pi * 440 * t) * 10000).astype("<i2")
    out = read_wav(riff(pcm_fmt(1, rate, 16), src.tobytes()))
    assert abs(len(out) - 4000) <= 1
    spectrum = np.abs(np.fft.rfft(out[400:3600]))
    assert abs(np.argmax(spectrum) * RATE / 3200 - 440) <= 5
    assert 8000 < np.abs(out[400:3600]).max() < 11000


def test_downsampling_removes_what_8khz_cannot_carry():
    rate = 48000
    t = np.arange(rate // 2) / rate
    src = np.round(np.sin(2 * np.pi * 6000 * t) * 10000).astype("<i2")  # above 4 kHz: would alias to 2 kHz
    out = read_wav(riff(pcm_fmt(1, rate, 16), src.tobytes()))
    assert np.sqrt(np.mean(out[200:-200].astype(float) ** 2)) < 1000


@pytest.mark.parametrize("bits", [8, 24, 32])
def test_other_sample_widths(bits):
    scaled = SIGNAL.astype(np.int64)
    if bits == 8:
        raw = ((scaled >> 8) + 128).astype(np.uint8).tobytes()
    elif bits == 24:
        v = (scaled << 8) & 0xFFFFFF
        raw = np.stack([v & 0xFF, (v >> 8) & 0xFF, v >> 16], axis=1).astype(np.uint8).tobytes()
    else:
        raw = (scaled << 16).astype("<i4").tobytes()
    out = read_wav(riff(pcm_fmt(1, RATE, bits), raw))
    assert np.abs(out.astype(int) - SIGNAL).max() <= (256 if bits == 8 else 1)


def test_wave_format_extensible_pcm_and_extra_chunks():
    data = np.stack([SIGNAL, SIGNAL], axis=1).astype("<i2").tobytes()
    out = read_wav(riff(extensible(2, RATE, 16, GUID_PCM), data, extra=b"LIST\x03\x00\x00\x00abc\x00"))
    assert np.array_equal(out, SIGNAL)


def test_streamed_data_size_is_cut_to_the_file():
    out = read_wav(riff(pcm_fmt(1, RATE, 16), SIGNAL.astype("<i2").tobytes(), data_size=0x7FFFF000))
    assert np.array_equal(out, SIGNAL)


@pytest.mark.parametrize("data, message", [
    (b"not a wav at all", "not a RIFF"),
    (riff(pcm_fmt(1, RATE, 16, tag=7), b"\xff" * 100), "µ-law WAV is not linear PCM"),
    (riff(pcm_fmt(1, RATE, 32, tag=3), b"\x00" * 100), "IEEE float WAV is not linear PCM"),
    (riff(extensible(1, RATE, 32, GUID_FLOAT), b"\x00" * 100), "IEEE float"),
    (riff(pcm_fmt(1, RATE, 16, tag=0x55), b"\x00" * 100), "MP3"),
    (riff(pcm_fmt(1, RATE, 12), b"\x00" * 100), "unsupported PCM layout"),
    (b"RIFF\x04\x00\x00\x00WAVE", "no fmt chunk"),
    (b"RIFF\x14\x00\x00\x00WAVEfmt \x10\x00\x00\x00" + pcm_fmt(1, RATE, 16), "no data chunk"),
    (riff(b"\x01\x00", b""), "fmt chunk too short"),
])
def test_anything_else_is_an_invalid_audio_source(data, message):
    with pytest.raises(InvalidAudioSource, match=message):
        read_wav(data, "x.wav")


def test_size_limit():
    with pytest.raises(InvalidAudioSource, match="50 MB"):
        read_wav(b"\x00" * (50 * 1024 * 1024 + 1))


def test_wav_frames_are_cached_until_the_file_changes(tmp_path):
    path = tmp_path / "p.wav"
    write_wav(path, SIGNAL)
    first = wav_frames(path, "PCMU")
    assert wav_frames(path, "PCMU") is first and len(first) == 25
    write_wav(path, SIGNAL[:800])
    os.utime(path, ns=(1, 1))
    assert len(wav_frames(path, "PCMU")) == 5
    with pytest.raises(InvalidAudioSource):
        wav_frames(tmp_path / "missing.wav", "PCMU")


def test_frames_tone_and_silence():
    frames = encode_frames(tone(1000, 0.05), "PCMA")
    assert [len(f) for f in frames] == [FRAME_SAMPLES] * 3  # 400 samples padded to 480
    assert frames[-1][80:] == b"\xd5" * 80
    assert not silence(0.02).any() and len(silence(0.02)) == 160


def test_two_channel_wav_round_trip(tmp_path):
    path = tmp_path / "both.wav"
    both = np.stack([SIGNAL, -SIGNAL], axis=1)
    write_wav(path, both)
    data = path.read_bytes()
    assert struct.unpack_from("<HHI", data, 20) == (1, 2, RATE)
    assert np.array_equal(np.frombuffer(data[44:], "<i2").reshape(-1, 2), both)


# ---- speech ---------------------------------------------------------------------------------
def test_espeak_voice_mapping():
    assert speech.espeak_voice(None, None) == "en-us+f3"
    assert speech.espeak_voice("Matthew", "en-US") == "en-us+m3"
    assert speech.espeak_voice("Amy", "en-GB") == "en-gb+f3"
    assert speech.espeak_voice("Hans", "de-DE") == "de+m3"
    assert speech.espeak_voice("Mia", "es-MX") == "es-419+f3"
    assert speech.espeak_command("en-us+f3", True)[-1] == "-m"


def test_speech_is_synthesised_cached_and_shared():
    require_tool("espeak-ng")

    async def scenario():
        a, b = await asyncio.gather(speech.speech_pcm("Hello caller"), speech.speech_pcm("Hello caller"))
        male = await speech.speech_pcm("Hello caller", voice_id="Matthew")
        ssml = await speech.speech_pcm('<speak>Hello <break time="700ms"/> caller</speak>', text_type="ssml")
        frames = await speech.speech_frames("Hello caller", "PCMA")
        return a, b, male, ssml, frames, await speech.speech_pcm("Hello caller")
    a, b, male, ssml, frames, again = asyncio.run(scenario())
    assert a is b is again  # one espeak-ng run, then the cache
    assert 0.4 * RATE < len(a) < 3 * RATE and np.abs(a).max() > 3000
    assert not np.array_equal(a[:len(male)], male[:len(a)])
    assert len(ssml) > len(a) + 0.5 * RATE  # the break was honoured, the tags not spoken
    assert len(frames) == -(-len(a) // FRAME_SAMPLES)


def test_speech_failure_is_reported(monkeypatch):
    monkeypatch.setattr(speech, "ESPEAK", "/nonexistent/espeak-ng")
    with pytest.raises(speech.SpeechError, match="cannot run"):
        asyncio.run(speech.speech_pcm("never said"))
