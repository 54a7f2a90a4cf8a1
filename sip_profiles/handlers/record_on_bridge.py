"""Answers with a hold prompt, bridges the caller to +15555550100 and arms ReceiveDigits, in one
list, as the public on-demand-recording flow does. CallAndBridge reports when the bridge is
up although it is not last in its list; that ACTION_SUCCESSFUL starts a call recording of
both directions and plays a recording notice over the bridge. When the caller hangs up,
LEG-B is hung up too. Every other event gets an empty list, as the sample's default does."""

HOLD = {"Type": "S3", "BucketName": "prompts", "Key": "please-hold.wav"}
NOTICE = {"Type": "S3", "BucketName": "prompts", "Key": "recorded-notice.wav"}


def _respond(*actions):
    return {"SchemaVersion": "1.0", "Actions": list(actions)}


def lambda_handler(event, context):
    kind = event["InvocationEventType"]
    data = event.get("ActionData", {})
    leg_a = event["CallDetails"]["Participants"][0]["CallId"]
    digits = {"Type": "ReceiveDigits", "Parameters": {
        "CallId": leg_a, "InputDigitsRegex": "[5-7]", "InBetweenDigitsDurationInMilliseconds": 1000,
        "FlushDigitsDurationInMilliseconds": 10000}}
    if kind == "NEW_INBOUND_CALL":
        return _respond(
            {"Type": "PlayAudio", "Parameters": {"CallId": leg_a, "AudioSource": HOLD}},
            {"Type": "CallAndBridge", "Parameters": {
                "CallTimeoutSeconds": 10, "CallerIdNumber": "+14255550199",
                "Endpoints": [{"BridgeEndpointType": "PSTN", "Uri": "+15555550100"}]}},
            digits)
    if kind == "ACTION_SUCCESSFUL" and data["Type"] == "CallAndBridge":
        return _respond(
            {"Type": "StartCallRecording", "Parameters": {
                "CallId": leg_a, "Track": "BOTH",
                "Destination": {"Type": "S3", "Location": "recordings/calls"}}},
            {"Type": "PlayAudio", "Parameters": {"CallId": leg_a, "AudioSource": NOTICE}},
            digits)
    if kind == "HANGUP" and data["Parameters"]["ParticipantTag"] == "LEG-A":
        return _respond({"Type": "Hangup", "Parameters": {"ParticipantTag": "LEG-B"}})
    return _respond()
