"""Every action on the sans-IO engine: parameters, defaults, results and errors, with an
injected clock so whole call flows run in microseconds."""
import re

import pytest

from harness.sma import commands as cmd
from harness.sma.engine import CallTransaction
from harness.sma.model import Leg, SipMediaApplication


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def make_tx(**sma_kw):
    sma = SipMediaApplication("sma-1", "h", **sma_kw)
    clock = Clock()
    tx = CallTransaction(sma, "tx-1", "rule-1", clock, lambda: 1_700_000_000_123)
    tx.inbound_call(Leg("call-a", "LEG-A", "+14345550101", "+14255550199", "Inbound", 1))
    tx.take_commands()
    return tx, clock


def respond(tx, *actions, **extra):
    tx.handler_result(tx.sequence, {"SchemaVersion": "1.0", "Actions": list(actions), **extra})
    return tx.take_commands()


def invoked(commands):
    return [c.event for c in commands if isinstance(c, cmd.Invoke)]


def of(commands, kind):
    return [c for c in commands if isinstance(c, kind)]


def advance(tx, clock, seconds):
    clock.now += seconds
    tx.handle_timers(clock.now)
    return tx.take_commands()


S3 = {"Type": "S3", "BucketName": "b", "Key": "prompt.wav"}
FAIL = {"Type": "S3", "BucketName": "b", "Key": "failure.wav"}


def get_digits(**params):
    return {"Type": "PlayAudioAndGetDigits", "Parameters": {
        "AudioSource": S3, "FailureAudioSource": FAIL, "RepeatDurationInMilliseconds": "3000",
        "MinNumberOfDigits": 3, "MaxNumberOfDigits": 5, **params}}


@pytest.mark.covers("action:PlayAudioAndGetDigits")
def test_get_digits_barge_in_terminator_and_defaults():
    tx, clock = make_tx()
    out = respond(tx, get_digits(InputDigitsRegex=r"^\d+$"))
    assert [type(c) for c in out] == [cmd.Answer, cmd.PlayAudio]
    tx.digit_received("call-a", "1")
    assert of(tx.take_commands(), cmd.StopMedia), "the first digit stops the prompt"
    for d in "23#":
        tx.digit_received("call-a", d)
    (event,) = invoked(tx.take_commands())
    assert event["InvocationEventType"] == "ACTION_SUCCESSFUL"
    data = event["ActionData"]
    assert data["ReceivedDigits"] == "123"
    assert data["Parameters"]["TerminatorDigits"] == ["#"] and data["Parameters"]["Repeat"] == 1
    assert data["Parameters"]["InBetweenDigitsDurationInMilliseconds"] == 3000


@pytest.mark.covers("action-error:InvalidDigitsReceived")
def test_get_digits_retries_with_the_failure_prompt_then_fails():
    tx, clock = make_tx()
    out = respond(tx, get_digits(Repeat="2"))
    token = of(out, cmd.PlayAudio)[0].token
    tx.media_done(token)  # prompt played; waiting 3 s for digits
    assert advance(tx, clock, 2.9) == []
    out = advance(tx, clock, 0.2)
    assert of(out, cmd.PlayAudio)[0].key == "failure.wav"
    tx.media_done(token)
    assert of(tx.take_commands(), cmd.PlayAudio)[0].key == "prompt.wav"
    tx.media_done(token)
    tx.digit_received("call-a", "1")
    tx.digit_received("call-a", "#")  # too few digits: the last attempt fails
    assert of(tx.take_commands(), cmd.PlayAudio)[0].key == "failure.wav"
    tx.media_done(token)
    (event,) = invoked(tx.take_commands())
    assert event["InvocationEventType"] == "ACTION_FAILED"
    assert event["ActionData"]["ErrorType"] == "InvalidDigitsReceived"


@pytest.mark.covers("action:ReceiveDigits", "event:DIGITS_RECEIVED")
def test_receive_digits_succeeds_at_once_then_reports_matches():
    tx, clock = make_tx()
    out = respond(tx, {"Type": "ReceiveDigits", "Parameters": {
        "InputDigitsRegex": r"^\*\d$", "InBetweenDigitsDurationInMilliseconds": 1000,
        "FlushDigitsDurationInMilliseconds": 3000}})
    (done,) = invoked(out)
    assert done["InvocationEventType"] == "ACTION_SUCCESSFUL"
    assert done["ActionData"]["ReceivedDigits"] == ""
    respond(tx)  # the handler returns nothing new
    tx.digit_received("call-a", "*")
    tx.digit_received("call-a", "5")
    assert advance(tx, clock, 0.9) == []
    (event,) = invoked(advance(tx, clock, 0.2))
    assert event["InvocationEventType"] == "DIGITS_RECEIVED"
    assert event["ActionData"]["ReceivedDigits"] == "*5"
    assert event["ActionData"]["Type"] == "ReceiveDigits"
    respond(tx)
    tx.digit_received("call-a", "9")  # no match: discarded silently
    assert invoked(advance(tx, clock, 1.1)) == []


@pytest.mark.covers("action:PlayAudio")
def test_play_audio_stops_at_a_playback_terminator():
    tx, clock = make_tx()
    respond(tx, {"Type": "PlayAudio", "Parameters": {"AudioSource": S3, "PlaybackTerminators": ["#"]}})
    tx.digit_received("call-a", "5")
    assert tx.take_commands() == []
    tx.digit_received("call-a", "#")
    out = tx.take_commands()
    assert of(out, cmd.StopMedia) and invoked(out)[0]["InvocationEventType"] == "ACTION_SUCCESSFUL"


@pytest.mark.parametrize("action,error_type,message", [
    ({"Type": "SendDigits", "Parameters": {"CallId": "call-a", "Digits": "12X"}},
     "InvalidActionParameter", "Digits parameter value is invalid."),
    ({"Type": "SendDigits", "Parameters": {"CallId": "call-a", "Digits": "1", "ToneDurationInMilliseconds": 10}},
     "InvalidActionParameter", "ToneDurationInMilliseconds parameter value is invalid."),
    ({"Type": "Speak", "Parameters": {"CallId": "call-a"}},
     "MissingRequiredActionParameter", "Text is a required parameter."),
    ({"Type": "Speak", "Parameters": {"CallId": "call-a", "Text": "x" * 1001}},
     "MissingRequiredActionParameter", "Text is limited to 1,000 characters"),
    ({"Type": "Pause", "Parameters": {"DurationInMilliseconds": "-5"}},
     "InvalidActionParameter", "DurationInMilliseconds parameter value is invalid."),
    ({"Type": "PlayAudio", "Parameters": {"CallId": "nobody", "AudioSource": S3}},
     "InvalidActionParameter", "CallId or ParticipantTag parameter for action is invalid."),
    ({"Type": "Hangup", "Parameters": {"SipResponseCode": "404"}},
     "InvalidActionParameter", "SipResponseCode parameter value is invalid."),
    ({"Type": "CallAndBridge", "Parameters": {"CallerIdNumber": "+15550100", "Endpoints": [
        {"BridgeEndpointType": "AWS", "Uri": "5550100", "Arn": "arn:vc"}], "SipHeaders": {"X-AMZN-X": "1"}}},
     "InvalidActionParameter", "Invalid SIP header(s) provided: X-AMZN-X"),
    # the API's E164PhoneNumber: no trailing newline, ASCII digits only
    ({"Type": "CallAndBridge", "Parameters": {"CallerIdNumber": "+14255550199\n", "Endpoints": [
        {"BridgeEndpointType": "PSTN", "Uri": "+15555550100"}]}},
     "InvalidActionParameter", "CallerIdNumber parameter value is invalid."),
    ({"Type": "CallAndBridge", "Parameters": {"CallerIdNumber": "+14255550199", "Endpoints": [
        {"BridgeEndpointType": "PSTN", "Uri": "+1555555\u0661\u0662"}]}},
     "InvalidActionParameter", "Endpoints parameter value is invalid."),
    ({"Type": "ModifyChimeMeetingAttendees", "Parameters": {"Operation": "Mute", "MeetingId": "m",
                                                           "AttendeeList": ["a"]}},
     "InvalidActionParameter", "Call is not connected to Chime Meeting."),
    ({"Type": "StartBotConversation", "Parameters": {"BotAliasArn": "arn:bot:unknown"}},
     "ResourceNotFound", "Bot alias arn:bot:unknown not found."),
    ({"Type": "RecordAudio", "Parameters": {"RecordingTerminators": ["#"]}},
     "InvalidActionParameter", "RecordingDestination parameter value is invalid."),
])
@pytest.mark.covers("action-error:InvalidActionParameter",
                     "action-error:MissingRequiredActionParameter", "action-error:ResourceNotFound")
def test_invalid_parameters_fail_with_the_documented_error(action, error_type, message):
    tx, _ = make_tx()
    (event,) = invoked(respond(tx, action, {"Type": "Hangup"}))
    assert event["InvocationEventType"] == "ACTION_FAILED"
    assert (event["ActionData"]["ErrorType"], event["ActionData"]["ErrorMessage"]) == (error_type, message)
    assert event["ActionData"]["Type"] == action["Type"]


@pytest.mark.covers("action:SendDigits")
def test_send_digits_and_speak_emit_media_with_defaults():
    tx, _ = make_tx()
    out = respond(tx, {"Type": "SendDigits", "Parameters": {"CallId": "call-a", "Digits": "1,2#a"}})
    (send,) = of(out, cmd.SendDigits)
    assert (send.digits, send.tone_ms) == ("1,2#A", 250)
    tx.media_done(send.token)
    out = tx.take_commands()
    assert invoked(out)[0]["ActionData"]["Parameters"]["ToneDurationInMilliseconds"] == 250
    respond(tx, {"Type": "Speak", "Parameters": {"CallId": "call-a", "Text": "Hello"}})
    # (the response above went to ACTION_SUCCESSFUL)


@pytest.mark.covers("action:RecordAudio")
def test_record_audio_ends_on_a_terminator_with_its_destination():
    tx, clock = make_tx()
    out = respond(tx, {"Type": "RecordAudio", "Parameters": {
        "DurationInSeconds": "10", "RecordingTerminators": ["#"],
        "RecordingDestination": {"Type": "S3", "BucketName": "rec", "Prefix": "calls/"}}})
    (start,) = of(out, cmd.StartRecordAudio)
    assert start.bucket == "rec" and start.key.startswith("calls/tx-1-")
    tx.digit_received("call-a", "#")
    out = tx.take_commands()
    assert of(out, cmd.StopRecordAudio)
    data = invoked(out)[0]["ActionData"]
    assert data["RecordingDestination"] == {"Type": "S3", "BucketName": "rec", "Key": start.key}
    assert data["RecordingTerminatorUsed"] == "#"


def test_record_audio_stops_at_its_duration_without_a_terminator_field():
    tx, clock = make_tx()
    respond(tx, {"Type": "RecordAudio", "Parameters": {
        "DurationInSeconds": 2, "RecordingTerminators": "#",
        "RecordingDestination": {"Type": "S3", "BucketName": "rec"}}})
    out = advance(tx, clock, 2.0)
    assert "RecordingTerminatorUsed" not in invoked(out)[0]["ActionData"]


BRIDGE = {"Type": "CallAndBridge", "Parameters": {
    "CallTimeoutSeconds": "5", "CallerIdNumber": "+14255550199",
    "Endpoints": [{"BridgeEndpointType": "PSTN", "Uri": "+15555550100"}],
    "RingbackTone": {"Type": "S3", "BucketName": "b", "Key": "ring.wav"}}}


@pytest.mark.covers("action:CallAndBridge")
def test_call_and_bridge_places_leg_b_and_bridges_when_it_answers():
    tx, clock = make_tx()
    respond(tx, {"Type": "Pause", "Parameters": {"DurationInMilliseconds": 20}})
    tx.media_done(1)
    tx.take_commands()
    out = respond(tx, BRIDGE)
    (place,) = of(out, cmd.PlaceCall)
    assert (place.to, place.from_, place.endpoint_type) == ("+15555550100", "+14255550199", "PSTN")
    assert of(out, cmd.PlayAudio)[0].key == "ring.wav"
    tx.leg_answered(place.call_id)
    out = tx.take_commands()
    assert of(out, cmd.Bridge) == [cmd.Bridge("call-a", place.call_id)]
    event = invoked(out)[0]
    assert event["InvocationEventType"] == "ACTION_SUCCESSFUL"
    tags = [(p["ParticipantTag"], p["Status"]) for p in event["CallDetails"]["Participants"]]
    assert tags == [("LEG-A", "Connected"), ("LEG-B", "Connected")]
    # LEG-B hangs up: HANGUP for it, and the handler's actions run since LEG-A is still up
    respond(tx)
    tx.leg_ended(place.call_id, 0)
    (hangup,) = invoked(tx.take_commands())
    assert hangup["ActionData"]["Parameters"]["ParticipantTag"] == "LEG-B"
    out = respond(tx, {"Type": "Hangup", "Parameters": {"ParticipantTag": "LEG-A"}})
    assert of(out, cmd.HangupLeg) == [cmd.HangupLeg("call-a", 0)]


@pytest.mark.covers("action-error:CallNotAnswered")
def test_call_and_bridge_times_out_as_call_not_answered():
    tx, clock = make_tx()
    out = respond(tx, BRIDGE)
    (place,) = of(out, cmd.PlaceCall)
    assert advance(tx, clock, 4.9) == []
    out = advance(tx, clock, 0.2)
    assert of(out, cmd.CancelCall) == [cmd.CancelCall(place.call_id)]
    data = invoked(out)[0]["ActionData"]
    assert (data["ErrorType"], data["ErrorMessage"]) == ("CallNotAnswered", "Call not answered")


def test_create_call_flow_keeps_attributes_from_ignored_responses():
    sma = SipMediaApplication("sma-1", "h")
    tx = CallTransaction(sma, "tx-9", None, Clock(), lambda: 5)
    tx.outbound_call(Leg("call-a", "LEG-A", "+15555550100", "+14255550199", "Outbound", 5),
                     {"FirstName": "John"}, {"X-Custom": "1"})
    out = tx.take_commands()
    (place,) = of(out, cmd.PlaceCall)
    assert place.sip_headers == {"X-Custom": "1"}
    (first,) = invoked(out)
    assert first["InvocationEventType"] == "NEW_OUTBOUND_CALL"
    assert first["ActionData"] == {"Type": "CallCreateRequest", "Parameters": {"Arguments": {"FirstName": "John"}}}
    assert "SipRuleId" not in first["CallDetails"]
    tx.leg_ringing("call-a")
    out = respond(tx, {"Type": "Hangup"}, TransactionAttributes={"k": "v"})  # ignored, but the attributes stay
    assert not of(out, cmd.HangupLeg)
    assert [e["InvocationEventType"] for e in invoked(out)] == ["RINGING"]
    tx.leg_answered("call-a")
    (answered,) = invoked(respond(tx))
    assert answered["InvocationEventType"] == "CALL_ANSWERED"
    assert answered["CallDetails"]["TransactionAttributes"] == {"k": "v"}
    out = respond(tx, {"Type": "PlayAudio", "Parameters": {"AudioSource": S3}})
    assert not of(out, cmd.Answer) and of(out, cmd.PlayAudio)


@pytest.mark.covers("action:StartCallRecording")
def test_call_recording_key_and_once_per_leg():
    tx, _ = make_tx()
    start = {"Type": "StartCallRecording", "Parameters": {
        "CallId": "call-a", "Track": "BOTH", "Destination": {"Type": "S3", "Location": "bucket"}}}
    out = respond(tx, start)
    (rec,) = of(out, cmd.CallRecording)
    assert rec.operation == "start" and rec.bucket == "bucket"
    assert re.fullmatch(r"Amazon-Chime-SMA-Call-Recordings/2023/11/14/2023-11-14-22-13-20-123_tx-1_call-a\.wav",
                        rec.key), rec.key
    assert not invoked(out)  # it succeeds once the edge has opened the recording
    tx.media_done(rec.token)
    assert invoked(tx.take_commands())[0]["ActionData"]["CallRecordingDestination"] == {
        "Type": "S3", "Location": f"bucket/{rec.key}"}
    (again,) = invoked(respond(tx, start))
    assert again["InvocationEventType"] == "ACTION_FAILED"


@pytest.mark.covers("action-error:SystemException")
def test_call_recording_that_cannot_open_fails_and_can_be_started_again():
    tx, _ = make_tx()
    start = {"Type": "StartCallRecording", "Parameters": {
        "CallId": "call-a", "Track": "BOTH", "Destination": {"Type": "S3", "Location": "bucket"}}}
    (rec,) = of(respond(tx, start), cmd.CallRecording)
    tx.media_done(rec.token, ("SystemException", "System error while running action."))
    (failed,) = invoked(tx.take_commands())
    assert failed["InvocationEventType"] == "ACTION_FAILED"
    assert failed["ActionData"]["ErrorType"] == "SystemException"
    assert of(respond(tx, start), cmd.CallRecording)  # not "already recording"


@pytest.mark.covers("action:JoinChimeMeeting", "action:ModifyChimeMeetingAttendees")
def test_meeting_leg_and_attendees():
    tx, _ = make_tx()
    out = respond(tx, {"Type": "JoinChimeMeeting", "Parameters": {"JoinToken": "t", "MeetingId": "m-1"}})
    event = invoked(out)[0]
    assert [p["To"] for p in event["CallDetails"]["Participants"]] == ["+14345550101", "SMA"]
    out = respond(tx, {"Type": "ModifyChimeMeetingAttendees", "Parameters": {
        "Operation": "Mute", "MeetingId": "m-1", "AttendeeList": ["att-1"], "ParticipantTag": "LEG-B"}})
    assert invoked(out)[0]["InvocationEventType"] == "ACTION_SUCCESSFUL"


@pytest.mark.covers("action:StartBotConversation")
def test_bot_conversation_returns_the_scripted_intent():
    intent = {"SessionState": {"Intent": {"Name": "Book", "State": "Fulfilled"}}}
    tx, _ = make_tx(bots={"arn:bot:1": intent})
    out = respond(tx, {"Type": "StartBotConversation", "Parameters": {"BotAliasArn": "arn:bot:1"}})
    assert invoked(out)[0]["ActionData"]["IntentResult"] == intent


@pytest.mark.covers("action:VoiceFocus", "action-error:ActionExecutionThrottled")
def test_voice_focus_is_throttled_per_account():
    sma = SipMediaApplication("sma-1", "h")
    tx = CallTransaction(sma, "t", None, Clock(), lambda: 1, action_allowed=lambda account: False)
    tx.inbound_call(Leg("call-a", "LEG-A", "+1", "+2", "Inbound", 1))
    tx.take_commands()
    (event,) = invoked(respond(tx, {"Type": "VoiceFocus", "Parameters": {"Enable": True, "CallId": "call-a"}}))
    assert event["ActionData"]["ErrorType"] == "ActionExecutionThrottled"


def test_a_failing_handler_falls_over_to_the_next_sma_of_the_rule():
    first, second = SipMediaApplication("sma-1", "h1"), SipMediaApplication("sma-2", "h2")
    tx = CallTransaction(first, "t", "rule", Clock(), lambda: 1, fallbacks=[second])
    tx.inbound_call(Leg("call-a", "LEG-A", "+1", "+2", "Inbound", 1))
    tx.take_commands()
    tx.handler_result(1, None, failed="timeout")
    (event,) = invoked(tx.take_commands())
    assert event["InvocationEventType"] == "NEW_INBOUND_CALL"
    assert event["CallDetails"]["SipMediaApplicationId"] == "sma-2"
    tx.handler_result(2, None, failed="timeout")
    assert tx.take_commands() == [cmd.HangupLeg("call-a", 480)]


def test_the_1000th_invocation_is_the_last():
    tx, _ = make_tx()
    respond(tx, {"Type": "Pause", "Parameters": {"DurationInMilliseconds": 1000000}})
    keep = {"SchemaVersion": "1.0"}  # no Actions: the Pause carries on
    for _ in range(998):
        tx.update_requested({})
        tx.handler_result(tx.sequence, keep)
    assert tx.sequence == 999 and not tx.invocations_exhausted
    tx.update_requested({})
    tx.handler_result(tx.sequence, keep)
    assert tx.invocations_exhausted
    tx.take_commands()
    tx.update_requested({})
    assert tx.take_commands() == [cmd.HangupLeg("call-a", 480)]


@pytest.mark.parametrize("action,error_type", [
    ({"Type": "PlayAudio", "Parameters": {"AudioSource": {"Type": "S3", "BucketName": "b", "Key": "../../etc/passwd"}}},
     "InvalidAudioSource"),
    ({"Type": "PlayAudio", "Parameters": {"AudioSource": {"Type": "S3", "BucketName": "..", "Key": "x.wav"}}},
     "InvalidAudioSource"),
    ({"Type": "RecordAudio", "Parameters": {"RecordingTerminators": ["#"], "RecordingDestination": {
        "Type": "S3", "BucketName": "rec", "Prefix": "../../outside/"}}}, "InvalidActionParameter"),
    ({"Type": "StartCallRecording", "Parameters": {"CallId": "call-a", "Track": "BOTH", "Destination": {
        "Type": "S3", "Location": "bucket/../../../tmp"}}}, "InvalidActionParameter"),
])
@pytest.mark.covers("action-error:InvalidAudioSource")
def test_s3_keys_and_prefixes_cannot_leave_the_bucket(action, error_type):
    tx, _ = make_tx()
    (event,) = invoked(respond(tx, action))
    assert event["InvocationEventType"] == "ACTION_FAILED"
    assert event["ActionData"]["ErrorType"] == error_type


@pytest.mark.covers("action:Answer")
def test_answer_answers_the_leg_and_succeeds_at_once():
    tx, _ = make_tx()
    out = respond(tx, {"Type": "Answer"})
    assert of(out, cmd.Answer) == [cmd.Answer("call-a")]
    (event,) = invoked(out)
    assert event["InvocationEventType"] == "ACTION_SUCCESSFUL"
    assert event["ActionData"] == {"Type": "Answer", "Parameters": {}}


@pytest.mark.covers("action:SpeakAndGetDigits")
def test_speak_and_get_digits_speaks_collects_and_reuses_the_voice_for_its_failure_prompt():
    tx, _ = make_tx()
    action = {"Type": "SpeakAndGetDigits", "Parameters": {
        "CallId": "call-a", "RepeatDurationInMilliseconds": 3000, "MinNumberOfDigits": 1, "MaxNumberOfDigits": 2,
        "Repeat": 2,
        "SpeechParameters": {"Text": "Your PIN?", "VoiceId": "Matthew"},
        "FailureSpeechParameters": {"Text": "Try again."}}}
    (prompt,) = of(respond(tx, action), cmd.Speak)
    assert prompt.speech["text"] == "Your PIN?" and prompt.speech["voice"] == "Matthew"
    tx.media_done(prompt.token)
    tx.digit_received("call-a", "#")  # no digits: the failure prompt, in the prompt's voice
    (failure,) = of(tx.take_commands(), cmd.Speak)
    assert failure.speech["text"] == "Try again." and failure.speech["voice"] == "Matthew"
    tx.media_done(failure.token)
    tx.media_done(of(tx.take_commands(), cmd.Speak)[0].token)
    for d in "42":
        tx.digit_received("call-a", d)
    (event,) = invoked(tx.take_commands())
    assert event["InvocationEventType"] == "ACTION_SUCCESSFUL"
    assert event["ActionData"]["ReceivedDigits"] == "42"


@pytest.mark.covers("action:StopCallRecording", "action:PauseCallRecording",
                     "action:ResumeCallRecording")
def test_call_recording_pauses_resumes_and_stops_only_when_its_state_allows():
    tx, _ = make_tx()
    control = {op: {"Type": f"{op}CallRecording", "Parameters": {"CallId": "call-a"}}
               for op in ("Stop", "Pause", "Resume")}
    (failed,) = invoked(respond(tx, control["Pause"]))  # nothing is recording yet
    assert (failed["InvocationEventType"], failed["ActionData"]["ErrorType"]) == \
        ("ACTION_FAILED", "InvalidActionParameter")
    (rec,) = of(respond(tx, {"Type": "StartCallRecording", "Parameters": {
        "CallId": "call-a", "Track": "BOTH", "Destination": {"Type": "S3", "Location": "bucket"}}}),
        cmd.CallRecording)
    tx.media_done(rec.token)
    tx.take_commands()
    out = respond(tx, control["Pause"], control["Resume"], control["Stop"])
    assert [c.operation for c in of(out, cmd.CallRecording)] == ["pause", "resume", "stop"]
    (done,) = invoked(out)
    assert (done["InvocationEventType"], done["ActionData"]["Type"]) == ("ACTION_SUCCESSFUL", "StopCallRecording")
    (again,) = invoked(respond(tx, control["Resume"]))  # stopped: nothing to resume
    assert again["InvocationEventType"] == "ACTION_FAILED"


@pytest.mark.covers("event:RINGING")
def test_ringing_is_invoked_at_most_once_per_call():
    sma = SipMediaApplication("sma-1", "h")
    tx = CallTransaction(sma, "tx-9", None, Clock(), lambda: 5)
    tx.outbound_call(Leg("call-a", "LEG-A", "+15555550100", "+14255550199", "Outbound", 5), {}, {})
    tx.take_commands()
    tx.handler_result(tx.sequence, {"SchemaVersion": "1.0"})
    tx.leg_ringing("call-a")  # 180
    (ringing,) = invoked(tx.take_commands())
    assert ringing["InvocationEventType"] == "RINGING"
    tx.handler_result(tx.sequence, {"SchemaVersion": "1.0"})
    tx.leg_ringing("call-a")  # 183, then another 180: no second RINGING
    tx.leg_ringing("call-a")
    assert invoked(tx.take_commands()) == []
    tx.leg_answered("call-a")
    assert [e["InvocationEventType"] for e in invoked(tx.take_commands())] == ["CALL_ANSWERED"]


@pytest.mark.covers("action:Speak")
def test_speak_speaks_with_the_documented_defaults_and_succeeds_once_spoken():
    tx, _ = make_tx()
    out = respond(tx, {"Type": "Speak", "Parameters": {"CallId": "call-a", "Text": "Hello"}})
    assert of(out, cmd.Answer) and not invoked(out)
    (speak,) = of(out, cmd.Speak)
    assert speak.speech == {"text": "Hello", "engine": "standard", "language": "en-US",
                            "text_type": "text", "voice": "Joanna"}
    tx.media_done(speak.token)
    (event,) = invoked(tx.take_commands())
    assert event["InvocationEventType"] == "ACTION_SUCCESSFUL"
    assert event["ActionData"]["Parameters"] == {"CallId": "call-a", "Text": "Hello", "Engine": "standard",
                                                 "TextType": "text", "VoiceId": "Joanna"}
