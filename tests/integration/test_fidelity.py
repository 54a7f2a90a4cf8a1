"""Traces of the real service compared with the emulator: the `traced` wrapper a user puts
around a real handler, and `sip-harness fidelity compare` on equal and altered traces."""
import copy
import json
import re
import zipfile
from pathlib import Path

import pytest
import yaml

from conftest import PROFILES, ROOT, require_capture
from harness import cli
from harness.fidelity import compare, journal_records, kind, read_trace
from harness.profiles.schema import load_profile
from harness.run.profile import ProfileRun
from harness.sma.model import rule_id
from sip_harness.trace import MARK, TRACE_FILE_ENV, traced

PROFILE = PROFILES / "update_switches_prompt.yaml"
DATA = ROOT / "tests" / "data"


def test_traced_logs_one_line_per_invocation_and_keeps_errors(tmp_path, monkeypatch):
    trace = tmp_path / "trace.jsonl"
    monkeypatch.setenv(TRACE_FILE_ENV, str(trace))

    @traced
    def handler(event, context):
        if event.get("fail"):
            raise RuntimeError("handler says no")
        return {"SchemaVersion": "1.0", "Actions": []}

    assert handler({"InvocationEventType": "NEW_INBOUND_CALL"}, None) == {"SchemaVersion": "1.0", "Actions": []}
    with pytest.raises(RuntimeError, match="handler says no"):
        handler({"fail": True}, None)
    first, second = (json.loads(line) for line in trace.read_text().splitlines())
    assert first[MARK] == 1 and first["response"]["Actions"] == [] and "error" not in first
    assert second["error"] == "RuntimeError: handler says no" and "response" not in second
    monkeypatch.delenv(TRACE_FILE_ENV)
    handler({"InvocationEventType": "HANGUP"}, None)  # to stdout: CloudWatch Logs in Lambda


def test_trace_lines_are_read_from_cloudwatch_shapes(tmp_path):
    record = {MARK: 1, "time": 1.0, "event": {"InvocationEventType": "NEW_INBOUND_CALL"}, "response": {}}
    line = json.dumps(record)
    (tmp_path / "console.txt").write_text(f"START RequestId: x\n2026-01-01T00:00:00Z\tx\tINFO\t{line}\nEND\n")
    (tmp_path / "filter.json").write_text(json.dumps({"events": [{"message": line + "\n"}]}))
    for name in ("console.txt", "filter.json"):
        assert read_trace(tmp_path / name) == [record]


def test_the_layer_carries_the_tracer(tmp_path):
    assert cli.main(["fidelity", "layer", str(tmp_path / "layer.zip")]) == 0
    names = zipfile.ZipFile(tmp_path / "layer.zip").namelist()
    assert "python/sip_harness/trace.py" in names and "python/sip_harness/__init__.py" in names


@pytest.fixture(scope="module")
def traced_run(tmp_path_factory):
    """The bundled update flow with its handler wrapped in `traced`: the trace it wrote, and
    the emulator's own records of that run."""
    require_capture()
    out = tmp_path_factory.mktemp("traced")
    trace = out / "trace.jsonl"
    spec = yaml.safe_load(PROFILE.read_text())
    spec["stub"].update(handler=str(ROOT / "tests/data/handlers/traced_update_prompt.py"),
                        bucket_dir=str(PROFILES / "bucket"),
                        handler_env={TRACE_FILE_ENV: str(trace)}, layers=["sip-harness-trace"])
    path = out / "traced.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = ProfileRun(load_profile(path), out, lambda line: None).execute()
    assert result.verdict == "pass", [(c.name, c.detail) for c in result.checks if not c.passed]
    journal = json.loads((Path(result.run_dir) / "journal.json").read_text())
    return trace, journal_records(journal)


def test_a_trace_equal_to_the_emulator_has_no_differences(traced_run, tmp_path, capsys):
    trace, emulator = traced_run
    assert len(read_trace(trace)) == len(emulator) == 5
    assert compare(read_trace(trace), emulator) == []
    code = cli.main(["fidelity", "compare", str(trace), str(PROFILE), "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "0 difference(s)" in out and "DIFF" not in out
    report = json.loads(next(tmp_path.glob("*/fidelity-report.json")).read_text())
    assert report["differences"] == []


def test_a_changed_event_order_is_reported(traced_run):
    trace, emulator = traced_run
    records = read_trace(trace)
    records[2]["time"], records[3]["time"] = records[3]["time"], records[2]["time"]
    differences = compare(records, emulator)
    order = [d for d in differences if d.path == "$.transactions[0].order"]
    assert len(order) == 1 and order[0].note == "the same invocations in another order"
    assert order[0].trace[2:4] == order[0].emulator[2:4][::-1]
    assert "ACTION_INTERRUPTED (PlayAudio)" in order[0].describe()


def test_a_missing_field_is_reported_with_its_path(traced_run):
    trace, emulator = traced_run
    records = read_trace(trace)
    del records[1]["event"]["CallDetails"]["Participants"][0]["Direction"]
    (difference,) = compare(records, emulator)
    assert difference.path == "$.transactions[0].invocations[1].event.CallDetails.Participants[0].Direction"
    assert difference.note == "field missing from the trace" and difference.emulator == "Inbound"


def test_an_extra_invocation_is_reported(traced_run):
    trace, emulator = traced_run
    records = read_trace(trace)
    extra = copy.deepcopy(records[-1])
    extra["time"] += 0.05
    extra["event"]["Sequence"] += 1
    records.append(extra)
    differences = compare(records, emulator)
    assert [d.path for d in differences] == ["$.transactions[0].order", "$.transactions[0].invocations[5]"]
    assert differences[0].note == "the invocations differ"
    assert differences[1].trace == "HANGUP" and differences[1].note == "extra invocation in the trace"


def test_ids_numbers_and_times_do_not_count_but_their_roles_do(traced_run, tmp_path):
    trace, emulator = traced_run
    text = trace.read_text()
    details = read_trace(trace)[0]["event"]["CallDetails"]
    leg = details["Participants"][0]
    for old, new in ((details["TransactionId"], "b0c0ffee-0000-4000-8000-000000000001"),
                     (details["AwsAccountId"], "999999999999"), (leg["To"], "+18005550100"),
                     (leg["CallId"], "c0ffee00-0000-4000-8000-000000000002"),
                     (leg["StartTimeInMilliseconds"], "1700000000000")):
        text = text.replace(old, new)  # the real service's own ids, numbers and times
    (tmp_path / "real.jsonl").write_text(text)
    records = read_trace(tmp_path / "real.jsonl")
    assert compare(records, emulator) == []
    records[-1]["event"]["CallDetails"]["Participants"][0]["CallId"] = "another-leg"
    (difference,) = compare(records, emulator)
    assert difference.path.endswith("Participants[0].CallId")
    assert (difference.trace, difference.emulator) == ("<CallId 2>", "<CallId 1>")


def test_a_trace_of_the_documented_example_events_matches_the_emulator(traced_run):
    """The same flow written from the developer guide's example events (each line names its
    page) and the workshop's captured NEW_INBOUND_CALL: the emulator's events have their shape,
    order, ActionData and CallDetails, field by field."""
    documented = read_trace(DATA / "traces" / "documented_update_flow.jsonl")
    _, emulator = traced_run
    assert [kind(r) for r in documented] == [kind(r) for r in emulator]
    assert compare(documented, emulator) == []
    del documented[4]["event"]["ActionData"]["Parameters"]["ParticipantTag"]
    (difference,) = compare(documented, emulator)
    assert difference.path.endswith("invocations[4].event.ActionData.Parameters.ParticipantTag")


def test_the_sip_rule_id_has_the_services_form_and_is_the_same_every_run(traced_run):
    """SipRuleId is a GUID, as the service's ids are (the developer guide's example shows one),
    derived from the SMA and rule, so a handler that stores it sees the same one every run."""
    _, emulator = traced_run
    details = emulator[0]["event"]["CallDetails"]
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", details["SipRuleId"])
    assert details["SipRuleId"] == rule_id(f"{details['SipMediaApplicationId']}/1")
    assert {r["event"]["CallDetails"]["SipRuleId"] for r in emulator} == {details["SipRuleId"]}
