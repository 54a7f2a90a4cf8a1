"""Every bundled profile passes end to end: real pjsua2 calls, the real stub, judged from the
capture. A failure names the checks that failed and the artifact folder."""
import pytest

from conftest import PROFILES


@pytest.mark.parametrize("path", sorted(PROFILES.glob("*.yaml")), ids=lambda p: p.stem)
def test_bundled_profile_passes(path, bundled_run):
    result = bundled_run(path.stem).result
    failed = [f"{c.name}: {c.detail}" for c in result.checks if not c.passed]
    assert result.verdict == "pass", (result.error, failed, result.run_dir)
