"""An action that fails while the stub starts it is reported at once: the stub's dispatch runs
until the engine emits no more commands, so the ACTION_FAILED emitted during dispatch is
invoked in the same pass and its response runs (the caller is hung up) within a moment, not
at the next unrelated event."""
from pathlib import Path

import pytest

from harness.caller import Caller
from harness.sma.model import SipMediaApplication, SipRule, rule_id
from harness.stub import Stub, StubConfig

from conftest import PROFILES, TEST_DATA, wait_until

HANDLER = TEST_DATA / "handlers" / "failing_actions.py"
CASES = [("01", "PlayAudio", "InvalidAudioSource"),
         ("02", "PlayAudioAndGetDigits", "InvalidAudioSource"),
         ("03", "RecordAudio", "SystemException"),
         ("04", "StartCallRecording", "SystemException"),
         ("05", "CallAndBridge", "CallNotAnswered")]


@pytest.fixture(scope="module")
def failing_stub(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    (run_dir / "s3").write_text("a file where the stub's S3 folder would be: writes fail")
    sma = SipMediaApplication("fail-sma", str(HANDLER), name="failing-actions")
    config = StubConfig([sma], [SipRule(rule_id("fail"), "ToPhoneNumber", "*", [(1, "fail-sma")])],
                        PROFILES / "bucket", run_dir=run_dir)
    with Stub(config) as stub:
        yield stub


@pytest.mark.parametrize("suffix,action,error_type", CASES, ids=[c[1] for c in CASES])
def test_a_failure_while_starting_is_reported_at_once(failing_stub, tmp_path, suffix, action, error_type):
    stub = failing_stub
    with Caller(workdir=tmp_path / "caller") as caller:
        call = caller.call(stub.sip_uri(f"+14345550{suffix}"))
        call.wait_for("DISCONNECTED", timeout=10)
    journal = stub.journal_json()
    tx = next(e["transaction_id"] for e in journal
              if e["kind"] == "call_arrived" and e["to"].endswith(suffix))
    mine = [e for e in journal if e["transaction_id"] == tx]
    failed = [e for e in mine if e["kind"] == "invocation"
              and e["event"]["InvocationEventType"] == "ACTION_FAILED"]
    assert failed, [e["kind"] for e in mine]
    data = failed[0]["event"]["ActionData"]
    assert (data["Type"], data["ErrorType"]) == (action, error_type)
    started = next(e["time"] for e in mine if e["kind"] == "response" and e["sequence"] == 1) + 0.3
    # at once: well inside the time the handler's own answer takes on a loaded machine, and
    # long before the caller would have given up
    assert failed[0]["time"] - started < 1.0
    hangups = [e for e in mine if e["kind"] == "hangup"]
    assert hangups and hangups[0]["time"] - started < 2.0, "the ACTION_FAILED response ran"
    assert wait_until(lambda: tx not in stub.service.transactions)
