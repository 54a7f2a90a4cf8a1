"""pytest plugin of sip-harness (loaded through the `pytest11` entry point).

Fixtures: `sma_stub`, `sip_caller`, `wire_capture`, `sma_api`, `sip_artifacts`; the marker
`@pytest.mark.sma(handler=..., profile=..., bucket=..., ...)` says what `sma_stub` serves
(see `harness.testing`, the public API, for the types they hand out). A profile (`*.yaml`) is
collected as a test item when it is named on the command line or lies in a folder named
`sip_profiles`; a failing item names the failed checks, the error and its root cause, and its
artifact folder. Options: `--sip-artifacts DIR` keeps every artifact under DIR;
`--sip-stub URL` runs profile items (and `sma_stub` of a `profile=` marker) against
`sip-harness serve` at URL.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

MARKER = "sma(handler=None, profile=None, bucket=None, numbers=('*',), timeout_ms=5000, " \
         "retries=1, environment=None, runtime=None, sma_id=...): what the `sma_stub` fixture serves"
PROFILE_SUFFIXES = (".yaml", ".yml")


def pytest_addoption(parser):
    group = parser.getgroup("sip-harness")
    group.addoption("--sip-artifacts", metavar="DIR", default=None,
                    help="keep each test's and profile's artifacts (capture, journal, reports, "
                         "handler log) under DIR (default: pytest's tmp_path; profiles: "
                         "<rootdir>/artifacts/pytest)")
    group.addoption("--sip-stub", metavar="URL", default=None,
                    help="run profile items against `sip-harness serve --control` at URL "
                         "instead of an embedded stub")
    group.addoption("--sip-control-token-file", metavar="FILE", default=None,
                    help="the served stub's control token (default: $SIP_HARNESS_CONTROL_TOKEN)")


def _remote_access(config):
    """How the plugin authenticates to `--sip-stub`: its control token."""
    from .remote import RemoteAccess, control_token
    return RemoteAccess(control_token(config.getoption("sip_control_token_file")))


def pytest_configure(config):
    config.addinivalue_line("markers", MARKER)


def _folder(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")[:120] or "test"


@pytest.fixture
def sip_artifacts(request, tmp_path) -> Path:
    """This test's artifact folder: under --sip-artifacts when given, else tmp_path."""
    root = request.config.getoption("sip_artifacts")
    if root is None:
        return tmp_path
    folder = Path(root).resolve() / _folder(request.node.nodeid)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def sma_stub_config(request, sip_artifacts):
    """The stub settings `sma_stub` uses, from the test's `sma` marker (or override this
    fixture and return `harness.testing.stub_config_for(...)`)."""
    from .testing import stub_config_for
    marker = request.node.get_closest_marker("sma")
    if marker is None:
        pytest.fail("sma_stub needs to know what to serve: mark the test (or module, with "
                    "`pytestmark`) with @pytest.mark.sma(handler=\"path/to/handler.py\") or "
                    "@pytest.mark.sma(profile=\"path/to/profile.yaml\"), or override the "
                    "sma_stub_config fixture", pytrace=False)
    return stub_config_for(*marker.args, run_dir=sip_artifacts, **{"base": request.path.parent,
                                                                     **marker.kwargs})


@pytest.fixture
def sma_stub(request, sma_stub_config):
    """A running stub as a `harness.testing.SmaStub`, stopped after the test: embedded (SIP,
    RTP, API on 127.0.0.1), or a session on `--sip-stub URL` for a `profile=` marker."""
    from .remote import RemoteStub
    from .stub import Stub
    from .testing import SmaStub
    url = request.config.getoption("sip_stub")
    marker = request.node.get_closest_marker("sma")
    profile = marker.kwargs.get("profile") if marker is not None else None
    if url and profile:
        remote = RemoteStub(url, sma_stub_config, _remote_access(request.config)).start(
            (request.path.parent / profile).resolve())
        try:
            yield SmaStub(remote)
        finally:
            remote.stop()
        return
    with Stub(sma_stub_config) as stub:
        yield SmaStub(stub)


@pytest.fixture
def sip_caller(sip_artifacts):
    """A pjsua2 caller pool (`harness.testing.Caller`); every worker is gone after the test."""
    from .caller import Caller
    with Caller(workdir=sip_artifacts / "caller") as caller:
        yield caller


@pytest.fixture
def wire_capture(sma_stub, sip_artifacts):
    """A `harness.testing.WireCapture` of the stub's ports, capturing from before the test's
    first packet; `.analysis()` stops it and reads it."""
    from .testing import WireCapture
    capture = WireCapture(sma_stub, sip_artifacts / "capture.pcap").start()
    yield capture
    capture.stop()


@pytest.fixture
def sma_api(sma_stub):
    """A chime-sdk-voice client bound to the stub (`update_sip_media_application_call`, ...)."""
    return sma_stub.api_client()


def pytest_collect_file(parent, file_path: Path):
    if file_path.suffix not in PROFILE_SUFFIXES:
        return None
    named = {Path(str(a).split("::")[0]).resolve() for a in parent.config.args}
    if file_path.parent.name == "sip_profiles" or file_path.resolve() in named:
        return ProfileFile.from_parent(parent, path=file_path)
    return None


class ProfileFile(pytest.File):
    def collect(self):
        from .profiles.schema import load_profile
        profile = load_profile(self.path, check_handler=False)  # the item's run checks it
        yield ProfileItem.from_parent(self, name=profile.name, profile=profile)


class ProfileItem(pytest.Item):
    def __init__(self, *, profile, **kwargs):
        super().__init__(**kwargs)
        self.profile = profile

    def runtest(self):
        from .remote import RemoteAccess
        from .run.profile import ProfileRun
        root = self.config.getoption("sip_artifacts")
        out = Path(root).resolve() if root else Path(self.config.rootpath) / "artifacts" / "pytest"
        url = self.config.getoption("sip_stub")
        result = ProfileRun(self.profile, out, progress=lambda line: None, stub_url=url,
                            access=_remote_access(self.config) if url else RemoteAccess()).execute()
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
        from .report.summary import result_lines
        lines = [f"profile {result.profile!r} {result.verdict}; artifacts in {result.run_dir}"]
        lines += [f"  {line}" for line in result_lines(result, passed_checks=False)]
        super().__init__("\n".join(lines))
