"""RTP stream statistics computed exactly as Wireshark 4.0 (`tshark -z rtp,streams`) does.

The rules (measured against tshark 4.0.17, see tests/test_wire_tshark.py):
- Times are the capture times relative to the first frame of the file, in ms.
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

_CN = (13, 19)
#: Wireshark's clock rates of static payload types (ui/tap-rtp-analysis.c clock_map).
STATIC_CLOCK_RATES = {0: 8000, 1: 8000, 2: 8000, 3: 8000, 4: 8000, 5: 8000, 6: 16000, 7: 8000,
                      8: 8000, 9: 8000, 10: 44100, 11: 44100, 12: 8000, 13: 8000, 14: 90000,
                      15: 8000, 16: 11025, 17: 22050, 18: 8000, 19: 8000, 25: 90000,
                      26: 90000, 28: 90000, 31: 90000, 32: 90000, 33: 90000, 34: 90000}
#: Clock rates Wireshark knows by encoding name for dynamic payload types.
NAMED_CLOCK_RATES = {"amr": 8000, "amr-wb": 16000, "evs": 16000, "g7221": 16000,
                     "opus": 48000, "red": 1000, "t140": 1000, "h264": 90000}


def clock_rate(payload_type: int, encoding: tuple[str, int] | None) -> int:
    """The clock rate Wireshark analyses a payload type with; 0 means "no jitter for it"."""
    if payload_type < 96:
        return STATIC_CLOCK_RATES.get(payload_type, 0)
    if encoding is None or encoding[0].lower().startswith("telephone-event"):
        return 0
    return encoding[1] or NAMED_CLOCK_RATES.get(encoding[0].lower(), 0)


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


def _unset_last(value: float | None) -> float:
    return float("inf") if value is None else value


class StatsAccumulator:
    """Feed packets in capture order with `add`; read the result with `result`."""

    def __init__(self) -> None:
        self._n = 0

    def add(self, time_ms: float, seq: int, ts: int, pt: int, marker: bool, rate: int) -> None:
        """Account one packet: its relative capture time, header fields and clock rate."""
        if self._n == 0:
            self._start(time_ms, seq, ts, pt)
            return
        wrong_ts = not ((ts - self._first_ts) & 0xFFFFFFFF) < 0x80000000
        in_time = not wrong_ts
        self._problem |= wrong_ts
        self._sequence(seq, in_time)
        excluded = marker or wrong_ts or pt in _CN or self._pt in _CN
        self._pt = pt
        jitter_now = None
        if in_time:
            if rate:
                nominal = ((ts - self._first_ts) & 0xFFFFFFFF) / (rate // 1000)
                expected = self._time + (nominal - self._last_nominal)
                jitter_now = (15 * self._jitter + abs(time_ms - expected)) / 16
                self._jitter = jitter_now
                self._last_nominal = nominal
            self._delta = time_ms - self._time
        if not excluded:
            n = self._n
            self._max_delta = max(self._max_delta, self._delta)
            self._min_delta = min(self._min_delta, self._delta, key=_unset_last)
            self._mean_delta = (self._mean_delta * (n - 1) + self._delta) / n
            if rate:
                current = jitter_now if jitter_now is not None else 0.0
                self._max_jitter = max(self._max_jitter, self._jitter)
                self._mean_jitter = (self._mean_jitter * (n - 1) + current) / n
                self._min_jitter = min(self._min_jitter, self._jitter, key=_unset_last)
        if in_time:
            self._time = time_ms
        self._stop_seq = seq
        self._n += 1

    def _start(self, time_ms: float, seq: int, ts: int, pt: int) -> None:
        self._n = 1
        self._start_seq = self._stop_seq = self._seq = seq
        self._first_ts, self._time, self._pt = ts, time_ms, pt
        self._last_nominal = self._delta = self._jitter = 0.0
        self._max_delta = self._mean_delta = self._max_jitter = self._mean_jitter = 0.0
        self._min_delta: float | None = None
        self._min_jitter: float | None = None
        self._cycles, self._under, self._seq_errors, self._problem = 0, False, 0, False

    def _sequence(self, seq: int, in_time: bool) -> None:
        if in_time and seq < self._start_seq and not self._under:
            self._cycles, self._under = self._cycles + 1, True
        elif in_time and seq == 0 and self._stop_seq == 65535 and not self._under:
            self._cycles, self._under = self._cycles + 1, True
        elif in_time and seq > self._start_seq and self._under:
            self._under = False
        if in_time and (self._seq + 1 == seq or (self._seq == 65535 and seq == 0)):
            self._seq = seq
        elif in_time and (self._seq + 1 < seq or self._seq - seq > 0xFF00):
            self._seq = seq
            self._seq_errors += 1
            self._problem = True
        elif self._seq + 1 > seq:
            self._seq_errors += 1
            self._problem = True

    def result(self) -> RtpStats:
        """The statistics of the packets added so far."""
        if self._n == 0:
            return RtpStats(0, 0, 0, 0, None, 0.0, 0.0, None, 0.0, 0.0, False)
        expected = self._stop_seq + self._cycles * 65536 - self._start_seq + 1
        return RtpStats(self._n, expected, expected - self._n, self._seq_errors,
                        self._min_delta, self._mean_delta, self._max_delta, self._min_jitter,
                        self._mean_jitter, self._max_jitter, self._problem)
