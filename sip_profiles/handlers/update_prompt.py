"""A SIP media application handler, written as users write them for the real service.

It answers with a long 440 Hz prompt; an UpdateSipMediaApplicationCall with
`{"action": "switch"}` switches the call to the 1000 Hz prompt, `{"action": "hangup"}` hangs
up; when the second prompt has played, the handler hangs up.
"""
import os

BUCKET = os.environ.get("PROMPT_BUCKET", "prompts")


def play(key, repeat=1):
    return {"Type": "PlayAudio",
            "Parameters": {"ParticipantTag": "LEG-A", "Repeat": repeat,
                           "AudioSource": {"Type": "S3", "BucketName": BUCKET, "Key": key}}}


def respond(actions, attributes=None):
    out = {"SchemaVersion": "1.0", "Actions": actions}
    if attributes is not None:
        out["TransactionAttributes"] = attributes
    return out


def lambda_handler(event, context):
    kind = event["InvocationEventType"]
    if kind == "NEW_INBOUND_CALL":
        return respond([play("tone-440hz.wav", repeat=5)], {"stage": "first-prompt"})
    if kind == "CALL_UPDATE_REQUESTED":
        action = event["ActionData"]["Parameters"]["Arguments"].get("action")
        if action == "switch":
            return respond([play("tone-1000hz.wav")], {"stage": "second-prompt"})
        if action == "hangup":
            return respond([{"Type": "Hangup", "Parameters": {"SipResponseCode": "0"}}])
        return {"SchemaVersion": "1.0"}  # no Actions: the call carries on unchanged
    if kind == "ACTION_SUCCESSFUL" and event["ActionData"]["Type"] == "PlayAudio":
        return respond([{"Type": "Hangup", "Parameters": {"SipResponseCode": "0"}}])
    return respond([])
