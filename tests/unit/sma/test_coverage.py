"""docs/coverage.md is generated from the code and must not go stale."""
from harness import coverage
from harness.sma.actions import KNOWN_ACTIONS


def test_coverage_page_is_current():
    assert coverage.PATH.read_text() == coverage.render(), \
        "docs/coverage.md is stale: run `python -m harness.coverage --write`"


def test_every_event_and_action_is_listed():
    text = coverage.render()
    assert all(f"| `{a}` | yes |" in text for a in KNOWN_ACTIONS)
    assert len(coverage.EVENT_WHEN) == 11
