"""A handler that asks the stub for what an attacker would want, picked by the number called."""


def lambda_handler(event, context):
    kind = event["InvocationEventType"]
    to = event["CallDetails"]["Participants"][0]["To"]
    if kind == "NEW_INBOUND_CALL" and to.endswith("21"):  # a recording outside the bucket folder
        return {"SchemaVersion": "1.0", "Actions": [{"Type": "RecordAudio", "Parameters": {
            "DurationInSeconds": "1", "RecordingDestination": {
                "Type": "S3", "BucketName": "../../..", "Prefix": "escaped-"}}}]}
    if kind == "NEW_INBOUND_CALL" and to.endswith("22"):  # header injection into a placed leg
        return {"SchemaVersion": "1.0", "Actions": [{"Type": "CallAndBridge", "Parameters": {
            "CallerIdNumber": "+14255550199", "Endpoints": [{
                "BridgeEndpointType": "AWS", "Uri": "+14345550199",
                "Arn": "arn:aws:chime:us-east-1:111122223333:vc/vc-1"}],
            "SipHeaders": {"X-Case": "ok\r\nVia: SIP/2.0/UDP 203.0.113.9"}}}]}
    if kind == "NEW_INBOUND_CALL" and to.endswith("23"):  # a long recording (full-disk tests)
        return {"SchemaVersion": "1.0", "Actions": [{"Type": "RecordAudio", "Parameters": {
            "DurationInSeconds": "30", "RecordingTerminators": ["#"], "RecordingDestination": {
                "Type": "S3", "BucketName": "recordings", "Prefix": "long-"}}}]}
    if kind == "ACTION_FAILED":
        return {"SchemaVersion": "1.0", "Actions": [{"Type": "Hangup", "Parameters": {}}]}
    return {"SchemaVersion": "1.0", "Actions": []}
