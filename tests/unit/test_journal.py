"""The journal as a typed interface: every kind the stub notes is a class whose JSON form
round-trips, matches the generated JSON Schema, and is read back by `JournalView`'s queries."""
import dataclasses
import json
import typing

import jsonschema_rs  # comes with schemathesis (the test extra)
import pytest

from harness import journal_entries as je
from harness.journal import Journal
from harness.journal_view import JournalView
from harness.netem import ImpairmentRecord

SCHEMA = json.loads(je.SCHEMA_PATH.read_text())
ENTRY = jsonschema_rs.validator_for({**SCHEMA, "$ref": "#/$defs/entry", "type": "object"})
SAMPLES = {str: "s", int: 7, float: 1.5, bool: True, dict: {"k": "v"}, list: ["x"], object: {"Actions": []},
           ImpairmentRecord: ImpairmentRecord(1.0, "outgoing", "rtp", "dropped", 172, 0.0)}


def example(cls):
    """An entry of `cls` with every field set (optional ones too)."""
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in ("time", "transaction_id"):
            continue
        hint = hints[f.name]
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        values[f.name] = SAMPLES[args[0] if args else hint]
    return cls(time=12.5, transaction_id="tx-1", **values)


def test_the_schema_file_is_current():
    assert je.SCHEMA_PATH.read_text() == je.schema_text(), \
        "journal.schema.json is stale: run `python -m harness.journal_entries --write`"


@pytest.mark.parametrize("kind", sorted(je.ENTRY_TYPES))
def test_every_kind_round_trips_through_json_and_matches_the_schema(kind):
    entry = example(je.ENTRY_TYPES[kind])
    data = json.loads(json.dumps(entry.to_json()))
    assert data["kind"] == kind and (data["time"], data["transaction_id"]) == (12.5, "tx-1")
    assert not [k for k in data if k.endswith("_")], "a Python name leaked into the JSON"
    assert je.parse_entry(data) == entry
    assert [str(e) for e in ENTRY.iter_errors(data)] == []


def test_an_entry_that_breaks_its_schema_is_refused():
    data = example(je.CallArrived).to_json()
    assert not ENTRY.is_valid({**data, "rtp_port": "4000"})
    assert not ENTRY.is_valid({**data, "from_": "+1"})  # the JSON name is "from"
    assert not ENTRY.is_valid({k: v for k, v in data.items() if k != "sip_call_id"})
    assert not ENTRY.is_valid({**data, "kind": "no_such_kind"})
    with pytest.raises(KeyError, match="sip_call_id"):
        je.parse_entry({k: v for k, v in data.items() if k != "sip_call_id"})


def test_optional_fields_are_left_out_when_unset():
    data = je.MediaStarted(call_id="c", token=1, media="silence", duration_ms=500).to_json()
    assert set(data) == {"time", "kind", "transaction_id", "call_id", "token", "media", "duration_ms"}


def test_the_store_stamps_each_entry_and_keeps_its_json(tmp_path):
    journal = Journal(path=tmp_path / "journal.jsonl")
    noted = journal.note(je.Hangup(transaction_id="tx", call_id="c", sip_code=486))
    journal.close()
    assert noted["time"] > 1.7e9 and noted["kind"] == "hangup"
    assert JournalView.read(tmp_path / "journal.jsonl").of(je.Hangup) == [
        je.Hangup(time=noted["time"], transaction_id="tx", call_id="c", sip_code=486)]


def call_journal() -> list[dict]:
    entries = [
        je.CallArrived(time=1.0, transaction_id="tx-a", sip_call_id="sip-1", call_id="leg-a",
                       sip_media_application_id="sma", to="+14345550101", from_="+14255550199",
                       rtp_port=40000),
        je.HandlerInvoked(time=1.1, transaction_id="tx-a", sequence=1, event={
            "InvocationEventType": "NEW_INBOUND_CALL", "Sequence": 1}),
        je.HandlerResponded(time=1.2, transaction_id="tx-a", sequence=1,
                            response={"SchemaVersion": "1.0", "Actions": [{"Type": "Pause"}]}),
        je.CallPlaced(time=1.3, transaction_id="tx-a", call_id="leg-b", sip_call_id="sip-2",
                      target="sip:+15555550100@127.0.0.1:5090", rtp_port=40002),
        je.HandlerInvoked(time=2.0, transaction_id="tx-a", sequence=2, event={
            "InvocationEventType": "CALL_UPDATE_REQUESTED", "Sequence": 2,
            "ActionData": {"Type": "CallUpdateRequest", "Parameters": {"Arguments": {"a": "1"}}}}),
        je.HandlerInvoked(time=3.0, transaction_id="tx-a", sequence=3, event={
            "InvocationEventType": "ACTION_SUCCESSFUL", "Sequence": 3,
            "ActionData": {"Type": "PlayAudioAndGetDigits", "ReceivedDigits": "123"}}),
        je.RecordingStopped(time=3.5, transaction_id="tx-a", call_id="leg-a", path="/run/s3/r.wav"),
        je.HandlerInvoked(time=4.0, transaction_id="tx-a", sequence=4, event={
            "InvocationEventType": "HANGUP", "Sequence": 4,
            "CallDetails": {"Participants": [{"Status": "Disconnected"}]}}),
    ]
    return [e.to_json() for e in entries] + [{"time": 5.0, "kind": "from_a_newer_version",
                                              "transaction_id": "tx-a"}]


def test_the_reader_answers_a_runs_questions_without_string_keys():
    view = JournalView(call_journal())
    assert [a.sip_call_id for a in view.arrivals()] == ["sip-1"]
    assert (view.rtp_port("sip-2"), view.transaction_of("sip-2"), view.rtp_port("nobody")) == \
        (40002, "tx-a", None)
    assert [(leg.direction, leg.to) for leg in view.legs()] == [
        ("inbound", "+14345550101"), ("outbound", "sip:+15555550100@127.0.0.1:5090")]
    assert view.event_types("tx-a") == ["NEW_INBOUND_CALL", "CALL_UPDATE_REQUESTED",
                                        "ACTION_SUCCESSFUL", "HANGUP"]
    first, update, done, hangup = view.invocations()
    assert first.response.actions == [{"Type": "Pause"}] and update.response is None
    assert (update.action_type, update.arguments) == ("CallUpdateRequest", {"a": "1"})
    assert done.received_digits == "123" and first.received_digits is None
    assert hangup.ends_transaction and not first.ends_transaction
    assert [str(p) for p in view.recordings()] == ["/run/s3/r.wav"]
    assert len(view.typed) == 8  # the unknown kind is skipped


def test_a_served_journal_file_reads_the_same_as_its_list(tmp_path):
    entries = call_journal()
    (tmp_path / "journal.json").write_text(json.dumps(entries, indent=2))
    (tmp_path / "journal.jsonl").write_text("".join(json.dumps(e) + "\n" for e in entries))
    assert JournalView.read(tmp_path / "journal.json").typed == \
        JournalView.read(tmp_path / "journal.jsonl").typed == JournalView(entries).typed
