"""Engine rules that published SMA applications rely on (docs/fidelity.md): the order of a
leg's HANGUP and its Hangup's ACTION_SUCCESSFUL, the end of a transaction, results reported
mid-list, and what a leg's Status says before it answers. All on the injected clock."""
import pytest

from harness.sma import commands as cmd
from harness.sma.engine import CallTransaction
from harness.sma.model import Leg, SipMediaApplication

from test_sma_engine import respond


class Clock:
    def __init__(self):
        self.now = 500.0

    def __call__(self):
        return self.now


def make_tx(clock=None):
    tx = CallTransaction(SipMediaApplication("sma-1", "h"), "tx-1", None, clock or Clock(),
                         lambda: 1_700_000_000_000)
    tx.inbound_call(Leg("call-a", "LEG-A", "+14345550101", "+14255550199", "Inbound", 1))
    return tx


def events(commands):
    return [c.event for c in commands if isinstance(c, cmd.Invoke)]


def kinds(commands):
    return [e["InvocationEventType"] for e in events(commands)]


def of(commands, kind):
    return [c for c in commands if isinstance(c, kind)]


def play(key, **params):
    return {"Type": "PlayAudio", "Parameters": {
        "AudioSource": {"Type": "S3", "BucketName": "b", "Key": key}, **params}}


def bridge(uri="+15555550100"):
    return {"Type": "CallAndBridge", "Parameters": {
        "CallTimeoutSeconds": 10, "CallerIdNumber": "+14255550199",
        "Endpoints": [{"BridgeEndpointType": "PSTN", "Uri": uri}]}}


HANGUP_B = {"Type": "Hangup", "Parameters": {"ParticipantTag": "LEG-B"}}
SPEAK = {"Type": "Speak", "Parameters": {"Text": "Please hold", "CallId": "call-a"}}


def bridged(tx, *after):
    """Answer NEW_INBOUND_CALL with CallAndBridge (then `after`), and let LEG-B answer."""
    tx.take_commands()
    (place,) = of(respond(tx, [bridge(), *after]), cmd.PlaceCall)
    tx.leg_answered(place.call_id)
    return place.call_id, tx.take_commands()


def test_a_leg_has_no_status_until_it_answers():
    tx = make_tx()
    (new,) = events(tx.take_commands())
    assert "Status" not in new["CallDetails"]["Participants"][0]
    tx.handler_result(1, {"SchemaVersion": "1.0", "Actions": [play("a.wav")]})
    tx.take_commands()
    tx.update_requested({})
    (update,) = events(tx.take_commands())
    assert update["CallDetails"]["Participants"][0]["Status"] == "Connected"


@pytest.mark.covers("event:NEW_OUTBOUND_CALL", "event:RINGING", "event:CALL_ANSWERED")
def test_an_outbound_leg_has_no_status_while_it_rings():
    tx = CallTransaction(SipMediaApplication("sma-1", "h"), "tx-1", None, Clock(), lambda: 1)
    tx.outbound_call(Leg("call-a", "LEG-A", "+14345550101", "+14255550199", "Outbound", 1), {}, {})
    (new,) = events(tx.take_commands())
    tx.handler_result(1, {"SchemaVersion": "1.0"})
    tx.leg_ringing("call-a")
    (ringing,) = events(tx.take_commands())
    tx.handler_result(2, {"SchemaVersion": "1.0"})
    tx.leg_answered("call-a")
    (answered,) = events(tx.take_commands())
    assert [e["InvocationEventType"] for e in (new, ringing, answered)] == [
        "NEW_OUTBOUND_CALL", "RINGING", "CALL_ANSWERED"]
    assert "Status" not in new["CallDetails"]["Participants"][0]
    assert "Status" not in ringing["CallDetails"]["Participants"][0]
    assert answered["CallDetails"]["Participants"][0]["Status"] == "Connected"


def test_call_and_bridge_success_echoes_leg_a_call_id():
    tx = make_tx()
    _, out = bridged(tx)
    (done,) = events(out)
    assert done["InvocationEventType"] == "ACTION_SUCCESSFUL"
    assert done["ActionData"]["Type"] == "CallAndBridge"
    assert done["ActionData"]["Parameters"]["CallId"] == "call-a"
    assert [p["Status"] for p in done["CallDetails"]["Participants"]] == ["Connected", "Connected"]


def test_take_back_and_transfer_goes_through():
    """update -> Hangup(LEG-B); HANGUP(LEG-B) -> []; ACTION_SUCCESSFUL(Hangup) -> [Speak, CallAndBridge]."""
    tx = make_tx()
    b, _ = bridged(tx)
    respond(tx, [])  # ACTION_SUCCESSFUL of the bridge
    tx.update_requested({"TransferTarget": "+15555550111"})
    tx.take_commands()
    out = respond(tx, [HANGUP_B])
    assert of(out, cmd.HangupLeg) == [cmd.HangupLeg(b, 0)]
    assert not events(out)  # nothing to report before LEG-B is gone
    tx.leg_ended(b)
    out = tx.take_commands()
    (hangup,) = events(out)
    assert hangup["InvocationEventType"] == "HANGUP"
    assert hangup["ActionData"]["Parameters"]["ParticipantTag"] == "LEG-B"
    assert kinds(respond(tx, [])) == ["ACTION_SUCCESSFUL"]  # the empty list wipes nothing
    assert tx.take_commands() == []
    out = respond(tx, [SPEAK, bridge("+15555550111")])
    (speak,) = of(out, cmd.Speak)
    tx.media_done(speak.token)
    (place,) = of(tx.take_commands(), cmd.PlaceCall)
    assert place.to == "+15555550111"
    tx.leg_answered(place.call_id)
    (done,) = events(tx.take_commands())
    assert done["ActionData"]["Type"] == "CallAndBridge"
    # the new LEG-B takes the ended one's place (take-back-and-transfer hangs up Participants[1])
    assert [(p["ParticipantTag"], p["CallId"], p["Status"]) for p in done["CallDetails"]["Participants"]] == [
        ("LEG-A", "call-a", "Connected"), ("LEG-B", place.call_id, "Connected")]


def test_hangup_of_leg_a_on_a_bridge_also_reports_after_its_hangup():
    tx = make_tx()
    b, _ = bridged(tx)
    respond(tx, [])
    tx.update_requested({})
    tx.take_commands()
    respond(tx, [{"Type": "Hangup", "Parameters": {"ParticipantTag": "LEG-A"}}])
    tx.leg_ended("call-a")
    assert kinds(tx.take_commands()) == ["HANGUP"]
    assert kinds(respond(tx, [])) == ["ACTION_SUCCESSFUL"]


@pytest.mark.parametrize("answer_with", ["ACTION_FAILED", "HANGUP"])
def test_nothing_is_invoked_after_the_last_leg_ended(answer_with):
    """A handler that keeps answering with actions cannot keep a dead transaction invoking."""
    tx = make_tx()
    b, _ = bridged(tx)
    respond(tx, [])
    tx.update_requested({})
    tx.take_commands()
    if answer_with == "ACTION_FAILED":
        out = respond(tx, [play("a.wav", CallId="no-such-leg")])
        assert kinds(out) == ["ACTION_FAILED"]
    tx.leg_ended(b)
    tx.leg_ended("call-a")
    seen = kinds(tx.take_commands())
    for _ in range(20):  # every response asks for more; none may be run
        out = respond(tx, [play("a.wav"), play("b.wav", CallId="call-a")])
        assert not of(out, cmd.PlayAudio)
        seen += kinds(out)
        if of(out, cmd.TransactionEnded):
            break
    assert seen[-2:] == ["HANGUP", "HANGUP"]
    assert of(out, cmd.TransactionEnded) and tx.ended
    assert not tx.busy


def test_a_reporting_action_mid_list_reports_and_the_list_goes_on():
    """on-demand-recording: [PlayAudio, PlayAudio, CallAndBridge, ReceiveDigits]."""
    tx = make_tx()
    tx.take_commands()
    out = respond(tx, [play("a.wav"), play("b.wav"), bridge(),
                       {"Type": "ReceiveDigits", "Parameters": {
                           "InputDigitsRegex": "[5-7]", "InBetweenDigitsDurationInMilliseconds": 1000,
                           "FlushDigitsDurationInMilliseconds": 10000}}])
    for _ in range(2):
        (p,) = of(out, cmd.PlayAudio)
        tx.media_done(p.token)
        out = tx.take_commands()
    (place,) = of(out, cmd.PlaceCall)
    tx.leg_answered(place.call_id)
    out = tx.take_commands()
    (reported,) = events(out)
    assert reported["ActionData"]["Type"] == "CallAndBridge"
    assert kinds(respond(tx, [])) == ["ACTION_SUCCESSFUL"]  # the rest of the list: ReceiveDigits
    assert tx._listeners  # ReceiveDigits armed on LEG-A


def test_digits_collected_while_an_update_is_pending_are_reported():
    tx = make_tx()
    tx.take_commands()
    respond(tx, [{"Type": "PlayAudioAndGetDigits", "Parameters": {
        "AudioSource": {"Type": "S3", "BucketName": "b", "Key": "pin.wav"},
        "FailureAudioSource": {"Type": "S3", "BucketName": "b", "Key": "again.wav"},
        "MinNumberOfDigits": 2, "MaxNumberOfDigits": 2, "RepeatDurationInMilliseconds": 3000}}])
    tx.update_requested({"action": "PlayAudio"})
    tx.take_commands()
    assert not of(respond(tx, [play("updated.wav")]), cmd.PlayAudio)  # not interruptible: waits
    for digit in "42":
        tx.digit_received("call-a", digit)
    out = tx.take_commands()
    (reported,) = events(out)
    assert reported["ActionData"]["Type"] == "PlayAudioAndGetDigits"
    assert reported["ActionData"]["ReceivedDigits"] == "42"
    assert [p.key for p in of(out, cmd.PlayAudio)] == ["updated.wav"]  # and the update's list runs


def test_a_reporting_action_last_in_its_list_reports_once():
    tx = make_tx()
    _, out = bridged(tx)
    assert kinds(out) == ["ACTION_SUCCESSFUL"]
    assert respond(tx, []) == []


def test_an_unanswered_call_left_idle_on_any_path_is_refused_after_30_s():
    clock = Clock()
    tx = make_tx(clock)
    tx.take_commands()
    (place,) = of(respond(tx, [bridge()]), cmd.PlaceCall)  # LEG-A stays unanswered while B rings
    clock.now += 29
    tx.handle_timers(clock.now)
    tx.leg_failed(place.call_id, 486)
    assert kinds(tx.take_commands()) == ["ACTION_FAILED"]
    assert respond(tx, []) == []
    assert tx.next_deadline() == pytest.approx(clock.now + 30)
    clock.now += 30
    tx.handle_timers(clock.now)
    assert tx.take_commands() == [cmd.HangupLeg("call-a", 480)]
