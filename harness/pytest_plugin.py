"""pytest plugin of sip-harness (loaded through the `pytest11` entry point).

Fixtures: `sma_stub` (the embedded stub serving the bundled handler, or the one a test
configures with `sma_stub_config`), `sip_caller` (pjsua2 caller pool), `wire_capture` (start
a scapy capture of the stub's ports), `sma_api` (a boto3-compatible chime-sdk-voice client
bound to the stub). Profiles in a `sip_profiles` folder are collected as test items when that
folder is passed to pytest; a failing item names its artifact folder.
"""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def sma_stub_config(tmp_path):
    """The stub configuration `sma_stub` uses; override it in a conftest to serve your handler."""
    from .profiles.schema import load_profile
    from .runner import stub_config
    bundled = Path(__file__).resolve().parent.parent / "sip_profiles" / "update_switches_prompt.yaml"
    return stub_config(load_profile(bundled), tmp_path)


@pytest.fixture
def sma_stub(sma_stub_config):
    """A running embedded stub (SIP, RTP, API on 127.0.0.1), stopped after the test."""
    from .stub import Stub
    with Stub(sma_stub_config) as stub:
        yield stub


@pytest.fixture
def sip_caller(tmp_path):
    """A pjsua2 caller pool; every worker process is gone after the test."""
    from .caller import Caller
    with Caller(workdir=tmp_path / "caller") as caller:
        yield caller


@pytest.fixture
def wire_capture(tmp_path, sma_stub):
    """Start a capture of the stub's SIP, RTP and API ports; call it, use the result, `.stop()`."""
    from .wire.capture import Capture
    started = []

    def start(name: str = "capture.pcap") -> Capture:
        cfg = sma_stub.config
        ports = f"port {sma_stub.sip_port} or tcp port {sma_stub.api_port}"
        if cfg.rtp_port_range:
            ports += f" or udp portrange {cfg.rtp_port_range[0]}-{cfg.rtp_port_range[1]}"
        capture = Capture(str(tmp_path / name), iface="lo", bpf=f"host {cfg.host} and ({ports})")
        capture.start()
        started.append(capture)
        return capture
    yield start
    for capture in started:
        capture.__exit__(None, None, None)  # stops it unless the test already did


@pytest.fixture
def sma_api(sma_stub):
    """A chime-sdk-voice client bound to the stub (`update_sip_media_application_call`, ...)."""
    from .runner import api_client
    return api_client(sma_stub, "us-east-1")


def pytest_collect_file(parent, file_path: Path):
    if file_path.suffix == ".yaml" and file_path.parent.name == "sip_profiles":
        return ProfileFile.from_parent(parent, path=file_path)
    return None


class ProfileFile(pytest.File):
    def collect(self):
        from .profiles.schema import load_profile
        profile = load_profile(self.path)
        yield ProfileItem.from_parent(self, name=profile.name, profile=profile)


class ProfileItem(pytest.Item):
    def __init__(self, *, profile, **kwargs):
        super().__init__(**kwargs)
        self.profile = profile

    def runtest(self):
        from .runner import ProfileRun
        out = Path(self.config.rootpath) / "artifacts" / "pytest"
        result = ProfileRun(self.profile, out, progress=lambda line: None).execute()
        if result.verdict != "pass":
            raise ProfileFailed(result)

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, ProfileFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, f"profile: {self.name}"


class ProfileFailed(Exception):
    def __init__(self, result):
        lines = [f"profile {result.profile!r} {result.verdict}; artifacts in {result.run_dir}"]
        lines += [f"  FAIL {c.name}: {c.detail}" for c in result.checks if not c.passed]
        if result.error:
            lines.append(f"  error: {result.error}")
        super().__init__("\n".join(lines))
