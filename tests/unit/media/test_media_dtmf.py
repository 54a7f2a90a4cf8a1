"""DTMF: SendDigits as RFC 4733 events or tones, and digits from RFC 4733 events (with lost,
retransmitted and late packets) or in-band tones."""
from __future__ import annotations

import numpy as np
import pytest

from harness.media.dtmf import (DigitReceived, DigitSender, EventDetector, InvalidDigits,
                                ToneDetector, dtmf_tone, SOURCE_INBAND, SOURCE_SIP_INFO)
from harness.media.g711 import DECODERS, ENCODERS
from harness.media.rtp import TelephoneEvent
from harness.media.sources import RATE, tone

TE = 101


def run(sender: DigitSender, ticks: int = 10_000, ts0: int = 1000) -> list:
    """Every tick's output until the sender is done: None or (pt, event, ts, marker)."""
    out = []
    for n in range(ticks):
        step = sender.tick(ts0 + 160 * n)
        if sender.done:
            return out
        out.append(None if step is None else (step[0], TelephoneEvent.parse(step[1]), step[2], step[3]))
    raise AssertionError("sender never finished")


def test_one_digit_is_marked_start_growing_duration_and_three_end_packets():
    steps = run(DigitSender("5", 250, "tok", TE))
    assert all(s is not None for s in steps)
    events = [s[1] for s in steps]
    assert [e.duration for e in events] == [160 * k for k in range(1, 13)] + [2000] * 3
    assert [e.end for e in events] == [False] * 12 + [True] * 3
    assert {s[2] for s in steps} == {1000}  # the event's timestamp stays fixed
    assert [s[3] for s in steps] == [True] + [False] * 14
    assert {e.event for e in events} == {5} and {s[0] for s in steps} == {TE}


def test_digits_are_separated_by_the_gap_and_a_comma_pauses_500_ms():
    steps = run(DigitSender("1,2#", 100, None, TE, gap_ms=100))
    starts = [n for n, s in enumerate(steps) if s is not None and s[3]]
    assert len(starts) == 3
    # tone 100 ms = 5 packets, 2 more end packets, then 3 audio ticks (gap 100 ms incl. the 2)
    assert steps[starts[2] - 3:starts[2]] == [None] * 3
    assert starts[2] - starts[1] == 5 + 2 + 3
    assert starts[1] - starts[0] == 5 + 2 + 25 + 3  # the comma: 25 ticks of audio
    assert [steps[n][1].event for n in starts] == [1, 2, 11]
    assert [steps[n][2] for n in starts] == [1000 + 160 * n for n in starts]


def test_long_tone_is_split_into_segments():
    steps = run(DigitSender("9", 10_000, None, TE))  # 80000 samples > 0xFFFF
    stamps = sorted({s[2] for s in steps})
    assert stamps == [1000, 1000 + 0xFFFF]
    first = [s[1] for s in steps if s[2] == 1000]
    assert first[-1].duration == 0xFFFF and not any(e.end for e in first)
    last = [s[1] for s in steps if s[2] != 1000]
    assert [e.end for e in last[-3:]] == [True] * 3 and last[-1].duration == 80000 - 0xFFFF
    detector = EventDetector()
    digits = [d for n, s in enumerate(steps) for d in detector.receive(s[2], s[1], n * 0.02)]
    assert digits == [DigitReceived("9", 10_000)]


@pytest.mark.parametrize("digits, tone_ms", [("12x", 250), ("", 250), ("1", 0)])
def test_invalid_digits_or_duration(digits, tone_ms):
    with pytest.raises(InvalidDigits):
        DigitSender(digits, tone_ms, None, TE)


def test_inband_tones_when_no_telephone_event():
    sender = DigitSender("7", 200, None, 0, codec="PCMU")
    steps = [sender.tick(160 * n) for n in range(12)]
    assert sender.done and steps[10:] == [None, None]
    assert [s[2] for s in steps[:10]] == [160 * n for n in range(10)] and {s[0] for s in steps[:10]} == {0}
    pcm = DECODERS["PCMU"](b"".join(s[1] for s in steps[:10]) + b"\xff" * 320)
    assert ToneDetector().feed(pcm) == [DigitReceived("7", 200, SOURCE_INBAND)]


# ---- RFC 4733 in ---------------------------------------------------------------------------
def packets(digit: int, ts: int, durations: list[int], ends: int = 3) -> list[tuple[int, TelephoneEvent]]:
    return [(ts, TelephoneEvent(digit, False, 10, d)) for d in durations] + \
        [(ts, TelephoneEvent(digit, True, 10, durations[-1] + 160))] * ends


def feed(detector: EventDetector, pkts, t0: float = 0.0) -> list[DigitReceived]:
    return [d for n, (ts, ev) in enumerate(pkts) for d in detector.receive(ts, ev, t0 + n * 0.02)]


def test_retransmitted_end_packets_count_once():
    assert feed(EventDetector(), packets(1, 800, [160, 320, 480, 640])) == [DigitReceived("1", 100)]


def test_digit_reported_when_start_packets_were_lost():
    assert feed(EventDetector(), packets(11, 800, [160, 320, 480, 640])[3:]) == [DigitReceived("#", 100)]
    assert feed(EventDetector(), packets(10, 800, [160])[-1:]) == [DigitReceived("*", 40)]


def test_digit_without_end_reported_at_next_event_or_timeout():
    detector = EventDetector(timeout=0.3)
    first = packets(2, 800, [160, 320, 480], ends=0)
    second = packets(3, 2400, [160, 320])
    assert feed(detector, first) == []
    assert feed(detector, second, 1.0) == [DigitReceived("2", 60), DigitReceived("3", 60)]
    lonely = packets(4, 5000, [160, 320], ends=0)
    assert feed(detector, lonely, 2.0) == [] and detector.pending
    assert detector.poll(2.2) == []
    assert detector.poll(2.5) == [DigitReceived("4", 40)] and not detector.pending


def test_late_and_reordered_packets_do_not_make_extra_digits():
    first, second = packets(5, 800, [160, 320]), packets(6, 2400, [160, 320])
    order = [first[0], first[2], first[1], first[3], second[0], first[4], second[1], first[2]] + second[2:]
    assert feed(EventDetector(), order) == [DigitReceived("5", 60), DigitReceived("6", 60)]


def test_timestamp_wraparound_between_events():
    detector = EventDetector()
    pkts = packets(1, 0xFFFFFF00, [160]) + packets(2, 0x00000100, [160])
    assert feed(detector, pkts) == [DigitReceived("1", 40), DigitReceived("2", 40)]


def test_non_dtmf_events_are_ignored():
    assert feed(EventDetector(), packets(16, 800, [160])) == []


def test_sip_info_digits_share_the_type():
    digit = DigitReceived("5", 160, SOURCE_SIP_INFO)
    assert (digit.digit, digit.duration_ms, digit.source) == ("5", 160, "sip-info")


# ---- in-band -------------------------------------------------------------------------------
@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_goertzel_finds_all_sixteen_digits_through_g711(codec):
    gap = np.zeros(800, dtype=np.int16)
    pcm = np.concatenate([np.concatenate([dtmf_tone(d, 800), gap]) for d in "0123456789*#ABCD"])
    detector = ToneDetector()
    found = detector.feed(DECODERS[codec](ENCODERS[codec](pcm)))
    assert [d.digit for d in found] == list("0123456789*#ABCD")
    assert all(abs(d.duration_ms - 100) <= 20 for d in found)


def test_goertzel_ignores_single_tones_noise_and_short_blips():
    rng = np.random.default_rng(1)
    noise = (rng.normal(0, 3000, RATE)).astype(np.int16)
    blip = dtmf_tone("5", 160)  # one block: shorter than the 40 ms a digit needs
    pcm = np.concatenate([tone(697, 0.5), tone(1209, 0.5), noise, blip, np.zeros(800, np.int16)])
    assert ToneDetector().feed(pcm) == []


def test_goertzel_fed_in_odd_pieces():
    pcm = np.concatenate([dtmf_tone("8", 1600), np.zeros(480, np.int16)])
    detector = ToneDetector()
    found = [d for i in range(0, len(pcm), 37) for d in detector.feed(pcm[i:i + 37])]
    assert found == [DigitReceived("8", 200, SOURCE_INBAND)]
