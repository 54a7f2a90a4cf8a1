"""Audio recognition on captured RTP: tones, silence, prompts with offsets, DTMF."""
from __future__ import annotations

import io
import subprocess
import wave

import numpy as np
import pytest

from conftest import require_tool
from harness.media.g711 import alaw_encode, ulaw_encode
from harness.media.rtp import RtpPacket
from harness.wire.analysis import analyze_pcap
from harness.wire.audio import PromptMatcher, label_packets, segments, tone_frequency
from harness.testing.captures import CaptureBuilder, sdp_body, sip_message

CALLER, STUB = ("127.0.0.1", 5060), ("127.0.0.1", 5080)
CALLER_RTP, STUB_RTP = ("127.0.0.1", 20000), ("127.0.0.1", 20002)
RATE = 8000


def tone(freq: float, seconds: float, amplitude: float = 8000) -> np.ndarray:
    return (np.sin(2 * np.pi * freq * np.arange(int(seconds * RATE)) / RATE) * amplitude).astype(np.int16)


def noise_prompt(seed: int, seconds: float, lead_silence: float = 0.0) -> np.ndarray:
    x = (np.random.default_rng(seed).standard_normal(int(seconds * RATE)) * 3000).astype(np.int16)
    x[:int(lead_silence * RATE)] = 0
    return x


def frames_of(pcm: np.ndarray, start: int = 0, encode=ulaw_encode) -> list[bytes]:
    """The stub's framing: 160 samples per packet from `start`, the last one padded with 0."""
    pcm = pcm[start:]
    pcm = np.concatenate([pcm, np.zeros(-len(pcm) % 160, np.int16)])
    return [encode(pcm[i:i + 160]) for i in range(0, len(pcm), 160)]


def stream_of(tmp_path, payloads: list[bytes | None], codec=(0, "PCMU/8000")):
    """A capture with one stub->caller stream carrying `payloads` (None: a lost packet)."""
    cb = CaptureBuilder()
    pt, enc = codec
    cb.udp(0.0, CALLER, STUB, sip_message("INVITE sip:x@127.0.0.1 SIP/2.0", "c", "1 INVITE", CALLER,
                                          sdp_body(*CALLER_RTP, {pt: enc})))
    for i, payload in enumerate(payloads):
        if payload is not None:
            cb.udp(0.02 + 0.02 * i, STUB_RTP, CALLER_RTP, RtpPacket(pt, i, 160 * i, 9, payload).build())
    [stream] = analyze_pcap(cb.write(str(tmp_path / "audio.pcap"))).rtp_streams
    return stream


@pytest.mark.parametrize("freq", [440, 1000])
def test_tones_through_pcmu_are_recognised_with_their_frequency(tmp_path, freq):
    labels = label_packets(stream_of(tmp_path, frames_of(tone(freq, 1.0))))
    assert {lab.kind for lab in labels} == {"tone"}
    assert all(abs(lab.frequency_hz - freq) < 1.0 for lab in labels)
    [seg] = segments(labels)
    assert (seg.label, seg.packets) == (f"tone:{freq}Hz", 50)


def test_silence_dual_tones_and_noise_are_not_tones():
    dual = tone(697, 0.02) // 2 + tone(1209, 0.02) // 2
    assert tone_frequency(dual) is None
    assert tone_frequency(noise_prompt(1, 0.02)) is None
    assert tone_frequency(np.zeros(160, np.int16)) is None


def test_silence_and_segments(tmp_path):
    quiet = (np.random.default_rng(2).standard_normal(800) * 30).astype(np.int16)  # about -61 dBFS
    payloads = frames_of(np.zeros(800, np.int16)) + frames_of(quiet) + frames_of(tone(1000, 0.1))
    segs = segments(label_packets(stream_of(tmp_path, payloads)))
    assert [(s.label, s.packets) for s in segs] == [("silence", 10), ("tone:1000Hz", 5)]
    assert segs[1].start_ts_ns - segs[0].start_ts_ns == 200_000_000


def test_prompts_are_identified_with_offsets_repeats_and_lost_packets(tmp_path):
    a = noise_prompt(1, 0.53, lead_silence=0.1)     # 27 frames, the last one short
    b = noise_prompt(2, 0.40, lead_silence=0.06)    # 20 frames
    fa, fb = frames_of(a), frames_of(b)
    payloads = [b"\xff" * 160] * 4 + fa + fa[:10] + fb
    payloads[38] = None                             # lost: frame 7 of A's repeat
    labels = label_packets(stream_of(tmp_path, payloads), {"a.wav": a, "b.wav": b})
    got = [(lab.prompt, lab.offset) for lab in labels]
    assert got[:4] == [(None, None)] * 4            # silence before A is not A's lead-in
    assert got[4:31] == [("a.wav", 160 * k) for k in range(27)]
    assert got[31:40] == [("a.wav", 160 * k) for k in (0, 1, 2, 3, 4, 5, 6, 8, 9)]
    assert got[40:] == [("b.wav", 160 * k) for k in range(20)]
    assert {lab.match for lab in labels if lab.prompt} == {"exact"}
    segs = segments(labels)
    assert [(s.label, s.packets, s.first_offset, s.last_offset) for s in segs] == [
        ("silence", 4, None, None), ("prompt:a.wav", 36, 0, 1440), ("prompt:b.wav", 20, 0, 3040)]


def test_unaligned_or_altered_prompt_found_by_correlation(tmp_path):
    a = noise_prompt(3, 1.0)
    softer = (a[0:8000] * 0.5).astype(np.int16)
    payloads = frames_of(a, start=37)[:20] + [b"\xff" * 160] * 3 + frames_of(softer)[:10]
    labels = label_packets(stream_of(tmp_path, payloads), {"a.wav": a})
    assert [(lab.prompt, lab.offset, lab.match) for lab in labels[:20]] == \
        [("a.wav", 37 + 160 * k, "correlation") for k in range(20)]
    assert [(lab.prompt, lab.offset) for lab in labels[23:]] == [("a.wav", 160 * k) for k in range(10)]


def test_pcma_stream_matches_prompts_encoded_with_alaw(tmp_path):
    a = noise_prompt(4, 0.3)
    labels = label_packets(stream_of(tmp_path, frames_of(a, encode=alaw_encode), (8, "PCMA/8000")),
                           {"a.wav": a})
    assert [(lab.prompt, lab.match) for lab in labels] == [("a.wav", "exact")] * 15


def test_spoken_prompts_with_pauses(tmp_path):
    """Speech from espeak-ng, with pauses of digital silence inside the prompts."""
    espeak = require_tool("espeak-ng")

    def speak(text: str) -> np.ndarray:
        wav = subprocess.run([espeak, "--stdout", text], capture_output=True, check=True).stdout
        with wave.open(io.BytesIO(wav)) as w:
            pcm = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float64)
            rate = w.getframerate()
        t = np.arange(0, len(pcm) / rate, 1 / RATE)
        return np.interp(t, np.arange(len(pcm)) / rate, pcm).astype(np.int16)

    hello, bye = speak("Hello. Please hold."), speak("Goodbye now.")
    payloads = [b"\xff" * 160] * 5 + frames_of(hello) + frames_of(bye)
    matcher = PromptMatcher({"hello.wav": hello, "bye.wav": bye})
    segs = segments(label_packets(stream_of(tmp_path, payloads), matcher=matcher))
    assert [(s.label, s.packets) for s in segs] == [
        ("silence", 5), ("prompt:hello.wav", len(frames_of(hello))), ("prompt:bye.wav", len(frames_of(bye)))]
