"""Bridges the caller to +15555550100 with CallAndBridge; an update hangs up LEG-B, and when
it is gone the handler plays a goodbye prompt to LEG-A and hangs up."""


def lambda_handler(event, context):
    kind = event["InvocationEventType"]
    data = event.get("ActionData", {})
    if kind == "NEW_INBOUND_CALL":
        return {"SchemaVersion": "1.0", "Actions": [
            {"Type": "Pause", "Parameters": {"DurationInMilliseconds": 300}},
            {"Type": "CallAndBridge", "Parameters": {
                "CallTimeoutSeconds": 10, "CallerIdNumber": "+14255550199",
                "Endpoints": [{"BridgeEndpointType": "PSTN", "Uri": "+15555550100"}]}}]}
    if kind == "CALL_UPDATE_REQUESTED":
        return {"SchemaVersion": "1.0", "Actions": [
            {"Type": "Hangup", "Parameters": {"ParticipantTag": "LEG-B", "SipResponseCode": "0"}}]}
    if kind == "HANGUP" and data["Parameters"]["ParticipantTag"] == "LEG-B":
        return {"SchemaVersion": "1.0", "Actions": [
            {"Type": "PlayAudio", "Parameters": {"ParticipantTag": "LEG-A", "AudioSource": {
                "Type": "S3", "BucketName": "prompts", "Key": "sorry-goodbye.wav"}}},
            {"Type": "Hangup", "Parameters": {"ParticipantTag": "LEG-A"}}]}
    return {"SchemaVersion": "1.0"}
