"""Listens for *<digit> with ReceiveDigits while a prompt plays; an update then switches the
prompt (as the update-call sample does for its agent commands)."""

PROMPTS = "prompts"


def play(key, repeat=1):
    return {"Type": "PlayAudio", "Parameters": {"Repeat": repeat, "AudioSource": {
        "Type": "S3", "BucketName": PROMPTS, "Key": key}}}


def lambda_handler(event, context):
    kind = event["InvocationEventType"]
    data = event.get("ActionData", {})
    if kind == "NEW_INBOUND_CALL":
        return {"SchemaVersion": "1.0", "Actions": [
            {"Type": "ReceiveDigits", "Parameters": {
                "InputDigitsRegex": r"^\*\d$", "InBetweenDigitsDurationInMilliseconds": 1000,
                "FlushDigitsDurationInMilliseconds": 5000}},
            play("tone-440hz.wav", repeat=5)]}
    if kind == "DIGITS_RECEIVED":
        return {"SchemaVersion": "1.0", "TransactionAttributes": {"command": data["ReceivedDigits"]}}
    if kind == "CALL_UPDATE_REQUESTED":
        return {"SchemaVersion": "1.0", "Actions": [play("tone-1000hz.wav")]}
    if kind == "ACTION_SUCCESSFUL" and data.get("Type") == "PlayAudio":
        return {"SchemaVersion": "1.0", "Actions": [{"Type": "Hangup", "Parameters": {}}]}
    return {"SchemaVersion": "1.0"}
