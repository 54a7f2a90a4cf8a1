"""Speak (espeak-ng stands for Polly): a greeting and a goodbye, then Hangup."""


def lambda_handler(event, context):
    call_id = event["CallDetails"]["Participants"][0]["CallId"]
    if event["InvocationEventType"] == "NEW_INBOUND_CALL":
        return {"SchemaVersion": "1.0", "Actions": [
            {"Type": "Speak", "Parameters": {"CallId": call_id, "VoiceId": "Joanna",
                                             "Text": "Thank you for calling. Your call is important to us."}},
            {"Type": "Speak", "Parameters": {"CallId": call_id, "Text": "Goodbye and have a nice day."}},
            {"Type": "Hangup", "Parameters": {"SipResponseCode": "0"}}]}
    return {"SchemaVersion": "1.0", "Actions": []}
