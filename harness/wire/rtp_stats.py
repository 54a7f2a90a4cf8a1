"""RTP stream statistics computed exactly as Wireshark 4.0 (`tshark -z rtp,streams`) does.

The rules (measured against tshark 4.0.17, see tests/integration/test_wire_tshark.py):
- Times are the capture times relative to the first frame of the file, in ms (`relative_ms`).
- Jitter is RFC 3550's J += (|D| - J) / 16, where the expected arrival of a packet is the
  previous packet's arrival plus the RTP-timestamp advance since the last packet that has a
  clock rate. Packets without a clock rate (telephone-event, unknown dynamic payload types)
  update neither the jitter nor that timestamp reference, but they do become the "previous
  arrival": so the first audio packet after a DTMF event is measured against the last event
  packet's arrival and the last audio packet's timestamp, and usually shows a jitter spike.
- A packet with the marker bit, a comfort-noise packet (PT 13 or 19), the packet after one,
  and a packet whose timestamp is before the first packet's are left out of the min/mean/max
  delta and jitter; event packets without the marker bit count in the deltas only.
- Means divide the running sum by the number of packets seen before this one.
- Expected packets = last sequence number (+ 65536 per wrap) - first + 1; lost = expected -
  received (negative with duplicates).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_CN = (13, 19)
#: Wireshark's clock rates of static payload types (ui/tap-rtp-analysis.c clock_map).
STATIC_CLOCK_RATES = {0: 8000, 1: 8000, 2: 8000, 3: 8000, 4: 8000, 5: 8000, 6: 16000, 7: 8000,
                      8: 8000, 9: 8000, 10: 44100, 11: 44100, 12: 8000, 13: 8000, 14: 90000,
                      15: 8000, 16: 11025, 17: 22050, 18: 8000, 19: 8000, 25: 90000,
                      26: 90000, 28: 90000, 31: 90000, 32: 90000, 33: 90000, 34: 90000}
#: Clock rates Wireshark knows by encoding name for dynamic payload types.
NAMED_CLOCK_RATES = {"amr": 8000, "amr-wb": 16000, "evs": 16000, "g7221": 16000,
                     "opus": 48000, "red": 1000, "t140": 1000, "h264": 90000}


def relative_ms(ts_ns: np.ndarray, start_ns: int) -> np.ndarray:
    """Capture times relative to `start_ns` in ms, rounded as Wireshark's nstime_to_msec does
    (seconds * 1000 + nanoseconds / 1e6), so that a delta on a rounding boundary of the three
    decimals tshark prints comes out the same."""
    secs, nsecs = np.divmod(np.asarray(ts_ns, np.int64) - start_ns, 1_000_000_000)
    return secs.astype(np.float64) * 1000 + nsecs.astype(np.float64) / 1_000_000


def clock_rate(payload_type: int, encoding: tuple[str, int] | None) -> int:
    """The clock rate Wireshark analyses a payload type with; 0 means "no jitter for it"."""
    if payload_type < 96:
        return STATIC_CLOCK_RATES.get(payload_type, 0)
    if encoding is None or encoding[0].lower().startswith("telephone-event"):
        return 0
    rate = encoding[1] or NAMED_CLOCK_RATES.get(encoding[0].lower(), 0)
    return rate if rate >= 1000 else 0  # Wireshark divides timestamps by rate // 1000


@dataclass(frozen=True, slots=True)
class RtpStats:
    """What `tshark -q -z rtp,streams` prints for a stream (times in ms; None = no value)."""

    packets: int
    expected: int
    lost: int
    sequence_errors: int
    min_delta_ms: float | None
    mean_delta_ms: float
    max_delta_ms: float
    min_jitter_ms: float | None
    mean_jitter_ms: float
    max_jitter_ms: float
    #: Wireshark's "Problems?" mark: a sequence error or a timestamp before the first one.
    problem: bool

    @property
    def lost_percent(self) -> float:
        return 100.0 * self.lost / self.expected if self.expected else 0.0


def stream_stats(time_ms: np.ndarray, seq: np.ndarray, ts: np.ndarray, pt: np.ndarray,
                 marker: np.ndarray, rate: np.ndarray) -> RtpStats:
    """The statistics of one stream from its packets' columns, in capture order: relative
    capture time (ms), sequence number, RTP timestamp, payload type, marker bit, clock rate.

    All with numpy. The jitter and the running means are recurrences: they are evaluated
    in closed form (`_jitter_scan`, `_mean_scan`), within a bound of what Wireshark's
    sequential arithmetic gives; a value whose bound straddles a rounding boundary of the
    3 decimals tshark prints is recomputed in Wireshark's order of operations, so the
    printed numbers are always the same. The sequence-number state machine is only stepped
    through in Python when packets arrive late or out of time.
    """
    n = len(seq)
    if n == 0:
        return RtpStats(0, 0, 0, 0, None, 0.0, 0.0, None, 0.0, 0.0, False)
    seq = seq.astype(np.int64)
    in_time, arrival, updates, deviation = _timing(time_ms, ts, rate)
    wrong_ts = ~in_time
    cn = np.isin(pt, _CN)
    counted = ~(marker | wrong_ts | cn | np.concatenate(([True], cn[:-1])))
    counted[0] = False
    at = np.flatnonzero(counted)
    delta = time_ms[at] - arrival[at]
    with_rate = at[rate[at] > 0]
    jitter_of = np.searchsorted(updates, with_rate)  # each counted audio packet's jitter
    mean_delta, min_jitter, mean_jitter, max_jitter = _printed_floats(
        at, delta, with_rate, deviation, jitter_of)
    errors = _sequence_errors(seq, in_time)
    expected_packets = int(seq[-1]) + _cycles(seq, in_time) * 65536 - int(seq[0]) + 1
    return RtpStats(
        n, expected_packets, expected_packets - n, errors,
        float(delta.min()) if len(at) else None, mean_delta,
        max(0.0, float(delta.max())) if len(at) else 0.0, min_jitter, mean_jitter, max_jitter,
        bool(wrong_ts.any()) or errors > 0)


def packet_series(time_ms: np.ndarray, ts: np.ndarray, rate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per packet, as Wireshark's RTP Stream Analysis lists them: the delta (ms since the
    previous in-time packet's arrival; 0 for the first) and the jitter after it (ms)."""
    n = len(ts)
    if n == 0:
        return np.zeros(0), np.zeros(0)
    _, arrival, updates, deviation = _timing(time_ms, ts, rate)
    delta = time_ms - arrival
    delta[0] = 0.0
    jitter = np.concatenate(([0.0], _jitter_scan(deviation)))
    return delta, jitter[np.searchsorted(updates, np.arange(n), side="right")]


def _timing(time_ms: np.ndarray, ts: np.ndarray, rate: np.ndarray):
    """(in time, previous in-time arrival, packets that update the jitter, their |D|)."""
    n = len(ts)
    rel_ts = (ts.astype(np.int64) - int(ts[0])) & 0xFFFFFFFF
    in_time = rel_ts < 0x80000000
    last_in_time = np.maximum.accumulate(np.where(in_time, np.arange(n), 0))
    arrival = time_ms[np.concatenate(([0], last_in_time[:-1]))]  # previous in-time packet's
    updates = np.flatnonzero(in_time & (rate > 0))
    updates = updates[updates > 0]
    nominal = rel_ts[updates] / (rate[updates] // 1000)
    expected = arrival[updates] + (nominal - np.concatenate(([0.0], nominal[:-1])))
    return in_time, arrival, updates, np.abs(time_ms[updates] - expected)


_EPS = float(np.finfo(np.float64).eps)
_BLOCK = 256
_A = 15 / 16
_UP, _DOWN = _A ** -np.arange(_BLOCK), _A ** np.arange(_BLOCK)


def _printed_floats(at, delta, with_rate, deviation, jitter_of) -> tuple[float, ...]:
    """(mean delta, min, mean and max jitter) as tshark prints them (see stream_stats)."""
    jitter = _jitter_scan(deviation)
    fast = _floats(_mean_scan(at, delta), jitter[jitter_of], _mean_scan(with_rate, jitter[jitter_of]))
    jitter_error = 64 * _BLOCK * _EPS * float(jitter.max(initial=0.0))
    bounds = [_mean_error(at, delta), _mean_error(with_rate, jitter[jitter_of]) + jitter_error,
              jitter_error, jitter_error]
    if all(v is None or f"{v - e:.3f}" == f"{v + e:.3f}" for v, e in zip(fast, bounds)):
        return fast
    jitter = np.array(_jitter(deviation.tolist()))
    return _floats(_running_mean(at, delta), jitter[jitter_of],
                   _running_mean(with_rate, jitter[jitter_of]))


def _floats(mean_delta: float, jitter: np.ndarray, mean_jitter: float) -> tuple[float, ...]:
    return (mean_delta, float(jitter.min()) if len(jitter) else None, mean_jitter,
            max(0.0, float(jitter.max())) if len(jitter) else 0.0)


def _jitter_scan(deviation: np.ndarray) -> np.ndarray:
    """RFC 3550 jitter after each packet, J = (15 J + |D|) / 16 from 0, by blocks: within a
    block J_t = a^t (a J_in + sum_{j <= t} a^-j D_j / 16) with a = 15/16, and only the
    blocks' entry values J_in are carried from block to block in Python."""
    n = len(deviation)
    blocks = -(-n // _BLOCK)
    d = np.zeros(blocks * _BLOCK)
    d[:n] = deviation / 16
    sums = np.cumsum(d.reshape(blocks, _BLOCK) * _UP, axis=1)
    entry, j, step = np.empty(blocks), 0.0, _A ** _BLOCK
    for i, inside in enumerate((_DOWN[-1] * sums[:, -1]).tolist()):
        entry[i] = j
        j = step * j + inside
    return (_DOWN * (_A * entry[:, None] + sums)).ravel()[:n]


def _jitter(deviations: list[float]) -> list[float]:
    """The same jitter in Wireshark's order of operations, one packet at a time."""
    out, j = [], 0.0
    append = out.append
    for d in deviations:
        j = (15 * j + d) / 16
        append(j)
    return out


def _mean_scan(at: np.ndarray, values: np.ndarray) -> float:
    """Wireshark's running mean (see `_running_mean`) in closed form: S = mean * i obeys
    S_k = S_{k-1} (i_k - 1) / i_{k-1} + x_k, so with G the running product of those
    factors, mean = G_K / i_K * sum_k x_k / G_k."""
    if not len(at):
        return 0.0
    index = at.astype(np.float64)
    factors = np.ones(len(at))
    factors[1:] = (index[1:] - 1) / index[:-1]
    growth = np.cumprod(factors)
    return float(np.sum(values / growth) * growth[-1] / index[-1])


def _mean_error(at: np.ndarray, values: np.ndarray) -> float:
    """A bound on |_mean_scan - _running_mean|: a few roundings per value, none amplified."""
    return 8 * len(at) * _EPS * float(np.abs(values).max(initial=0.0))


def _running_mean(at: np.ndarray, values: np.ndarray) -> float:
    """Wireshark's mean: at packet index i, mean = (mean * (i - 1) + value) / i."""
    mean = 0.0
    for i, value in zip(at.tolist(), values.tolist()):
        mean = (mean * (i - 1) + value) / i
    return mean


def _cycles(seq: np.ndarray, in_time: np.ndarray) -> int:
    """Sequence-number wraps: a latch set by an in-time packet below the first sequence number
    (or 0 after 65535) and reset by one above it; each setting counts a cycle."""
    first, cur, ok = seq[0], seq[1:], in_time[1:]
    below = ok & ((cur < first) | ((cur == 0) & (seq[:-1] == 65535)))
    events = below[below | (ok & (cur > first))]
    return int(np.count_nonzero(events & ~np.concatenate(([False], events[:-1]))))


def _sequence_errors(seq: np.ndarray, in_time: np.ndarray) -> int:
    """Packets that are not the next sequence number after the highest one accepted."""
    prev, cur = seq[:-1], seq[1:]
    follows = (prev + 1 == cur) | ((prev == 65535) & (cur == 0))
    jumps = ~follows & ((prev + 1 < cur) | (prev - cur > 0xFF00))
    if in_time.all() and (follows | jumps).all():  # each packet is accepted: no state needed
        return int(np.count_nonzero(jumps))
    accepted, errors = int(seq[0]), 0
    for s, ok in zip(cur.tolist(), in_time[1:].tolist()):
        if ok and (accepted + 1 == s or (accepted == 65535 and s == 0)):
            accepted = s
        elif ok and (accepted + 1 < s or accepted - s > 0xFF00):
            accepted, errors = s, errors + 1
        elif accepted + 1 > s:
            errors += 1
    return errors
