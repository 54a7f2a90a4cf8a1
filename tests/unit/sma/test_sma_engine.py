"""The sans-IO SMA engine: event JSON shapes and the list, interruption and hangup rules."""
import pytest

from harness.sma import commands as cmd
from harness.sma.engine import CallTransaction
from harness.sma.model import Leg, SipMediaApplication

PLAY_A = {"Type": "PlayAudio", "Parameters": {"AudioSource": {"Type": "S3", "BucketName": "b", "Key": "a.wav"}}}
PLAY_B = {"Type": "PlayAudio", "Parameters": {"Repeat": "2", "AudioSource": {"Type": "S3", "BucketName": "b", "Key": "b.wav"}}}
HANGUP = {"Type": "Hangup", "Parameters": {"SipResponseCode": "0"}}


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def tx():
    sma = SipMediaApplication("sma-id-1", "unused:handler", aws_account_id="111122223333",
                              aws_region="us-east-1")
    t = CallTransaction(sma, "tx-1", "rule-1", Clock(), lambda: 1641998241509)
    t.inbound_call(Leg("call-a", "LEG-A", "+14345550101", "+14255550199", "Inbound",
                       1641998241509, sip_headers={"X-Test-Value": "String"}))
    return t


def invokes(commands):
    return [c for c in commands if isinstance(c, cmd.Invoke)]


def respond(tx, actions=None, **extra):
    body = {"SchemaVersion": "1.0", **extra}
    if actions is not None:
        body["Actions"] = actions
    tx.handler_result(tx.sequence, body)
    return tx.take_commands()


@pytest.mark.covers("event:NEW_INBOUND_CALL")
def test_new_inbound_call_event_has_the_reference_shape(tx):
    commands = tx.take_commands()
    assert isinstance(commands[0], cmd.Ring)
    (inv,) = invokes(commands)
    assert inv.event == {
        "SchemaVersion": "1.0", "Sequence": 1, "InvocationEventType": "NEW_INBOUND_CALL",
        "CallDetails": {
            "TransactionId": "tx-1", "AwsAccountId": "111122223333", "AwsRegion": "us-east-1",
            "SipRuleId": "rule-1", "SipMediaApplicationId": "sma-id-1",
            "Participants": [{"CallId": "call-a", "ParticipantTag": "LEG-A", "To": "+14345550101",
                              "From": "+14255550199", "Direction": "Inbound",
                              "StartTimeInMilliseconds": "1641998241509",
                              "SipHeaders": {"X-Test-Value": "String"}}]}}


@pytest.mark.covers("action:PlayAudio")
def test_media_action_answers_then_plays(tx):
    tx.take_commands()
    out = respond(tx, [PLAY_A])
    assert [type(c) for c in out] == [cmd.Answer, cmd.PlayAudio]
    assert out[1].key == "a.wav" and out[1].repeat == 1


@pytest.mark.covers("event:CALL_UPDATE_REQUESTED", "event:ACTION_INTERRUPTED")
def test_update_interrupts_play_and_reports_in_order(tx):
    tx.take_commands()
    play = respond(tx, [PLAY_A], TransactionAttributes={"k": "v"})[1]
    tx.update_requested({"action": "switch"})
    (upd,) = invokes(tx.take_commands())
    assert upd.event["InvocationEventType"] == "CALL_UPDATE_REQUESTED"
    assert upd.event["Sequence"] == 2
    assert upd.event["ActionData"] == {"Type": "CallUpdateRequest",
                                       "Parameters": {"Arguments": {"action": "switch"}}}
    assert upd.event["CallDetails"]["TransactionAttributes"] == {"k": "v"}
    out = respond(tx, [PLAY_B])
    assert [type(c) for c in out] == [cmd.StopMedia, cmd.PlayAudio, cmd.Invoke]
    interrupted = out[2]
    assert interrupted.ignore_response
    assert interrupted.event["InvocationEventType"] == "ACTION_INTERRUPTED"
    assert interrupted.event["ActionData"] == {"Type": "PlayAudio", "Parameters": {
        "AudioSource": {"Type": "S3", "BucketName": "b", "Key": "a.wav"}, "Repeat": 1}}
    # the response to ACTION_INTERRUPTED is ignored, even if it carries actions
    assert respond(tx, [HANGUP]) == []
    tx.media_done(play.token)  # a stale completion of the interrupted prompt changes nothing
    assert tx.take_commands() == []
    tx.media_done(out[1].token)
    (done,) = invokes(tx.take_commands())
    assert done.event["InvocationEventType"] == "ACTION_SUCCESSFUL"
    assert done.event["Sequence"] == 4
    assert done.event["ActionData"]["Parameters"]["Repeat"] == "2"


@pytest.mark.covers("event:ACTION_SUCCESSFUL", "action:Pause")
def test_one_action_successful_per_list_with_the_last_action(tx):
    tx.take_commands()
    out = respond(tx, [PLAY_A, {"Type": "Pause", "Parameters": {"DurationInMilliseconds": "500"}}])
    tx.media_done(out[1].token)
    pause = tx.take_commands()
    assert isinstance(pause[0], cmd.PlaySilence) and pause[0].duration_ms == 500
    tx.media_done(pause[0].token)
    (done,) = invokes(tx.take_commands())
    assert done.event["ActionData"]["Type"] == "Pause"


@pytest.mark.covers("event:ACTION_FAILED")
def test_failed_action_clears_the_rest(tx):
    tx.take_commands()
    out = respond(tx, [{"Type": "PlayAudio", "Parameters": {"AudioSource": {"Type": "S3"}}}, PLAY_B])
    (failed,) = invokes(out)
    data = failed.event["ActionData"]
    assert failed.event["InvocationEventType"] == "ACTION_FAILED"
    assert data["ErrorType"] == "InvalidAudioSource" and data["Type"] == "PlayAudio"
    assert not [c for c in out if isinstance(c, cmd.PlayAudio)]


@pytest.mark.covers("event:HANGUP")
def test_hangup_event_after_remote_bye_and_response_ignored(tx):
    tx.take_commands()
    respond(tx, [PLAY_A])
    tx.leg_ended("call-a", 0)
    (hangup,) = invokes(tx.take_commands())
    assert hangup.event["InvocationEventType"] == "HANGUP"
    assert hangup.event["ActionData"] == {"Type": "Hangup", "Parameters": {
        "SipResponseCode": 0, "CallId": "call-a", "ParticipantTag": "LEG-A"}}
    assert hangup.event["CallDetails"]["Participants"][0]["Status"] == "Disconnected"
    out = respond(tx, [PLAY_B])
    assert [type(c) for c in out] == [cmd.TransactionEnded]


@pytest.mark.covers("action:Hangup")
def test_hangup_action_ends_the_only_leg(tx):
    tx.take_commands()
    out = respond(tx, [HANGUP, PLAY_B])
    assert out == [cmd.HangupLeg("call-a", 0)]


@pytest.mark.parametrize("response,error_type", [
    # the ErrorType the service sends (aws-samples/amazon-chime-sdk-click-to-call issue 125)
    ({"SchemaVersion": "2.0", "Actions": []}, "SchemaVersionMismatch"),
    ({"Actions": []}, "SchemaVersionMismatch"),
    ({"statusCode": 200, "body": '{"SchemaVersion": "1.0", "Actions": []}'}, "SchemaVersionMismatch"),
    ({"SchemaVersion": "1.0", "Actions": [PLAY_A] * 11}, "TooManyActions"),
    ({"SchemaVersion": "1.0", "Actions": [{"Type": "Dance"}]}, "InvalidActionType"),
    ([], "InvalidResponse"),
    ({"SchemaVersion": "1.0", "Actions": {"Type": "Hangup"}}, "InvalidActions"),
    ({"SchemaVersion": "1.0", "Actions": [{"Type": "Hangup", "Parameters": ["0"]}]}, "InvalidActionParameters"),
    ({"SchemaVersion": "1.0", "TransactionAttributes": {"count": 1}}, "TransactionAttributesInvalidType"),
    ({"SchemaVersion": "1.0", "TransactionAttributes": {str(i): "v" for i in range(101)}},
     "TransactionAttributesInvalidMapSize"),
    # 20 KB: one attribute whose JSON map is 20,481 bytes
    ({"SchemaVersion": "1.0", "TransactionAttributes": {"k": "v" * (20 * 1024 - 8)}},
     "TransactionAttributesInvalidSize"),
])
@pytest.mark.covers("event:INVALID_LAMBDA_RESPONSE", "response-error:InvalidResponse",
                     "response-error:SchemaVersionMismatch", "response-error:InvalidActions",
                     "response-error:TooManyActions", "response-error:InvalidActionType",
                     "response-error:InvalidActionParameters",
                     "response-error:TransactionAttributesInvalidType",
                     "response-error:TransactionAttributesInvalidMapSize",
                     "response-error:TransactionAttributesInvalidSize")
def test_invalid_response_gives_invalid_lambda_response(tx, response, error_type):
    tx.take_commands()
    tx.handler_result(1, response)
    (inv,) = invokes(tx.take_commands())
    assert inv.event["InvocationEventType"] == "INVALID_LAMBDA_RESPONSE"
    assert inv.event["ErrorType"] == error_type
    assert "ActionData" not in inv.event and inv.event["ErrorMessage"]


def test_attributes_of_exactly_20_kb_are_kept(tx):
    tx.take_commands()
    attributes = {"k": "v" * (20 * 1024 - 9)}  # {"k": "vvv..."} is 20,480 bytes
    respond(tx, TransactionAttributes=attributes)
    tx.update_requested({})
    (inv,) = invokes(tx.take_commands())
    assert inv.event["InvocationEventType"] == "CALL_UPDATE_REQUESTED"
    assert inv.event["CallDetails"]["TransactionAttributes"] == attributes


def test_null_actions_keep_the_list_and_empty_list_stops_it(tx):
    tx.take_commands()
    respond(tx, [PLAY_A])
    tx.update_requested({})
    tx.take_commands()
    assert respond(tx, None) == []  # Actions missing: the prompt carries on
    tx.update_requested({})
    tx.take_commands()
    out = respond(tx, [])
    assert [type(c) for c in out] == [cmd.StopMedia, cmd.Invoke]


def test_no_actions_for_new_inbound_call_times_out_after_30_s(tx):
    tx.take_commands()
    assert respond(tx, []) == []
    tx.handle_timers(tx.clock() + 29.9)
    assert tx.take_commands() == []
    tx.handle_timers(tx.clock() + 30.0)
    assert tx.take_commands() == [cmd.HangupLeg("call-a", 480)]


def test_handler_failure_ends_the_call_with_480(tx):
    tx.take_commands()
    tx.handler_result(1, None, failed="timeout")
    assert tx.take_commands() == [cmd.HangupLeg("call-a", 480)]


def test_the_stub_maps_s3_into_its_folders_only(tmp_path):
    from harness.media.sources import InvalidAudioSource
    from harness.stub import StubConfig
    (tmp_path / "bucket" / "bkt").mkdir(parents=True)
    (tmp_path / "bucket" / "bkt" / "p.wav").write_bytes(b"RIFF")
    (tmp_path / "secret.wav").write_bytes(b"RIFF")
    config = StubConfig([], [], tmp_path / "bucket", run_dir=tmp_path / "run")
    assert config.read_path("bkt", "p.wav") == (tmp_path / "bucket" / "bkt" / "p.wav").resolve()
    for bucket, key in (("bkt", "../../secret.wav"), ("bkt", "/etc/passwd"), ("bkt", "missing.wav"),
                        ("..", "secret.wav"), ("b", "p.wav")):
        with pytest.raises(InvalidAudioSource):
            config.read_path(bucket, key)
