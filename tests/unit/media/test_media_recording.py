"""Recording assembly: packets put back in order, gaps filled with silence, DTMF rendered,
two channels aligned, and the length true to the call."""
from __future__ import annotations

import numpy as np
import pytest

from harness.testing.lossy_channel import LossyChannel
from harness.media.dtmf import ToneDetector
from harness.media.g711 import DECODERS
from harness.media.recording import Recording, TrackAssembler
from harness.media.rtp import RtpPacket
from harness.media.sources import FRAME_SAMPLES, RATE, encode_frames, tone
from harness.media.stream import RtpSender

SIGNAL = tone(300, 2.0, amplitude=0.5)
FRAMES = encode_frames(SIGNAL, "PCMU")  # 100 frames
DECODED = DECODERS["PCMU"](b"".join(FRAMES))


def sent(n: int, frames=FRAMES, start: float = 0.0) -> list[tuple[float, bytes]]:
    s = RtpSender(0, "PCMU", 101, ssrc=3)
    s.sequence, s.timestamp = 65500, 0xFFFFF000  # both wrap inside the recording
    s.play(frames, "p")
    return [(start + i * 0.02, s.tick()) for i in range(n)]


def test_in_order_packets_rebuild_the_audio_exactly():
    track = TrackAssembler("PCMU", 0, 101)
    for at, p in sent(100):
        track.add(p, at)
    assert np.array_equal(track.pcm(0.0), DECODED)


def test_reordered_duplicated_and_lost_packets():
    channel = LossyChannel(seed=11, loss=0.1, reorder=0.2, duplicate=0.05, delay=0.005)
    track = TrackAssembler("PCMU", 0, 101)
    for at, p in sent(100):
        channel.send(p, at)
    arrivals = channel.deliver(10.0)
    for at, p in arrivals:
        track.add(p, at)
    pcm = track.pcm(0.005)  # the network delay shifts the track, as it did the call
    got = {RtpPacket.parse(p).sequence for _, p in arrivals}
    assert channel.lost >= 5 and channel.reordered >= 10
    assert len(pcm) == len(DECODED) or (65500 + 99) & 0xFFFF not in got
    for i in range(100):
        frame = pcm[i * FRAME_SAMPLES:(i + 1) * FRAME_SAMPLES]
        if (65500 + i) & 0xFFFF in got:
            assert np.array_equal(frame, DECODED[i * FRAME_SAMPLES:(i + 1) * FRAME_SAMPLES])
        elif len(frame):
            assert not frame.any()  # a lost packet leaves silence of its length


def test_silence_suppression_gap_follows_the_timestamps():
    packets = sent(50)
    track = TrackAssembler("PCMU", 0, 101)
    for at, p in packets[:20] + packets[30:]:  # the far end sent nothing for 200 ms
        track.add(p, at)
    pcm = track.pcm(0.0)
    assert len(pcm) == 50 * FRAME_SAMPLES and not pcm[20 * FRAME_SAMPLES:30 * FRAME_SAMPLES].any()


def test_implausible_timestamp_jump_falls_back_to_sequence_numbers():
    packets = sent(10)
    bad = RtpPacket.parse(packets[5][1])
    track = TrackAssembler("PCMU", 0, 101)
    for i, (at, p) in enumerate(packets):
        if i >= 5:  # the far end jumped its timestamps by an hour
            q = RtpPacket.parse(p)
            p = RtpPacket(q.payload_type, q.sequence, q.timestamp + 3600 * RATE, q.ssrc, q.payload).build()
        track.add(p, at)
    assert len(track.pcm(0.0)) == 10 * FRAME_SAMPLES and bad.sequence == (65505 & 0xFFFF)


def test_dtmf_events_become_tones_in_the_recording():
    s = RtpSender(0, "PCMU", 101, ssrc=4)
    track = TrackAssembler("PCMU", 0, 101)
    for n in range(60):
        if n == 5:
            s.send_digits("39", 200, None)
        track.add(s.tick(), n * 0.02)
    found = ToneDetector().feed(track.pcm(0.0))
    assert [d.digit for d in found] == ["3", "9"]
    assert len(track.pcm(0.0)) == 60 * FRAME_SAMPLES


def test_both_tracks_are_aligned_to_the_recording_start():
    rec = Recording("x.wav", "both", 10.0, "PCMU", 0, 101, 101)
    for at, p in sent(50, start=10.0):
        rec.outgoing.add(p, at)
    for at, p in sent(25, start=10.5):  # the far end started 0.5 s later
        rec.incoming.add(p, at)
    rec.stop(12.0)
    pcm = rec.pcm()
    assert pcm.shape == (2 * RATE, 2)  # two seconds of call
    assert not pcm[:4000, 0].any() and np.array_equal(pcm[4000:8000, 0], DECODED[:4000])
    assert np.array_equal(pcm[:8000, 1], DECODED[:8000]) and not pcm[8000:, 1].any()


@pytest.mark.parametrize("track, shape", [("INCOMING", (800,)), ("outgoing", (800,))])
def test_single_track_is_mono_and_lasts_the_recording(track, shape):
    rec = Recording("x.wav", track, 0.0, "PCMU", 0, 101, 101)
    assert (rec.incoming is None) != (rec.outgoing is None)
    rec.stop(0.1)
    assert rec.pcm().shape == shape and not rec.pcm().any()


def test_unknown_track():
    with pytest.raises(ValueError, match="INCOMING, OUTGOING, BOTH"):
        Recording("x.wav", "LEFT", 0.0, "PCMU", 0, None, None)


def test_garbage_and_foreign_payload_types_are_left_out():
    track = TrackAssembler("PCMU", 0, 101)
    track.add(b"\x00garbage", 0.0)
    track.add(RtpPacket(13, 1, 0, 1, b"\x40").build(), 0.0)  # comfort noise
    track.add(RtpPacket(0, 2, 160, 1, b"\xff" * 160).build(), 0.02)
    assert len(track.pcm(0.0)) == 2 * FRAME_SAMPLES
