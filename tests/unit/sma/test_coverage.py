"""docs/coverage.md is generated from the code, names a test for everything emulated, and
must not go stale."""
import pytest

from harness import coverage
from harness.api.operations import OPERATION_NAMES
from harness.sma.actions import ACTIONS
from harness.sma.events import EVENT_TYPES


@pytest.fixture(scope="module")
def found():
    return coverage.proofs()


def test_coverage_page_is_current(found):
    assert coverage.PATH.read_text() == coverage.render(found), \
        "docs/coverage.md is stale: run `python -m harness.coverage --write`"


def test_every_event_and_action_is_listed():
    text = coverage.render({})
    assert all(f"| `{a}` |" in text for a in ACTIONS)
    assert len(EVENT_TYPES) == 11 and all(f"| `{e}` |" in text for e in EVENT_TYPES)


def test_everything_emulated_is_named_by_a_test(found):
    assert coverage.unproven(found) == [], "name a test for each with @pytest.mark.covers(KEY)"


def test_every_name_a_test_gives_is_a_row(found):
    assert coverage.unknown(found) == []


def test_a_row_whose_test_goes_is_reported(found):
    without = {key: tests for key, tests in found.items() if key != "action:PlayAudio"}
    assert coverage.unproven(without) == ["action:PlayAudio"]
    assert "| `PlayAudio` |" in coverage.render(without).split("**no test**")[0].rsplit("\n", 1)[-1]
    assert coverage.unknown({**found, "action:Dance": ["test_x.py::test_dance"]}) == ["action:Dance"]


def test_the_served_operations_are_botocores_and_the_rest_are_listed_as_not_served():
    operations = coverage.operations()
    assert OPERATION_NAMES <= set(operations) and len(operations) > len(OPERATION_NAMES)
    rows = {row.key: row.emulated for row in coverage.rows() if row.key.startswith("operation:")}
    assert {key.partition(":")[2] for key, served in rows.items() if served} == OPERATION_NAMES
    assert rows["operation:CreateSipMediaApplication"] is False
