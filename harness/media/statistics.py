"""Reception statistics of one RTP source, as RFC 3550 appendix A computes them: sequence
validation and extension (A.1), loss (A.3) and interarrival jitter (A.8)."""
from __future__ import annotations

from .rtcp import ReportBlock

MAX_DROPOUT = 3000
MAX_MISORDER = 100


def signed32(value: int) -> int:
    """A 32-bit difference (of RTP timestamps) as a signed number."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


class ReceptionStats:
    """Counts what arrived from the far end's current SSRC; a new SSRC starts afresh."""

    def __init__(self, clock_rate: int = 8000):
        self.clock_rate = clock_rate
        self._restart(None, 0)

    def _restart(self, ssrc: int | None, seq: int) -> None:
        self.ssrc = ssrc
        self.base_seq = self.max_seq = seq
        self.cycles = 0
        self.bad_seq: int | None = None
        self.received = 0
        self.expected_prior = self.received_prior = 0
        self.jitter = 0.0
        self._last: tuple[float, int] | None = None

    def update(self, ssrc: int, seq: int, timestamp: int, arrival: float,
               timed: bool = True) -> bool:
        """Account for one packet that arrived at `arrival` seconds. `timed` is False for packets
        whose timestamp does not follow the sampling clock (RFC 4733 events), which are left
        out of the jitter. Returns False for a packet A.1 rejects (a jump not yet confirmed)."""
        if ssrc != self.ssrc:
            self._restart(ssrc, seq)
        else:
            delta = (seq - self.max_seq) & 0xFFFF
            if delta < MAX_DROPOUT:
                if seq < self.max_seq:
                    self.cycles += 1 << 16
                self.max_seq = seq
            elif delta <= 0x10000 - MAX_MISORDER:
                if seq != self.bad_seq:
                    self.bad_seq = (seq + 1) & 0xFFFF
                    return False
                self._restart(ssrc, seq)  # two sequential packets: the source restarted
        self.received += 1
        if timed:
            if self._last is not None:
                last_arrival, last_ts = self._last
                d = (arrival - last_arrival) * self.clock_rate - signed32(timestamp - last_ts)
                self.jitter += (abs(d) - self.jitter) / 16
            self._last = (arrival, timestamp)
        return True

    @property
    def extended_max(self) -> int:
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        return self.extended_max - self.base_seq + 1 if self.ssrc is not None else 0

    @property
    def lost(self) -> int:
        """Cumulative packets lost (negative when duplicates arrived)."""
        return self.expected - self.received if self.ssrc is not None else 0

    def report_block(self, last_sr: int = 0, delay_since_last_sr: int = 0) -> ReportBlock:
        """The report block for the next RTCP report; starts a new loss-fraction interval."""
        expected_interval = self.expected - self.expected_prior
        received_interval = self.received - self.received_prior
        self.expected_prior, self.received_prior = self.expected, self.received
        lost_interval = expected_interval - received_interval
        fraction = (lost_interval << 8) // expected_interval if expected_interval and lost_interval > 0 else 0
        return ReportBlock(self.ssrc, min(fraction, 255), self.lost, self.extended_max & 0xFFFFFFFF,
                           int(self.jitter), last_sr, delay_since_last_sr)
