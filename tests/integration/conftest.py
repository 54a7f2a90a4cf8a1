"""The integration tier's fixtures: the embedded stub with the bundled handler, the bundled
profiles' runs, and SIPp as an independent peer; with what both tiers share (`support`), as
the tests import it all from `conftest`."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness.run.setup import handler_config
from harness.stub import Stub, StubConfig
from support import PROFILES, ROOT, SMA_ID, TEST_DATA, free_port, require_capture, require_tool, wait_until

__all__ = ["PROFILES", "ROOT", "SMA_ID", "TEST_DATA", "free_port", "require_capture", "require_tool",
           "wait_until", "stub_config", "UNTIL_BYE", "SippCall", "live_transaction"]


def stub_config(tmp_path: Path, handler: str = "handlers/update_prompt.py", **kw) -> StubConfig:
    """The stub's settings for a bundled handler (or any, by path) serving every number, with
    the bundled prompts; `kw` are further StubConfig fields."""
    return handler_config(str(PROFILES / handler), PROFILES / "bucket", tmp_path, sma_id=SMA_ID,
                          name="update-prompt", timeout_s=kw.pop("handler_timeout_s", 5.0),
                          retries=kw.pop("handler_retries", 1), rtp=kw.pop("rtp_port_range", None), **kw)


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


def live_transaction(stub: Stub, timeout: float = 10.0) -> str:
    """The TransactionId of the first call that reached the stub."""
    found = wait_until(lambda: stub.run_in_loop(lambda: list(stub.service.transactions)), timeout)
    assert found, "no call reached the stub"
    return found[0]
