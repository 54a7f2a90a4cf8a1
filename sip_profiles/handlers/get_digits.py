"""Asks for a PIN with PlayAudioAndGetDigits, then confirms and hangs up."""

PROMPTS = "prompts"


def audio(key):
    return {"Type": "S3", "BucketName": PROMPTS, "Key": key}


def lambda_handler(event, context):
    kind = event["InvocationEventType"]
    data = event.get("ActionData", {})
    if kind == "NEW_INBOUND_CALL":
        return {"SchemaVersion": "1.0", "Actions": [{"Type": "PlayAudioAndGetDigits", "Parameters": {
            "AudioSource": audio("tone-440hz.wav"), "FailureAudioSource": audio("sorry-goodbye.wav"),
            "MinNumberOfDigits": 3, "MaxNumberOfDigits": 4, "TerminatorDigits": ["#"],
            "InBetweenDigitsDurationInMilliseconds": 3000, "RepeatDurationInMilliseconds": "5000",
            "Repeat": 2}}]}
    if kind == "ACTION_SUCCESSFUL" and data.get("Type") == "PlayAudioAndGetDigits":
        return {"SchemaVersion": "1.0", "TransactionAttributes": {"pin": data["ReceivedDigits"]},
                "Actions": [{"Type": "PlayAudio", "Parameters": {"AudioSource": audio("tone-1000hz.wav")}},
                            {"Type": "Hangup", "Parameters": {"SipResponseCode": "0"}}]}
    if kind == "ACTION_FAILED":
        return {"SchemaVersion": "1.0", "Actions": [{"Type": "Hangup", "Parameters": {"SipResponseCode": "0"}}]}
    return {"SchemaVersion": "1.0", "Actions": []}
