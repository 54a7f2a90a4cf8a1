"""Every bundled profile validates on this machine (its handlers' runtimes, Node.js among them,
are here) and passes end to end: real pjsua2 calls, the real stub, judged from the capture. A
failure names the checks that failed and the artifact folder."""
import pytest

from conftest import PROFILES
from harness.cli import EXIT_OK, main


def test_the_bundled_profiles_validate(capsys):
    assert main(["validate", str(PROFILES)]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.count("ok  ") == len(list(PROFILES.glob("*.yaml")))


@pytest.mark.parametrize("path", sorted(PROFILES.glob("*.yaml")), ids=lambda p: p.stem)
def test_bundled_profile_passes(path, bundled_run):
    result = bundled_run(path.stem).result
    failed = [f"{c.name}: {c.detail}" for c in result.checks if not c.passed]
    assert result.verdict == "pass", (result.error, failed, result.run_dir)
