"""MOS per stream: the ITU-T G.107 E-model on streams with no loss, 5 % random loss and bursty
loss, against values worked out by hand from the recommendation's equations."""
from __future__ import annotations

import math
import random

import numpy as np
import pytest

from harness.media.rtcp import ReceiverReport, ReportBlock, build_compound
from harness.media.rtp import RtpPacket
from harness.wire.analysis import analyze_pcap
from harness.wire.calls import stream_quality
from harness.wire.quality import burst_ratio, loss_pattern, mos_from_r, r_factor
from harness.testing.captures import CaptureBuilder

N = 500
SRC, DST = ("10.0.0.1", 4000), ("10.0.0.2", 4002)


def stream(tmp_path, lost: set[int], rtcp_lost: int | None = None):
    """N paced PCMU packets (no SIP: found by heuristics, so no round trip is known) but
    the ones in `lost`; optionally an RR from the receiver reporting `rtcp_lost`."""
    cb = CaptureBuilder()
    for i in range(N):
        if i not in lost:
            cb.udp(0.02 * i, SRC, DST, RtpPacket(0, i, 160 * i, 0xABCD, b"\x55" * 160).build())
    if rtcp_lost is not None:
        block = ReportBlock(0xABCD, 0, rtcp_lost, N - 1, 0)
        cb.udp(9.0, (DST[0], DST[1] + 1), (SRC[0], SRC[1] + 1), build_compound([ReceiverReport(0x1234, (block,))]))
    a = analyze_pcap(cb.write(str(tmp_path / "s.pcap")))
    [s] = a.rtp_streams
    return stream_quality(a, s).quality


def by_hand_r(ppl: float, burst: float, t_ms: float) -> float:
    """G.107 §7 with its default parameters, worked out: the defaults give R = 93.2 at T = 0
    (the recommendation's own figure; 93.2062 unrounded). A one-way delay T = Ta = 20 ms, Tr = 2T
    changes only the talker-echo term Idte and the listener-echo term Idle (Idd is 0 below 100
    ms, STMRo does not move); G.711 with PLC has Ie 0 and Bpl 25.1 (G.113 Appendix I)."""
    no, rlr, telr, wepl = -61.1791, 2.0, 65.0, 110.0             # No from the default noise terms
    ro = 15 - 1.5 * (8 + no)                                      # 94.7687
    terv = telr - 40 * math.log10((1 + t_ms / 10) / (1 + t_ms / 150)) + 6 * math.exp(-0.3 * t_ms ** 2)
    roe, re = -1.5 * (no - rlr), 80 + 2.5 * (terv - 14)
    idte = ((roe - re) / 2 + math.sqrt((roe - re) ** 2 / 4 + 100) - 1) * (1 - math.exp(-t_ms))

    def idle(tr: float) -> float:
        rle = 10.5 * (wepl + 7) * (tr + 1) ** -0.25
        return (ro - rle) / 2 + math.sqrt((ro - rle) ** 2 / 4 + 169)
    ie_eff = 95 * ppl / (ppl / burst + 25.1) if ppl else 0.0
    return 93.2062 - idte - (idle(2 * t_ms) - idle(0)) - ie_eff


def by_hand_mos(r: float) -> float:
    return 1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6


def test_the_defaults_give_the_recommendations_93_2():
    assert r_factor(0, 1, 0, 0, 4.3) == pytest.approx(93.2, abs=0.01)
    assert by_hand_r(0, 1, 20) == pytest.approx(92.53, abs=0.01)
    assert mos_from_r(93.2) == pytest.approx(4.41, abs=0.005)
    assert (mos_from_r(-5), mos_from_r(120)) == (1.0, 4.5)


def test_a_clean_stream(tmp_path):
    q = stream(tmp_path, set())
    assert (q.ppl, q.burst_ratio, q.delay_ms, q.delay_source) == (0.0, 1.0, 20.0, "none")
    assert q.r_factor == pytest.approx(by_hand_r(0, 1, 20), abs=0.01)
    assert q.mos == pytest.approx(by_hand_mos(by_hand_r(0, 1, 20)), abs=0.001)
    assert round(q.mos, 2) == 4.40


def test_five_percent_random_loss(tmp_path):
    rnd = random.Random(5)
    lost = set(rnd.sample(range(1, N - 1), N // 20))
    pattern = [i in lost for i in range(N)]
    # the Markov chain of this pattern, counted by hand
    after_received = [b for a, b in zip(pattern, pattern[1:]) if not a]
    after_lost = [b for a, b in zip(pattern, pattern[1:]) if a]
    p, q_ = sum(after_received) / len(after_received), after_lost.count(False) / len(after_lost)
    q = stream(tmp_path, lost)
    assert q.ppl == pytest.approx(5.0) and q.burst_ratio == pytest.approx(1 / (p + q_))
    assert 0.9 < q.burst_ratio < 1.1                              # random loss: about 1
    r = by_hand_r(5.0, 1 / (p + q_), 20)
    assert q.r_factor == pytest.approx(r, abs=0.01) and q.mos == pytest.approx(by_hand_mos(r), abs=0.001)
    assert round(q.mos, 1) == 3.9


def test_bursty_loss(tmp_path):
    lost = {start + k for start in (50, 150, 250, 350, 450) for k in range(5)}   # 5 bursts of 5
    q = stream(tmp_path, lost)
    # p = 5 bursts after 474 received packets that have a successor, q = 5 ends of 25 lost ones
    burst = 1 / (5 / 474 + 5 / 25)
    assert q.ppl == pytest.approx(5.0) and q.burst_ratio == pytest.approx(burst)
    assert burst == pytest.approx(4.75, abs=0.01)
    r = by_hand_r(5.0, burst, 20)
    assert q.r_factor == pytest.approx(r, abs=0.01) and q.mos == pytest.approx(by_hand_mos(r), abs=0.001)
    random_mos = by_hand_mos(by_hand_r(5.0, 1.0, 20))
    assert q.mos < random_mos - 0.05           # G.107: the same loss in bursts hurts more


def test_loss_the_receiver_reports_counts_when_the_capture_is_before_it(tmp_path):
    q = stream(tmp_path, set(), rtcp_lost=40)
    assert (q.loss_source, q.ppl) == ("rtcp", pytest.approx(8.0))


def test_loss_patterns_from_sequence_numbers():
    assert loss_pattern(np.array([65534, 65535, 1, 2, 4])).tolist() == [False, False, True, False, False, True, False]
    assert loss_pattern(np.array([5, 7, 6, 6, 8])).tolist() == [False] * 4
    assert burst_ratio(np.array([0, 0, 1, 1, 1, 0, 0, 0], bool)) == pytest.approx(1 / (1 / 4 + 1 / 3))
    assert burst_ratio(np.zeros(10, bool)) == 1.0
