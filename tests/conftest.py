"""Shared fixtures: the embedded stub with the bundled handler, and SIPp as an independent peer."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from harness.sma.model import SipMediaApplication, SipRule
from harness.stub import Stub, StubConfig

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


def stub_config(tmp_path: Path, handler: str = "handlers/update_prompt.py", **kw) -> StubConfig:
    sma = SipMediaApplication(SMA_ID, str(PROFILES / handler), name="update-prompt")
    rule = SipRule("rule-1", "ToPhoneNumber", "*", [(1, SMA_ID)])
    return StubConfig([sma], [rule], PROFILES / "bucket", run_dir=tmp_path, **kw)


@pytest.fixture(scope="session")
def bundled_run(tmp_path_factory):
    """`bundled_run(stem)`: the executed `ProfileRun` of the bundled profile `stem`.yaml, made
    once per test process, so the tests that read the same run share it."""
    from harness.profiles.schema import load_profile
    from harness.run.profile import ProfileRun
    runs = {}

    def run(stem: str):
        if stem not in runs:
            runs[stem] = ProfileRun(load_profile(PROFILES / f"{stem}.yaml"), tmp_path_factory.mktemp(stem),
                                    progress=lambda line: None)
            runs[stem].execute()
        return runs[stem]
    return run


@pytest.fixture
def stub(tmp_path):
    with Stub(stub_config(tmp_path)) as s:
        yield s


UNTIL_BYE = ROOT / "harness" / "run" / "load_assets" / "uac_until_bye.xml"


class SippCall:
    """`sipp -sn uac` placing one call into the stub and holding it for `hold_ms`; with
    `until_bye`, a caller that waits for the stub's BYE instead (and fails without one)."""

    def __init__(self, target: str, hold_ms: int, to_user: str = "+14345550101",
                 until_bye: bool = False):
        sipp = require_tool("sipp")
        scenario = ["-sf", str(UNTIL_BYE)] if until_bye else ["-sn", "uac", "-d", str(hold_ms)]
        self.proc = subprocess.Popen(
            [sipp, *scenario, "-s", to_user, "-i", "127.0.0.1", "-p", "0", "-m", "1",
             "-timeout", "30", "-timeout_error", target],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def wait(self, timeout: float = 30) -> int:
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def sipp_call():
    calls = []

    def start(stub: Stub, hold_ms: int = 5000, **kw) -> SippCall:
        call = SippCall(f"127.0.0.1:{stub.sip_port}", hold_ms, **kw)
        calls.append(call)
        return call
    yield start
    for call in calls:
        call.kill()


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.02):
    """Poll `predicate` until it returns a truthy value or `timeout` passes (returns it)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def live_transaction(stub: Stub, timeout: float = 10.0) -> str:
    """The TransactionId of the first call that reached the stub."""
    found = wait_until(lambda: stub.run_in_loop(lambda: list(stub.service.transactions)), timeout)
    assert found, "no call reached the stub"
    return found[0]
