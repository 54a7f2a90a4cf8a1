"""A handler that never lets go: it answers HANGUP and ACTION_FAILED with a prompt for every
participant, connected or not. Its first ACTION_FAILED takes a second to answer, long enough
for the other leg to hang up too. The service ends the transaction with the HANGUP of its
last leg: the actions returned after that are not run, and nothing is invoked any more."""
import time

PROMPT = {"Type": "S3", "BucketName": "prompts", "Key": "tone-440hz.wav"}
_slow = [True]


def lambda_handler(event, context):
    kind = event["InvocationEventType"]
    if kind == "NEW_INBOUND_CALL":
        return {"SchemaVersion": "1.0", "Actions": [
            {"Type": "CallAndBridge", "Parameters": {
                "CallTimeoutSeconds": 10, "CallerIdNumber": "+14255550199",
                "Endpoints": [{"BridgeEndpointType": "PSTN", "Uri": "+15555550100"}]}}]}
    if kind not in ("HANGUP", "ACTION_FAILED"):
        return {"SchemaVersion": "1.0", "Actions": []}
    if kind == "ACTION_FAILED" and _slow.pop() if _slow else False:
        time.sleep(1.0)
    return {"SchemaVersion": "1.0", "Actions": [
        {"Type": "PlayAudio", "Parameters": {"CallId": p["CallId"], "AudioSource": PROMPT}}
        for p in event["CallDetails"]["Participants"]]}
