"""Records the caller with RecordAudio (3 s or until #), then hangs up."""


def lambda_handler(event, context):
    kind = event["InvocationEventType"]
    data = event.get("ActionData", {})
    if kind == "NEW_INBOUND_CALL":
        return {"SchemaVersion": "1.0", "Actions": [
            {"Type": "Pause", "Parameters": {"DurationInMilliseconds": 200}},
            {"Type": "RecordAudio", "Parameters": {
                "DurationInSeconds": "3", "RecordingTerminators": ["#"],
                "RecordingDestination": {"Type": "S3", "BucketName": "recordings", "Prefix": "voicemail/"}}}]}
    if kind == "ACTION_SUCCESSFUL" and data.get("Type") == "RecordAudio":
        return {"SchemaVersion": "1.0", "TransactionAttributes": {
            "recording": data["RecordingDestination"]["Key"]},
            "Actions": [{"Type": "Hangup", "Parameters": {"SipResponseCode": "0"}}]}
    return {"SchemaVersion": "1.0", "Actions": []}
