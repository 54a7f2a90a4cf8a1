"""A handler with a bug: its first response names an action that does not exist.

The service answers with INVALID_LAMBDA_RESPONSE; like the public samples, the handler then
apologises and hangs up.
"""


def lambda_handler(event, context):
    kind = event["InvocationEventType"]
    if kind == "NEW_INBOUND_CALL":
        return {"SchemaVersion": "1.0",
                "Actions": [{"Type": "PlayAudioo", "Parameters": {"ParticipantTag": "LEG-A"}}]}
    if kind == "INVALID_LAMBDA_RESPONSE":
        print(f"invalid response: {event['ErrorType']}: {event['ErrorMessage']}")
        return {"SchemaVersion": "1.0", "Actions": [
            {"Type": "PlayAudio", "Parameters": {"AudioSource": {
                "Type": "S3", "BucketName": "prompts", "Key": "sorry-goodbye.wav"}}},
            {"Type": "Hangup", "Parameters": {"SipResponseCode": "0"}}]}
    return {"SchemaVersion": "1.0", "Actions": []}
