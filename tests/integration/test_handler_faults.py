"""Handler faults lead to the service's documented behaviour (retry once, then 480, also for a
return value the runtime cannot serialize; a response that is JSON but no response object gives
INVALID_LAMBDA_RESPONSE), and other calls are unaffected."""

import pytest

from harness.caller import Caller
from harness.journal_entries import HandlerResponded
from harness.journal_view import JournalView
from harness.sma.model import SipMediaApplication, SipRule
from harness.stub import Stub, StubConfig

from conftest import PROFILES, TEST_DATA, wait_until

HANDLER = TEST_DATA / "handlers" / "faults.py"


@pytest.fixture
def fault_stub(tmp_path):
    sma = SipMediaApplication("fault-sma", str(HANDLER), name="faults")
    config = StubConfig([sma], [SipRule("r", "ToPhoneNumber", "*", [(1, "fault-sma")])],
                        PROFILES / "bucket", run_dir=tmp_path, handler_timeout_s=1.0)
    with Stub(config) as stub:
        yield stub


def events_of(stub, tx):
    return JournalView(stub.journal_json()).event_types(tx)


def test_faulty_handlers_end_their_calls_and_spare_the_others(fault_stub, tmp_path):
    stub = fault_stub
    with Caller(workdir=tmp_path / "caller") as caller:
        normal = caller.call(stub.sip_uri("+14345550101"))
        faulty = {n: caller.call(stub.sip_uri(f"+143455501{n}")) for n in ("02", "03", "04", "05")}
        normal.wait_for("CONFIRMED", timeout=10)
        for number, call in faulty.items():
            call.wait_for("DISCONNECTED", timeout=15)
            assert call.last_status == 480, (number, call.last_status)
        normal.wait_for("DISCONNECTED", timeout=10)
        assert normal.last_status == 200  # answered, then ended by the handler's Hangup
    responses = {e.transaction_id: e for e in JournalView(stub.journal_json()).of(HandlerResponded)
                 if e.failed}
    kinds = sorted(err["errorType"] for e in responses.values() for err in e.errors)
    assert kinds == sorted(["RuntimeError"] * 2 + ["Sandbox.Timedout"] * 2
                           + ["Function.ResponseSizeTooLarge"] * 2 + ["Runtime.MarshalError"] * 2)
    assert all(e.attempts == 2 for e in responses.values())
    assert any("the database is down" in line for e in responses.values()
               for err in e.errors for line in err.get("stackTrace", []))
    assert wait_until(lambda: stub.resources()["transactions"] == 0)


def test_a_response_that_is_no_response_object_is_an_invalid_lambda_response(fault_stub, tmp_path):
    stub = fault_stub
    with Caller(workdir=tmp_path / "caller") as caller:
        call = caller.call(stub.sip_uri("+14345550106"))
        tx = wait_until(lambda: next((e.transaction_id for e in JournalView(stub.journal_json()).arrivals()),
                                     None))
        assert wait_until(lambda: "INVALID_LAMBDA_RESPONSE" in events_of(stub, tx))
        (invocation,) = JournalView(stub.journal_json()).invocations("INVALID_LAMBDA_RESPONSE")
        assert invocation.event["ErrorType"] == "InvalidResponse"
        call.hangup()
        call.wait_for("DISCONNECTED", timeout=35)
