"""Benchmark handler: plays the prompt named by each update's `prompt` argument, looped."""


def lambda_handler(event, context):
    kind = event["InvocationEventType"]
    if kind == "NEW_INBOUND_CALL":
        key = "tone-440hz.wav"
    elif kind == "CALL_UPDATE_REQUESTED":
        key = event["ActionData"]["Parameters"]["Arguments"]["prompt"]
    else:
        return {"SchemaVersion": "1.0"}
    return {"SchemaVersion": "1.0", "Actions": [{"Type": "PlayAudio", "Parameters": {
        "Repeat": 100, "AudioSource": {"Type": "S3", "BucketName": "prompts", "Key": key}}}]}
