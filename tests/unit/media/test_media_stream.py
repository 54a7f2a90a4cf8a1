"""The sans-IO stream: sender continuity across source changes, digits and hold; the receiver
and its RFC 3550 statistics through a lossy in-memory channel; the clock; RTCP reports."""
from __future__ import annotations

import numpy as np
import pytest

from harness.testing.lossy_channel import LossyChannel
from harness.media.clock import MediaClock
from harness.media.dtmf import DigitReceived
from harness.media.rtcp import ReceiverReport, SenderReport, SourceDescription, Bye, parse_compound
from harness.media.rtp import RtpPacket, TelephoneEvent
from harness.media.sources import encode_frames, tone
from harness.media.statistics import ReceptionStats
from harness.media.stream import RtcpReporter, RtpReceiver, RtpSender

FRAMES = encode_frames(tone(440, 0.1), "PCMU")  # 5 frames


def sender(**kw) -> RtpSender:
    s = RtpSender(0, "PCMU", 101, ssrc=0x1234)
    s.sequence, s.timestamp = 65530, 0xFFFFFC00  # both wrap during the tests
    return s


def ticks(s: RtpSender, n: int) -> list[RtpPacket | None]:
    return [None if (p := s.tick()) is None else RtpPacket.parse(p) for _ in range(n)]


def test_continuity_across_playbacks_digits_and_silence():
    s = sender()
    out = ticks(s, 3)
    s.play(FRAMES, "a")
    out += ticks(s, 2)
    s.play(FRAMES, "b", repeat=2)  # replaces "a" mid-way
    out += ticks(s, 12)
    s.send_digits("1", 60, "d")
    out += ticks(s, 8)
    assert s.done == ["b", "d"]
    assert {p.ssrc for p in out} == {0x1234}
    assert [p.sequence for p in out] == [(65530 + i) & 0xFFFF for i in range(len(out))]
    audio = [p for p in out if p.payload_type == 0]
    assert all((b.timestamp - a.timestamp) & 0xFFFFFFFF == 160 * (b.sequence - a.sequence & 0xFFFF)
               for a, b in zip(audio, audio[1:]) if b.sequence - a.sequence & 0xFFFF == 1)
    base = 0xFFFFFC00
    assert [p.timestamp for p in out] == [(base + 160 * i) & 0xFFFFFFFF for i in range(17)] + \
        [(base + 160 * 17) & 0xFFFFFFFF] * 5 + [(base + 160 * i) & 0xFFFFFFFF for i in (22, 23, 24)]
    # markers: first packet, the playback after silence, the DTMF event; not "b" replacing "a"
    assert [i for i, p in enumerate(out) if p.marker] == [0, 3, 17]
    assert [p.payload for p in out[3:5]] == FRAMES[:2] and [p.payload for p in out[5:15]] == FRAMES * 2
    assert out[15].payload == b"\xff" * 160


def test_digits_pause_the_playback_and_share_the_sequence_space():
    s = sender()
    s.play(FRAMES, "p")
    first = ticks(s, 2)
    s.send_digits("5", 40, "d")
    mid = ticks(s, 4)
    rest = ticks(s, 4)
    assert [p.payload_type for p in mid] == [101] * 4  # 2 packets + 2 more end packets
    assert [TelephoneEvent.parse(p.payload).end for p in mid] == [False, True, True, True]
    assert [p.payload for p in first + rest[:3]] == FRAMES  # the playback resumes where it was
    assert s.done == ["d", "p"]


def test_hold_sends_nothing_but_time_goes_on():
    s = sender()
    before = ticks(s, 2)
    s.pause()
    assert ticks(s, 5) == [None] * 5
    s.resume()
    after = ticks(s, 2)
    assert after[0].sequence == (before[-1].sequence + 1) & 0xFFFF
    assert (after[0].timestamp - before[-1].timestamp) & 0xFFFFFFFF == 6 * 160
    assert after[0].marker and not after[1].marker


def test_playback_finishes_during_hold():
    s = sender()
    s.play(FRAMES, "x")
    s.pause()
    ticks(s, 5)
    assert s.done == ["x"] and s.packets_sent == 0


def test_clock_resync_skips_timestamps_and_marks():
    s = sender()
    a = ticks(s, 1)[0]
    s.skip(10)
    b = ticks(s, 1)[0]
    assert (b.timestamp - a.timestamp) & 0xFFFFFFFF == 11 * 160 and b.marker
    assert b.sequence == (a.sequence + 1) & 0xFFFF


# ---- receiver through a lossy channel ----------------------------------------------------
def test_receiver_through_seeded_loss_reorder_and_duplicates():
    s = RtpSender(0, "PCMU", 101, ssrc=7)
    r = RtpReceiver(101)
    channel = LossyChannel(seed=42, delay=0.01)
    digits = []
    for n in range(1000):
        now = n * 0.02
        if n == 1:  # the first packet arrives: it sets the base sequence number
            channel.loss, channel.reorder, channel.duplicate = 0.05, 0.05, 0.02
        if n in (100, 600):
            s.send_digits("42", 100, n)
        channel.send(s.tick(), now)
        for at, data in channel.deliver(now):
            digits += r.receive(data, at)
        digits += r.poll(now)
    channel.loss = channel.duplicate = 0.0  # a last packet that surely arrives
    channel.send(s.tick(), 20.0)
    for at, data in channel.deliver(30.0):
        digits += r.receive(data, at)
    assert channel.lost > 20 and channel.reordered > 20 and channel.duplicated > 5
    assert [d.digit for d in digits] == list("4242")
    assert r.stats.expected == 1001
    assert r.stats.received == 1001 - channel.lost + channel.duplicated
    assert r.stats.lost == channel.lost - channel.duplicated


def test_same_seed_same_fate():
    fates = []
    for _ in range(2):
        channel = LossyChannel(seed=5, loss=0.3, reorder=0.3)
        for n in range(100):
            channel.send(bytes([n]), n * 0.02)
        fates.append(channel.deliver(10.0))
    assert fates[0] == fates[1] and len(fates[0]) < 100


def test_jitter_follows_rfc3550_and_skips_events():
    stats = ReceptionStats()
    arrivals = [0.0, 0.021, 0.039, 0.062, 0.080]
    for n, at in enumerate(arrivals):
        stats.update(1, n, 160 * n, at)
    stats.update(1, 5, 160 * 2, 0.5, timed=False)  # an event packet: not jitter
    j = 0.0
    for a, b in zip(arrivals, arrivals[1:]):
        j += (abs((b - a) * 8000 - 160) - j) / 16
    assert stats.jitter == pytest.approx(j)


def test_sequence_wrap_loss_and_restart():
    stats = ReceptionStats()
    for seq in [65533, 65534, 1, 2, 3]:  # 65535 and 0 lost across the wrap
        stats.update(9, seq, 0, 0.0)
    assert stats.extended_max == 65536 + 3 and stats.expected == 7 and stats.lost == 2
    block = stats.report_block()
    assert block.fraction_lost == 2 * 256 // 7 and block.cumulative_lost == 2
    assert stats.update(9, 30000, 0, 0.0) is False  # a jump: wait for confirmation
    assert stats.update(9, 30001, 0, 0.0) is True  # confirmed: the source restarted
    assert stats.expected == 1
    stats.update(10, 5, 0, 0.0)  # a new SSRC starts afresh
    assert stats.ssrc == 10 and stats.received == 1


def test_receiver_counts_garbage_and_ignores_non_dtmf():
    r = RtpReceiver(101)
    assert r.receive(b"\x00" * 5, 0.0) == [] and r.receive(b"\x40" + b"\x00" * 20, 0.0) == []
    assert r.invalid == 2
    assert r.receive(RtpPacket(101, 1, 0, 1, b"\x05\x8a").build(), 0.0) == []
    assert r.invalid == 3
    assert r.receive(RtpPacket(101, 2, 0, 1, TelephoneEvent(5, True, 10, 800).build()).build(), 0.0) \
        == [DigitReceived("5", 100)]


# ---- the clock -------------------------------------------------------------------------------
def test_clock_deadlines_are_absolute():
    clock = MediaClock(100.0, phases=4)
    assert clock.due(99.99) == (range(0), 0)
    assert clock.due(100.0) == (range(0, 1), 0)
    assert clock.next_deadline == pytest.approx(100.005)
    assert clock.due(100.0048) == (range(0), 0)
    assert clock.due(100.0051) == (range(1, 2), 0)
    assert clock.due(100.0301) == (range(2, 7), 0)  # a late wake-up catches up
    assert clock.next_deadline == pytest.approx(100.035)
    # after a 1 s stall whole periods are skipped: the phase order is kept
    slots, skipped = clock.due(101.0303)
    assert skipped == 49 and slots == range(7 + 4 * 49, 207)  # the last period still runs
    assert clock.next_deadline == pytest.approx(100.0 + slots[-1] * 0.005 + 0.005)
    for n in range(1000):
        clock.due(102.0 + n * 0.005 + 1e-5)
    assert clock.next_deadline == pytest.approx(102.0 + 1000 * 0.005)  # no drift


# ---- RTCP ------------------------------------------------------------------------------------
def test_reports_sr_while_sending_rr_on_hold_and_bye():
    s = RtpSender(0, "PCMU", None, ssrc=77)
    stats = ReceptionStats()
    reporter = RtcpReporter(s, stats, "me@127.0.0.1", rand=lambda: 0.5)
    reporter.start(0.0)
    assert reporter.next_due == pytest.approx(2.5 / (np.e - 1.5))
    for n in range(100):
        s.tick()
        stats.update(5, n, 160 * n, n * 0.02)
    sr, sdes = parse_compound(reporter.report(2.0, 1_700_000_000.0))
    assert isinstance(sr, SenderReport) and (sr.ssrc, sr.packet_count, sr.octet_count) == (77, 100, 16000)
    assert sr.rtp_timestamp == s.last_timestamp and sr.reports[0].ssrc == 5
    assert sdes.cname(77) == b"me@127.0.0.1"
    assert reporter.next_due == pytest.approx(2.0 + 5 / (np.e - 1.5))
    s.pause()
    s.tick()
    rr, _ = parse_compound(reporter.report(8.0, 1_700_000_006.0))
    assert isinstance(rr, ReceiverReport)
    *_, bye = parse_compound(reporter.bye(9.0, 1_700_000_007.0))
    assert bye == Bye((77,))


def test_lsr_dlsr_and_round_trip():
    ours = RtcpReporter(RtpSender(0, "PCMU", None, ssrc=1), ReceptionStats(), "a")
    theirs = RtcpReporter(RtpSender(0, "PCMU", None, ssrc=2), ReceptionStats(), "b")
    ours.sender.tick(), theirs.sender.tick()
    ours.stats.update(2, 0, 0, 0.0)
    theirs.stats.update(1, 0, 0, 0.0)
    theirs.receive(ours.report(10.0, 1000.0), now=10.1, wallclock=1000.1)
    ours.receive(theirs.report(10.6, 1000.6), now=10.7, wallclock=1000.7)
    assert ours.round_trip == pytest.approx(0.2, abs=1e-3)  # 0.7 s minus 0.5 s held at the far end
    assert ours.reports_received == 1
    assert parse_compound(ours.report(12.0, 1002.0))[1] == \
        SourceDescription(((1, ((1, b"a"),)),))


def test_a_playback_plays_over_the_standing_source_and_hands_it_back():
    """A bridge's live feed is the stream's standing audio: a prompt replaces it while it
    plays, the feed is drained meanwhile (no stale audio after the prompt), and it resumes."""
    from harness.media.bridge import LiveFeed
    from harness.media.g711 import DECODERS
    s = sender()
    feed = LiveFeed("PCMU")
    s.set_standing(feed)
    pushed = iter(range(1, 1000))

    def heard(n: int) -> list:
        """Each tick the far end sends one 20 ms frame of a new level; what the tick sent."""
        out = []
        for _ in range(n):
            feed.push_pcm(np.full(160, 100 * next(pushed), dtype=np.int16))
            payload = RtpPacket.parse(s.tick()).payload
            out.append(payload if payload in FRAMES else round(float(DECODERS["PCMU"](payload).mean()), -2))
        return out

    assert heard(2) == [100, 200]  # the other party, live
    s.play(FRAMES, "prompt")
    assert heard(len(FRAMES)) == list(FRAMES)
    assert s.done == ["prompt"]
    assert heard(2) == [800, 900]  # live again, not the backlog of what came during the prompt
    s.stop()  # StopMedia stops playbacks only
    assert heard(1) == [1000]
    s.set_standing(None)
    assert heard(1) == [0]  # silence once the bridge is gone
