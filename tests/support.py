"""What both tiers' tests share: the checkout's paths, a free port, and the system tools and
privileges a test needs, failing with a clear set-up message when they are missing. Tests
import these from `conftest`, which re-exports them in each tier."""
from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROFILES = ROOT / "sip_profiles"
TEST_DATA = ROOT / "tests" / "data"
SMA_ID = "5f0e8c2a-6d1b-4c55-9a3e-2b7f1e0d9c41"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port of 127.0.0.1 nothing holds now (TCP by default)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def require_tool(name: str) -> str:
    """The path of a system tool the tests use as a real peer; a clear setup failure if absent."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"setup: {name!r} is not installed; run `make test` (it installs the Debian "
                    f"packages sip-tester, tshark, espeak-ng, libpcap0.8, chromium, docker-compose, docker.io, "
                    f"debootstrap, nodejs) or "
                    f"`bash scripts/setup-system.sh`", pytrace=False)
    return path


def require_capture() -> None:
    """Live captures need CAP_NET_RAW: a clear setup failure without it (CI runs as root)."""
    if os.geteuid() != 0:
        pytest.fail("setup: live capture needs CAP_NET_RAW: run the tests as root, or grant it with "
                    "`setcap cap_net_raw+ep $(readlink -f .venv/bin/python)`", pytrace=False)


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.02):
    """Poll `predicate` until it returns a truthy value or `timeout` passes (returns it)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
