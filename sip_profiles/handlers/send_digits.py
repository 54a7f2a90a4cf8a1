"""Answers, sends DTMF with SendDigits (as a voicemail-navigation handler would), hangs up."""


def lambda_handler(event, context):
    kind = event["InvocationEventType"]
    call_id = event["CallDetails"]["Participants"][0]["CallId"]
    if kind == "NEW_INBOUND_CALL":
        return {"SchemaVersion": "1.0", "Actions": [
            {"Type": "Pause", "Parameters": {"DurationInMilliseconds": 300}},
            {"Type": "SendDigits", "Parameters": {"CallId": call_id, "Digits": "12,3#",
                                                  "ToneDurationInMilliseconds": 150}}]}
    if kind == "ACTION_SUCCESSFUL":
        return {"SchemaVersion": "1.0", "Actions": [{"Type": "Hangup", "Parameters": {}}]}
    return {"SchemaVersion": "1.0", "Actions": []}
