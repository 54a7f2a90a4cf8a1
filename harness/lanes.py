"""Port lanes: runs that share a machine (pytest-xdist workers, developers or CI jobs with
`PYTEST_XDIST_WORKER=gwN`) take their RTP ports from lanes of their own, so that no run's
capture or media socket meets another's packets."""
from __future__ import annotations

import os

LANES = 8


LANE_ENV = "SIP_HARNESS_LANE"


def lane() -> int:
    """This process's lane: `SIP_HARNESS_LANE` (each process of `run -j N` has its own), else
    N of `PYTEST_XDIST_WORKER=gwN`, modulo `LANES` (0 without either)."""
    worker = os.environ.get(LANE_ENV) or os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    return int(worker) % LANES if worker.isdigit() else 0
