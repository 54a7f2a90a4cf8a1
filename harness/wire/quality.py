"""Listening quality of an RTP stream: the ITU-T G.107 (06/2015) E-model R-factor and MOS.

R = Ro - Is - Id - Ie,eff + A, every transmission parameter at its G.107 default (Table 3:
SLR 8, RLR 2, STMR 15, LSTR 18, Ds = Dr = 3, TELR 65, WEPL 110, qdu 1, Nc -70, Nfor -64,
Ps = Pr = 35, A 0), which alone give R = 93.2. What the capture tells goes into:

- the codec's equipment impairment Ie and packet-loss robustness Bpl (ITU-T G.113
  Appendix I: G.711 with packet loss concealment Ie 0, Bpl 25.1; G.729A Ie 11, Bpl 19);
- Ppl, the packet loss in percent: the larger of the loss seen in the capture and the loss the
  receiver reports in RTCP (the capture point may be before the loss);
- BurstR, the burst ratio, from the capture's loss pattern as a two-state Markov chain:
  p = P(lost | previous received), q = P(received | previous lost), BurstR = 1 / (p + q)
  (1 for random loss, above 1 for bursts);
- the one-way delay T = Ta (and Tr = 2T): half the round trip time (RTCP LSR/DLSR when
  reported, else the quickest SIP request-to-response time of the call seen in the capture)
  + the packet time + a jitter buffer of twice the stream's mean jitter.

MOS = 1 + 0.035 R + R (R - 60) (100 - R) 7e-6 (G.107 Annex B), 1 below R 0, 4.5 above 100.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: encoding name -> (Ie, Bpl), ITU-T G.113 Appendix I
CODEC_IMPAIRMENTS = {"PCMU": (0.0, 25.1), "PCMA": (0.0, 25.1), "G729": (11.0, 19.0)}
# G.107 Table 3 defaults
SLR, RLR, STMR, LSTR, DS, DR, TELR, WEPL = 8.0, 2.0, 15.0, 18.0, 3.0, 3.0, 65.0, 110.0
QDU, NC, NFOR, PS, PR, A = 1.0, -70.0, -64.0, 35.0, 35.0, 0.0


@dataclass(frozen=True, slots=True)
class Quality:
    """An E-model estimate and every input it was computed from."""

    codec: str
    ie: float
    bpl: float
    #: packet loss in percent, and where it came from: "capture" or "rtcp"
    ppl: float
    loss_source: str
    burst_ratio: float
    #: one-way delay T = Ta in ms, and its parts
    delay_ms: float
    network_delay_ms: float
    delay_source: str
    packet_time_ms: float
    jitter_buffer_ms: float
    r_factor: float
    mos: float

    def inputs(self) -> dict:
        """The inputs as named in G.107 (for reports)."""
        return {"codec": self.codec, "Ie": self.ie, "Bpl": self.bpl, "Ppl": round(self.ppl, 3),
                "loss_source": self.loss_source, "BurstR": round(self.burst_ratio, 3),
                "T_ms": round(self.delay_ms, 1), "network_delay_ms": round(self.network_delay_ms, 1),
                "delay_source": self.delay_source, "packet_time_ms": round(self.packet_time_ms, 1),
                "jitter_buffer_ms": round(self.jitter_buffer_ms, 1)}


def mos_from_r(r: float) -> float:
    """G.107 Annex B: the estimated mean opinion score of an R-factor."""
    if r <= 0:
        return 1.0
    if r >= 100:
        return 4.5
    return 1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6


def r_factor(ppl: float, burst_ratio: float, delay_ms: float, ie: float, bpl: float) -> float:
    """G.107 R with the default parameters, packet loss `ppl` (percent), `burst_ratio`,
    one-way delay T = Ta = `delay_ms` (Tr = 2T), and the codec's Ie and Bpl."""
    t = ta = delay_ms
    tr = 2 * delay_ms
    olr = SLR + RLR
    # basic signal-to-noise ratio Ro
    pre = PR + 10 * math.log10(1 + 10 ** ((10 - LSTR) / 10))
    nor = RLR - 121 + pre + 0.008 * (pre - 35) ** 2
    nos = PS - SLR - DS - 100 + 0.004 * (PS - olr - DS - 14) ** 2
    nfo = NFOR + RLR
    no = 10 * math.log10(10 ** (NC / 10) + 10 ** (nos / 10) + 10 ** (nor / 10) + 10 ** (nfo / 10))
    ro = 15 - 1.5 * (SLR + no)
    # simultaneous impairments Is
    xolr = olr + 0.2 * (64 + no - RLR)
    iolr = 20 * ((1 + (xolr / 8) ** 8) ** (1 / 8) - xolr / 8)
    stmro = -10 * math.log10(10 ** (-STMR / 10) + math.exp(-t / 4) * 10 ** (-TELR / 10))
    ist = (12 * (1 + ((stmro - 13) / 6) ** 8) ** (1 / 8)
           - 28 * (1 + ((stmro + 1) / 19.4) ** 35) ** (1 / 35)
           - 13 * (1 + ((stmro - 3) / 33) ** 13) ** (1 / 13) + 29)
    q = 37 - 15 * math.log10(QDU)
    g = 1.07 + 0.258 * q + 0.0602 * q ** 2
    iq = 15 * math.log10(1 + 10 ** ((ro - 100) / 15 + 46 / 8.4 - g / 9) + 10 ** (46 / 30 - g / 40))
    is_ = iolr + ist + iq
    # delay impairments Id
    terv = TELR - 40 * math.log10((1 + t / 10) / (1 + t / 150)) + 6 * math.exp(-0.3 * t ** 2)
    roe, re = -1.5 * (no - RLR), 80 + 2.5 * (terv - 14)
    idte = ((roe - re) / 2 + math.sqrt((roe - re) ** 2 / 4 + 100) - 1) * (1 - math.exp(-t))
    rle = 10.5 * (WEPL + 7) * (tr + 1) ** -0.25
    idle = (ro - rle) / 2 + math.sqrt((ro - rle) ** 2 / 4 + 169)
    idd = 0.0
    if ta > 100:
        x = math.log10(ta / 100) / math.log10(2)
        idd = 25 * ((1 + x ** 6) ** (1 / 6) - 3 * (1 + (x / 3) ** 6) ** (1 / 6) + 2)
    # effective equipment impairment Ie,eff
    ie_eff = ie + (95 - ie) * ppl / (ppl / burst_ratio + bpl) if ppl > 0 else ie
    return ro - is_ - (idte + idle + idd) - ie_eff + A


def burst_ratio(lost: np.ndarray) -> float:
    """BurstR of a loss pattern (True = lost, in sequence order): 1 / (p + q) of its two-state
    Markov chain; 1 without loss."""
    lost = np.asarray(lost, bool)
    if len(lost) < 2 or not lost.any() or lost.all():
        return 1.0
    prev, cur = lost[:-1], lost[1:]
    received_before, lost_before = np.count_nonzero(~prev), np.count_nonzero(prev)
    p = np.count_nonzero(~prev & cur) / received_before if received_before else 1.0
    q = np.count_nonzero(prev & ~cur) / lost_before if lost_before else 1.0
    return 1.0 / (p + q) if p + q > 0 else 1.0


def loss_pattern(sequence: np.ndarray) -> np.ndarray:
    """Which sequence numbers from the lowest to the highest were lost (True), from the
    sequence numbers received (capture order; wraps, duplicates and reordering allowed)."""
    seq = np.asarray(sequence, np.int64)
    if not len(seq):
        return np.zeros(0, bool)
    step = (np.diff(seq) + 0x8000) % 0x10000 - 0x8000  # signed distance to the previous one
    extended = np.concatenate(([0], np.cumsum(step)))
    extended -= extended.min()
    received = np.zeros(int(extended.max()) + 1, bool)
    received[extended] = True
    return ~received


def estimate(codec: str, ppl: float, loss_source: str, burst: float, network_delay_ms: float,
             delay_source: str, packet_time_ms: float, mean_jitter_ms: float) -> Quality | None:
    """The E-model estimate of a stream, or None for a codec without G.113 values."""
    if codec.upper() not in CODEC_IMPAIRMENTS:
        return None
    ie, bpl = CODEC_IMPAIRMENTS[codec.upper()]
    jitter_buffer = 2 * mean_jitter_ms
    delay = network_delay_ms + packet_time_ms + jitter_buffer
    r = r_factor(ppl, burst, delay, ie, bpl)
    return Quality(codec.upper(), ie, bpl, ppl, loss_source, burst, delay, network_delay_ms,
                   delay_source, packet_time_ms, jitter_buffer, r, mos_from_r(r))
