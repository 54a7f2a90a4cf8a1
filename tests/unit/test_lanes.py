"""Port lanes are held, not assumed: two runs that ask for the same lane at once get two,
their children keep their parent's, and `run -j` workers take their own."""
from __future__ import annotations

import os
import subprocess
import sys

from harness import lanes

ASK = ("import subprocess, sys; from harness.lanes import lane; print(lane(), flush=True);"
       "child = subprocess.run([sys.executable, '-c', 'from harness.lanes import lane; print(lane())'],"
       " capture_output=True, text=True); print(child.stdout.strip(), flush=True); sys.stdin.read()")


def asker(tmp_path, **env):
    clean = {k: v for k, v in os.environ.items()  # the test's own lane asks nothing of theirs
             if k not in (lanes.HELD_ENV, lanes.LANE_ENV, "PYTEST_XDIST_WORKER")}
    return subprocess.Popen([sys.executable, "-c", ASK], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env={**clean, "TMPDIR": str(tmp_path), **env})


def test_two_runs_asking_for_the_same_lane_get_two_and_their_children_keep_theirs(tmp_path):
    first = asker(tmp_path, PYTEST_XDIST_WORKER="gw2")
    own, child = first.stdout.readline(), first.stdout.readline()
    second = asker(tmp_path, PYTEST_XDIST_WORKER="gw2")  # another `make test` on the host
    other, other_child = second.stdout.readline(), second.stdout.readline()
    try:
        assert (own, child) == ("2\n", "2\n")
        assert other == other_child and other != own
    finally:
        for proc in (first, second):
            proc.communicate("")
    third = asker(tmp_path, PYTEST_XDIST_WORKER="gw2")  # the lane is free again once they exit
    assert third.communicate("")[0].splitlines() == ["2", "2"]


def test_an_xdist_worker_does_not_take_its_controllers_lane(tmp_path):
    controller = asker(tmp_path)
    held = controller.stdout.readline()
    env = {lanes.HELD_ENV: f"{held.strip()} ", "PYTEST_XDIST_WORKER": "gw0"}  # inherited, as xdist does
    worker = asker(tmp_path, **env)
    try:
        assert held == "0\n" and worker.stdout.readline() != held
    finally:
        controller.communicate("")
        worker.communicate("")


def test_a_run_j_worker_takes_a_lane_of_its_own(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(lanes, "LOCKS", tmp_path / "sip-harness-lanes")
    monkeypatch.setattr(lanes, "_held", (3, None))
    monkeypatch.setenv(lanes.HELD_ENV, "3 ")
    monkeypatch.delenv(lanes.LANE_ENV, raising=False)  # restored afterwards
    lanes.take_own_lane(5)
    assert lanes.HELD_ENV not in os.environ and os.environ[lanes.LANE_ENV] == "5"
    try:
        assert lanes.lane() == 5
    finally:
        os.close(lanes._held[1])


def test_runs_a_process_has_going_at_once_get_blocks_of_their_own_in_its_lane():
    """A module's `serve` beside a test's stub: each takes its RTP block from this process's
    lane, and no two of the lane's blocks handed out in a row are the same."""
    from harness.run.setup import RTP_BASE, RTP_BASE_LIMIT, RTP_PORTS_PER_RUN, rtp_block
    per_lane = (RTP_BASE_LIMIT - RTP_BASE) // RTP_PORTS_PER_RUN // lanes.LANES
    blocks = [rtp_block() for _ in range(per_lane)]
    assert len(set(blocks)) == per_lane
    assert all(RTP_BASE <= b and b + RTP_PORTS_PER_RUN <= RTP_BASE_LIMIT for b in blocks)
    assert {(b - RTP_BASE) // RTP_PORTS_PER_RUN % lanes.LANES for b in blocks} == {lanes.lane()}
