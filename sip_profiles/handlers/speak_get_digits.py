"""SpeakAndGetDigits (speech from espeak-ng stands for Polly), then reads the digits back."""


def lambda_handler(event, context):
    kind = event["InvocationEventType"]
    data = event.get("ActionData", {})
    call_id = event["CallDetails"]["Participants"][0]["CallId"]
    if kind == "NEW_INBOUND_CALL":
        return {"SchemaVersion": "1.0", "Actions": [{"Type": "SpeakAndGetDigits", "Parameters": {
            "CallId": call_id, "InputDigitsRegex": r"^\d{2}$",
            "SpeechParameters": {"Text": "Please enter two digits, then the pound key.", "VoiceId": "Joanna"},
            "FailureSpeechParameters": {"Text": "Sorry, that did not work."},
            "MinNumberOfDigits": 2, "MaxNumberOfDigits": 2, "TerminatorDigits": ["#"],
            "RepeatDurationInMilliseconds": 6000, "Repeat": 2}}]}
    if kind == "ACTION_SUCCESSFUL" and data.get("Type") == "SpeakAndGetDigits":
        digits = " ".join(data["ReceivedDigits"])
        return {"SchemaVersion": "1.0", "Actions": [
            {"Type": "Speak", "Parameters": {"CallId": call_id, "Text": f"You entered {digits}."}},
            {"Type": "Hangup", "Parameters": {"SipResponseCode": "0"}}]}
    if kind == "ACTION_FAILED":
        return {"SchemaVersion": "1.0", "Actions": [{"Type": "Hangup", "Parameters": {}}]}
    return {"SchemaVersion": "1.0", "Actions": []}
