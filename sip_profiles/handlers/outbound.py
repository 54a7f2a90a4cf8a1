"""An outbound notification: CreateSipMediaApplicationCall -> NEW_OUTBOUND_CALL (attributes
kept), RINGING, CALL_ANSWERED -> play a prompt, hang up."""


def lambda_handler(event, context):
    kind = event["InvocationEventType"]
    if kind == "NEW_OUTBOUND_CALL":
        args = event.get("ActionData", {}).get("Parameters", {}).get("Arguments", {})
        return {"SchemaVersion": "1.0", "TransactionAttributes": {"campaign": args.get("campaign", "")}}
    if kind == "CALL_ANSWERED":
        return {"SchemaVersion": "1.0", "Actions": [
            {"Type": "PlayAudio", "Parameters": {"AudioSource": {
                "Type": "S3", "BucketName": "prompts", "Key": "tone-440hz.wav"}}},
            {"Type": "Hangup", "Parameters": {"SipResponseCode": "0"}}]}
    return {"SchemaVersion": "1.0", "Actions": []}
