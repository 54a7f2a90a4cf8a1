"""`repair_header`: a WAV file its writer could not finish is made readable, with the audio
that reached the disk where it was, and nothing else is touched."""
from __future__ import annotations

import struct
import wave

import numpy as np

from harness.media.wavfile import HEADER_BYTES, repair_header, wav_header

SAMPLES = (np.arange(800, dtype=np.int16) * 37).tobytes()


def read(path) -> tuple[int, int, int, bytes]:
    with wave.open(str(path)) as w:
        return w.getnchannels(), w.getframerate(), w.getsampwidth(), w.readframes(w.getnframes())


def test_a_writer_killed_mid_call_gets_the_sizes_of_what_it_wrote(tmp_path):
    path = tmp_path / "killed.wav"
    path.write_bytes(wav_header(1, 0) + SAMPLES + b"\x01")  # sizes of 0, half a sample at the end
    assert repair_header(path)
    assert read(path) == (1, 8000, 2, SAMPLES)
    assert not repair_header(path)  # a true header is left as it is


def test_a_header_the_disk_refused_is_written_when_the_format_is_known(tmp_path):
    """pjmedia's writer on a full disk: its first buffer never reached the file, so the first
    bytes read as zeros; the audio written after space came back stays at its time."""
    path = tmp_path / "refused.wav"
    lost = bytes(4000)
    path.write_bytes(bytes(HEADER_BYTES) + lost + SAMPLES)
    assert not repair_header(path)  # the format is not known: left alone
    assert path.read_bytes()[:4] == bytes(4)
    assert repair_header(path, channels=1, rate=8000)
    assert read(path) == (1, 8000, 2, lost + SAMPLES)


def test_a_file_that_is_not_a_wav_is_left_alone(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_bytes(b"not audio at all, " * 10)
    before = path.read_bytes()
    assert not repair_header(path, channels=1, rate=8000)
    assert path.read_bytes() == before
    riff = tmp_path / "other.wav"
    riff.write_bytes(b"RIFF" + struct.pack("<I", 4) + b"AVI ")
    assert not repair_header(riff, channels=1)
