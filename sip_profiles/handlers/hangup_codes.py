"""Refuses calls with the SipResponseCode the called number ends in (…486 busy, …480 unavailable),
and answers the rest with a short prompt before a normal Hangup."""


def lambda_handler(event, context):
    if event["InvocationEventType"] != "NEW_INBOUND_CALL":
        return {"SchemaVersion": "1.0", "Actions": []}
    to = event["CallDetails"]["Participants"][0]["To"]
    if to.endswith(("486", "480")):
        return {"SchemaVersion": "1.0", "Actions": [
            {"Type": "Hangup", "Parameters": {"SipResponseCode": to[-3:]}}]}
    return {"SchemaVersion": "1.0", "Actions": [
        {"Type": "Pause", "Parameters": {"DurationInMilliseconds": 500}},
        {"Type": "Hangup", "Parameters": {"SipResponseCode": "0"}}]}
