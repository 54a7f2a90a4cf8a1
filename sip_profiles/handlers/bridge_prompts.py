"""Bridges the caller to +15555550100; an update plays a recording notice to each party in
turn, over the bridge, and the conversation goes on. When the caller hangs up, LEG-B is
hung up too."""

NOTICE = {"Type": "S3", "BucketName": "prompts", "Key": "recorded-notice.wav"}


def lambda_handler(event, context):
    kind = event["InvocationEventType"]
    if kind == "NEW_INBOUND_CALL":
        return {"SchemaVersion": "1.0", "Actions": [
            {"Type": "CallAndBridge", "Parameters": {
                "CallTimeoutSeconds": 10, "CallerIdNumber": "+14255550199",
                "Endpoints": [{"BridgeEndpointType": "PSTN", "Uri": "+15555550100"}]}}]}
    if kind == "CALL_UPDATE_REQUESTED":
        return {"SchemaVersion": "1.0", "Actions": [
            {"Type": "PlayAudio", "Parameters": {"ParticipantTag": "LEG-A", "AudioSource": NOTICE}},
            {"Type": "PlayAudio", "Parameters": {"ParticipantTag": "LEG-B", "AudioSource": NOTICE}}]}
    if kind == "HANGUP" and event["ActionData"]["Parameters"]["ParticipantTag"] == "LEG-A":
        return {"SchemaVersion": "1.0", "Actions": [
            {"Type": "Hangup", "Parameters": {"ParticipantTag": "LEG-B"}}]}
    return {"SchemaVersion": "1.0", "Actions": []}
