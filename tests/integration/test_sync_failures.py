"""An action that fails while the stub starts it is reported at once: the stub's dispatch runs
until the engine emits no more commands, so the ACTION_FAILED emitted during dispatch is
invoked in the same pass and its response runs (the caller is hung up) within a moment, not
at the next unrelated event."""

import pytest

from harness.caller import Caller
from harness.journal_entries import Hangup, InternalError
from harness.journal_view import JournalView
from harness.media.transport import MediaSession
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
    journal = JournalView(stub.journal_json())
    tx = next(e.transaction_id for e in journal.arrivals() if e.to.endswith(suffix))
    failed = journal.invocations("ACTION_FAILED", transaction_id=tx)
    assert failed, journal.event_types(tx)
    data = failed[0].action_data
    assert (data["Type"], data["ErrorType"]) == (action, error_type)
    started = journal.invocations(transaction_id=tx)[0].response.time + 0.3
    # at once: well inside the time the handler's own answer takes on a loaded machine, and
    # long before the caller would have given up
    assert failed[0].time - started < 1.0
    hangups = journal.of(Hangup, transaction_id=tx)
    assert hangups and hangups[0].time - started < 2.0, "the ACTION_FAILED response ran"
    assert wait_until(lambda: tx not in stub.service.transactions)


@pytest.mark.parametrize("method,action", [("play_file", "PlayAudio"), ("play_silence", "Pause")])
def test_a_command_that_raises_fails_only_its_own_action(failing_stub, tmp_path, monkeypatch, method, action):
    """A fault of the stub's own (here the media edge raising while it starts the action's
    audio) is the service's SystemException for that action: ACTION_FAILED, an internal_error
    entry naming the command, the ACTION_FAILED response runs and nothing is left behind."""
    def broken(self, *args, **kwargs):
        raise RuntimeError("the media edge broke")
    monkeypatch.setattr(MediaSession, method, broken)
    stub = failing_stub
    before = len(stub.journal_json())
    with Caller(workdir=tmp_path / "caller") as caller:
        call = caller.call(stub.sip_uri("+14345550006"))
        call.wait_for("DISCONNECTED", timeout=10)
    journal = JournalView(stub.journal_json()[before:])
    (tx,) = journal.transactions()
    (failed,) = journal.invocations("ACTION_FAILED", transaction_id=tx)
    data = failed.action_data
    assert (data["Type"], data["ErrorType"], data["ErrorMessage"]) == \
        (action, "SystemException", "System error while running action.")
    (fault,) = journal.of(InternalError, transaction_id=tx)
    assert fault.error == "RuntimeError: the media edge broke"
    assert journal.of(Hangup, transaction_id=tx), "the ACTION_FAILED response ran"
    assert wait_until(lambda: tx not in stub.service.transactions and not stub.resources()["media_sessions"])
