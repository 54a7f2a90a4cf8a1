"""Answers the call with a prompt whose object does not exist; the ACTION_FAILED that follows
at once is answered with an apology and a hangup."""


def lambda_handler(event, context):
    kind = event["InvocationEventType"]
    if kind == "NEW_INBOUND_CALL":
        return {"SchemaVersion": "1.0", "Actions": [
            {"Type": "PlayAudio", "Parameters": {"AudioSource": {
                "Type": "S3", "BucketName": "prompts", "Key": "no-such-prompt.wav"}}}]}
    if kind == "ACTION_FAILED":
        return {"SchemaVersion": "1.0", "Actions": [
            {"Type": "PlayAudio", "Parameters": {"AudioSource": {
                "Type": "S3", "BucketName": "prompts", "Key": "sorry-goodbye.wav"}}},
            {"Type": "Hangup", "Parameters": {"SipResponseCode": "0"}}],
            "TransactionAttributes": {"failed": event["ActionData"]["ErrorType"]}}
    return {"SchemaVersion": "1.0", "Actions": []}
