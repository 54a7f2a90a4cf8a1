"""Answers each call with a short Pause and then one action that fails while the stub starts
it (06: a good PlayAudio, for the tests that make the media edge fail); the last digits of the
called number pick which. ACTION_FAILED is answered with a Hangup."""

PROMPTS = {"Type": "S3", "BucketName": "prompts"}
ACTIONS = {
    "01": {"Type": "PlayAudio", "Parameters": {"AudioSource": {**PROMPTS, "Key": "missing.wav"}}},
    "02": {"Type": "PlayAudioAndGetDigits", "Parameters": {
        "AudioSource": {**PROMPTS, "Key": "missing.wav"},
        "FailureAudioSource": {**PROMPTS, "Key": "sorry-goodbye.wav"},
        "MinNumberOfDigits": 1, "MaxNumberOfDigits": 1, "RepeatDurationInMilliseconds": 3000}},
    "03": {"Type": "RecordAudio", "Parameters": {"DurationInSeconds": 10, "RecordingTerminators": ["#"],
                                                 "RecordingDestination": {
        "Type": "S3", "BucketName": "recordings"}}},
    "04": {"Type": "StartCallRecording", "Parameters": {"Track": "BOTH", "Destination": {
        "Type": "S3", "Location": "recordings"}}},
    "05": {"Type": "CallAndBridge", "Parameters": {
        "CallTimeoutSeconds": 10, "CallerIdNumber": "+14255550199",
        "Endpoints": [{"BridgeEndpointType": "PSTN", "Uri": "+19995550100"}]}},
    "06": {"Type": "PlayAudio", "Parameters": {"AudioSource": {**PROMPTS, "Key": "tone-440hz.wav"}}},
}


def lambda_handler(event, context):
    kind = event["InvocationEventType"]
    leg = event["CallDetails"]["Participants"][0]
    if kind == "NEW_INBOUND_CALL":
        action = dict(ACTIONS[leg["To"][-2:]])
        if action["Type"] in ("StartCallRecording", "PlayAudio", "RecordAudio"):
            action["Parameters"] = {**action["Parameters"], "CallId": leg["CallId"]}
        # a short Pause first: the failing action starts from a media event, with no SIP
        # message of the call's set-up left to come and carry its ACTION_FAILED along
        return {"SchemaVersion": "1.0", "Actions": [
            {"Type": "Pause", "Parameters": {"DurationInMilliseconds": 300}}, action]}
    if kind == "ACTION_FAILED":
        return {"SchemaVersion": "1.0", "Actions": [{"Type": "Hangup", "Parameters": {}}]}
    return {"SchemaVersion": "1.0"}
