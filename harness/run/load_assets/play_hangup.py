"""Load mode's handler (`sip-harness load`, the benchmarks): answers with a prompt, then hangs up.

The prompt is `BENCH_PROMPT` (an S3 key in the bucket "prompts", default tone-1000hz.wav)
played `BENCH_REPEAT` times (default 1), both from the handler's environment.
"""
import os

PROMPT = os.environ.get("BENCH_PROMPT", "tone-1000hz.wav")
REPEAT = int(os.environ.get("BENCH_REPEAT", "1"))


def lambda_handler(event, context):
    if event["InvocationEventType"] != "NEW_INBOUND_CALL":
        return {"SchemaVersion": "1.0", "Actions": []}
    call_id = event["CallDetails"]["Participants"][0]["CallId"]
    return {"SchemaVersion": "1.0", "Actions": [
        {"Type": "PlayAudio", "Parameters": {"CallId": call_id, "Repeat": REPEAT, "AudioSource": {
            "Type": "S3", "BucketName": "prompts", "Key": PROMPT}}},
        {"Type": "Hangup", "Parameters": {"CallId": call_id, "SipResponseCode": "0"}}]}
