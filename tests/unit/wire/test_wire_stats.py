"""stream_stats (vectorised, closed-form recurrences) against Wireshark's rules applied one
packet at a time, on random streams and on values that sit on a rounding boundary."""
from __future__ import annotations

import random

import numpy as np
import pytest

from harness.wire import rtp_stats
from harness.wire.rtp_stats import RtpStats, stream_stats


def reference(packets: list[tuple[float, int, int, int, bool, int]]) -> RtpStats:
    """Wireshark 4.0's RTP analysis as a per-packet loop (the rules in rtp_stats' docstring)."""
    time0, seq0, ts0, pt0, _, _ = packets[0]
    s = dict(time=time0, seq=seq0, stop=seq0, pt=pt0, nominal=0.0, delta=0.0, jitter=0.0,
             max_d=0.0, mean_d=0.0, min_d=None, max_j=0.0, mean_j=0.0, min_j=None,
             cycles=0, under=False, errors=0, problem=False)
    for n, (time_ms, seq, ts, pt, marker, rate) in enumerate(packets[1:], 1):
        wrong = ((ts - ts0) & 0xFFFFFFFF) >= 0x80000000
        ok = not wrong
        s["problem"] |= wrong
        wraps = seq < seq0 or (seq == 0 and s["stop"] == 65535)
        if ok and wraps and not s["under"]:
            s["cycles"], s["under"] = s["cycles"] + 1, True
        elif ok and seq > seq0 and s["under"]:
            s["under"] = False
        if ok and (s["seq"] + 1 == seq or (s["seq"] == 65535 and seq == 0)):
            s["seq"] = seq
        elif ok and (s["seq"] + 1 < seq or s["seq"] - seq > 0xFF00):
            s["seq"], s["errors"], s["problem"] = seq, s["errors"] + 1, True
        elif s["seq"] + 1 > seq:
            s["errors"], s["problem"] = s["errors"] + 1, True
        excluded = marker or wrong or pt in (13, 19) or s["pt"] in (13, 19)
        s["pt"] = pt
        if ok:
            if rate:
                nominal = ((ts - ts0) & 0xFFFFFFFF) / (rate // 1000)
                expected = s["time"] + (nominal - s["nominal"])
                s["jitter"] = (15 * s["jitter"] + abs(time_ms - expected)) / 16
                s["nominal"] = nominal
            s["delta"] = time_ms - s["time"]
            s["time"] = time_ms
        if not excluded:
            d, j = s["delta"], s["jitter"]
            s["max_d"], s["mean_d"] = max(s["max_d"], d), (s["mean_d"] * (n - 1) + d) / n
            s["min_d"] = d if s["min_d"] is None else min(s["min_d"], d)
            if rate:
                s["max_j"], s["mean_j"] = max(s["max_j"], j), (s["mean_j"] * (n - 1) + j) / n
                s["min_j"] = j if s["min_j"] is None else min(s["min_j"], j)
        s["stop"] = seq
    expected = s["stop"] + s["cycles"] * 65536 - seq0 + 1
    return RtpStats(len(packets), expected, expected - len(packets), s["errors"], s["min_d"],
                    s["mean_d"], s["max_d"], s["min_j"], s["mean_j"], s["max_j"], s["problem"])


def ours(packets) -> RtpStats:
    cols = list(zip(*packets))
    return stream_stats(np.array(cols[0]), np.array(cols[1]), np.array(cols[2]), np.array(cols[3]),
                        np.array(cols[4], bool), np.array(cols[5]))


def printed(stats: RtpStats) -> tuple:
    return tuple(f"{v:.3f}" if isinstance(v, float) else v for v in
                 (stats.packets, stats.expected, stats.lost, stats.sequence_errors, stats.min_delta_ms,
                  stats.mean_delta_ms, stats.max_delta_ms, stats.min_jitter_ms, stats.mean_jitter_ms,
                  stats.max_jitter_ms, stats.problem))


def random_stream(rnd: random.Random, n: int, clean: bool) -> list[tuple]:
    """n packets: loss, jitter, and unless `clean` also duplicates, late packets, events, comfort
    noise, markers, timestamps from the past and sequence jumps."""
    seq, ts, t = rnd.choice([rnd.getrandbits(16), 65500]), rnd.getrandbits(32), rnd.random() * 100
    out = []
    for _ in range(n):
        r = rnd.random()
        pt, marker, rate, this_ts, this_seq = 0, False, 8000, ts, seq
        if r < 0.05:
            pass
        elif clean or r > 0.25:
            out.append((t + abs(rnd.gauss(0, 3)), seq & 0xFFFF, ts & 0xFFFFFFFF, pt, r > 0.999, rate))
        else:
            kind = rnd.randrange(6)
            if kind == 0:
                this_seq -= rnd.randint(0, 5)                       # duplicate or late
            elif kind == 1:
                pt, rate = 101, 0                                   # telephone-event
            elif kind == 2:
                pt, marker = rnd.choice([13, 19, 0]), True          # comfort noise / marker
            elif kind == 3:
                this_ts -= rnd.choice([320, 10**9, 3 * 10**9])      # timestamp from the past
            elif kind == 4:
                seq += rnd.choice([300, 40000, -300])               # a jump
                this_seq = seq
            out.append((t + abs(rnd.gauss(0, 30)), this_seq & 0xFFFF, this_ts & 0xFFFFFFFF, pt,
                        marker, rate))
        seq, ts, t = seq + 1, ts + 160, t + 20.0
    return out


@pytest.mark.parametrize("seed", range(40))
def test_random_streams_print_as_the_per_packet_rules(seed):
    rnd = random.Random(seed)
    packets = random_stream(rnd, rnd.choice([1, 2, 3, 50, 700, 3000]), clean=seed % 2 == 0)
    theirs, mine = reference(packets), ours(packets)
    assert printed(mine) == printed(theirs)
    for a, b in zip((mine.mean_delta_ms, mine.mean_jitter_ms, mine.max_jitter_ms),
                    (theirs.mean_delta_ms, theirs.mean_jitter_ms, theirs.max_jitter_ms)):
        assert abs(a - b) <= 1e-9 * max(1.0, abs(b))


def test_a_mean_on_a_rounding_boundary_is_computed_in_wiresharks_order(monkeypatch):
    """Packets 62.5 us apart: the mean delta is 0.0625 ms exactly, which '%.3f' prints as
    0.062 only if no rounding error pushes it up; the closed form defers to the sequential
    arithmetic there."""
    sequential, running_mean = [], rtp_stats._running_mean
    monkeypatch.setattr(rtp_stats, "_running_mean", lambda *a: sequential.append(a) or running_mean(*a))
    packets = [(0.0625 * i, i, 160 * i, 0, False, 8000) for i in range(1000)]
    mine = ours(packets)
    assert sequential and printed(mine) == printed(reference(packets))
    assert mine.mean_delta_ms == 0.0625

