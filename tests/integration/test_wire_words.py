"""The words heard on the wire: phrase spotting with pocketsphinx, speech as one segment, and
the `said:` expectation of a profile run through the stub."""
from __future__ import annotations

import dataclasses
import subprocess

import numpy as np
import pytest

from conftest import PROFILES, TEST_DATA, require_tool
from harness.media.g711 import ulaw_decode, ulaw_encode
from harness.media.rtp import RtpPacket
from harness.media.sources import read_wav
from harness.profiles.schema import load_profile
from harness.run.profile import ProfileRun
from harness.wire.analysis import analyze_pcap
from harness.wire.audio import content_segments, label_packets, segments, stream_pcm
from harness.testing.captures import CaptureBuilder
from harness.wire.words import RecognitionError, Recognizer, normalise

DATA = TEST_DATA / "wire"


def telephone_speech(text: str) -> np.ndarray:
    """espeak-ng's voice for Joanna, at 8 kHz through G.711 as on the wire."""
    wav = subprocess.run([require_tool("espeak-ng"), "--stdout", "-v", "en-us+f3"], input=text.encode(),
                         capture_output=True, check=True).stdout
    return ulaw_decode(ulaw_encode(read_wav(wav)))


@pytest.fixture(scope="module")
def recognizer():
    return Recognizer()


def test_a_phrase_is_found_in_the_callee_stream_of_a_foreign_capture(recognizer):
    a = analyze_pcap(str(DATA / "call-ethernet.pcap"))
    callee = next(s for s in a.rtp_streams if s.ssrc == 0x5E6F7081)
    pcm, rate, _ = stream_pcm(callee)
    match = recognizer.find_phrase(pcm, rate, "Thank you for calling!")
    assert match is not None and 0.2 < match.start_s < 0.4 and match.coverage >= 0.9
    assert recognizer.find_phrase(pcm, rate, "please hold the line") is None
    assert recognizer.find_phrase(pcm, rate, "your call is important to us") is None


def test_phrases_are_found_between_pauses_of_a_longer_utterance(recognizer):
    pcm = telephone_speech("Thank you for calling. Please enter your account number.")
    first = recognizer.find_phrase(pcm, 8000, "thank you for calling")
    second = recognizer.find_phrase(pcm, 8000, "please enter your account number")
    assert first is not None and second is not None and first.end_s <= second.start_s
    assert recognizer.find_phrase(pcm, 8000, "press one for sales") is None
    assert recognizer.find_phrase(pcm, 8000, "thank you for calling please enter your account number")


def test_numbers_are_words_and_unknown_words_are_a_clear_error(recognizer):
    assert normalise("Your balance is 42 dollars, 1,005 cents.") == \
        "your balance is forty two dollars one five cents".split()
    assert normalise("it's 2026") == ["it's", "two", "thousand", "twenty", "six"]
    with pytest.raises(RecognitionError, match="no word 'qwzxv'"):
        recognizer.find_phrase(np.zeros(8000, np.int16), 8000, "hello qwzxv")
    assert recognizer.transcribe(telephone_speech("good morning"), 8000) != ""


def test_speech_is_one_segment_not_a_spray_of_one_packet_tones(tmp_path):
    pcm = telephone_speech("Your call is important to us, please stay on the line.")
    pcm = np.concatenate([np.zeros(2400, np.int16), pcm, np.zeros(2400, np.int16)])
    tone = (np.sin(2 * np.pi * 440 * np.arange(8000) / 8000) * 8000).astype(np.int16)
    cb = CaptureBuilder()
    audio = np.concatenate([pcm, tone])
    for i in range(len(audio) // 160):
        cb.udp(0.02 * i, ("10.0.0.1", 4000), ("10.0.0.2", 4002),
               RtpPacket(0, i, 160 * i, 1, ulaw_encode(audio[160 * i:160 * i + 160])).build())
    [stream] = analyze_pcap(cb.write(str(tmp_path / "speech.pcap"))).rtp_streams
    labels = label_packets(stream)
    raw = segments(labels)
    assert sum(1 for s in raw if s.kind == "tone" and s.packets <= 2) >= 3   # vowels that look like tones
    assert [s.kind for s in content_segments(labels)] == ["silence", "speech", "silence", "tone"]
    assert content_segments(labels)[-1].label == "tone:440Hz"


@pytest.fixture(scope="module")
def speak_run(tmp_path_factory):
    profile = load_profile(PROFILES / "speak_said.yaml")
    profile.expect = dataclasses.replace(profile.expect, said=[
        "thank you for calling", "press one for sales"])
    return ProfileRun(profile, tmp_path_factory.mktemp("said"), progress=lambda line: None).execute()


def test_said_fails_for_a_phrase_the_stub_never_spoke(speak_run):
    check = next(c for c in speak_run.checks if c.name == "said")
    assert not check.passed and speak_run.verdict == "fail"
    assert check.detail == "'press one for sales' was not heard after the phrase before it in the stub's speech to call 'a'"
    assert check.measured["said"][0]["phrase"] == "thank you for calling"
    assert 0.0 < check.measured["said"][0]["at_s"] < 1.5
