"""Port lanes: runs that share a machine (pytest-xdist workers, `run -j` processes, several
developers or CI jobs on one host) take their RTP ports from lanes of their own, so that no
run's capture or media socket meets another's packets.

A lane is held, not assumed: the first time a process asks, it takes an exclusive lock on the
lane's file in the machine's temporary folder (`sip-harness-lanes/lane-N.lock`), trying its
preferred lane first (`SIP_HARNESS_LANE`, else N of `PYTEST_XDIST_WORKER=gwN`) and then the
others, and keeps it until it exits. Its children (caller workers, handler workers) inherit
the lane through `SIP_HARNESS_LANE_HELD`, which names the lane and the pytest-xdist worker it
was taken for, so xdist's workers, which inherit their controller's environment, take lanes
of their own. Two `make test` runs at once on one host thus use different lanes; only when
all `LANES` are held does a process share its preferred one (and says so in the log).
"""
from __future__ import annotations

import fcntl
import logging
import os
import tempfile
from pathlib import Path

LANES = 8
LANE_ENV = "SIP_HARNESS_LANE"
HELD_ENV = "SIP_HARNESS_LANE_HELD"
LOCKS = Path(tempfile.gettempdir()) / "sip-harness-lanes"

log = logging.getLogger(__name__)
_held: tuple[int, int | None] | None = None  # (lane, the lock's file descriptor) of this process


def preferred() -> int:
    """The lane this process asks for first."""
    worker = os.environ.get(LANE_ENV) or os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    return int(worker) % LANES if worker.isdigit() else 0


def _inherited() -> int | None:
    lane, _, worker = os.environ.get(HELD_ENV, "").partition(" ")
    if lane.isdigit() and worker == os.environ.get("PYTEST_XDIST_WORKER", ""):
        return int(lane) % LANES
    return None


def _lock(lane: int) -> int | None:
    LOCKS.mkdir(parents=True, exist_ok=True)
    fd = os.open(LOCKS / f"lane-{lane}.lock", os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def lane() -> int:
    """This process's lane, taken (or inherited) the first time it is asked for."""
    global _held
    if _held is None:
        inherited = _inherited()
        if inherited is not None:
            _held = (inherited, None)
        else:
            first = preferred()
            for candidate in [first, *(n for n in range(LANES) if n != first)]:
                fd = _lock(candidate)
                if fd is not None:
                    _held = (candidate, fd)
                    break
            else:
                log.warning("all %d port lanes are held by other runs; sharing lane %d", LANES, first)
                _held = (first, None)
        os.environ[HELD_ENV] = f"{_held[0]} {os.environ.get('PYTEST_XDIST_WORKER', '')}"
    return _held[0]


def take_own_lane(prefer: int) -> None:
    """Make this process (a `run -j` worker, forked or spawned by a process that may hold a
    lane) take a lane of its own, `prefer` first, the next time it asks."""
    global _held
    _held = None  # a forked worker shares its parent's lock; it must not use that lane
    os.environ.pop(HELD_ENV, None)
    os.environ[LANE_ENV] = str(prefer % LANES)
