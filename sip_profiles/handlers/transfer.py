"""Take back and transfer: the caller is bridged to +15555550100; an update names a transfer
target, and the handler hangs up LEG-B. It answers that leg's HANGUP with an empty list and
the Hangup's ACTION_SUCCESSFUL with a hold notice and a CallAndBridge to the target, as the
public take-back-and-transfer flow does."""


def _bridge_to(number):
    return {"Type": "CallAndBridge", "Parameters": {
        "CallTimeoutSeconds": 10, "CallerIdNumber": "+14255550199",
        "Endpoints": [{"BridgeEndpointType": "PSTN", "Uri": number}]}}


def lambda_handler(event, context):
    kind = event["InvocationEventType"]
    details = event["CallDetails"]
    attributes = dict(details.get("TransactionAttributes", {}))
    data = event.get("ActionData", {})
    actions = []
    if kind == "NEW_INBOUND_CALL":
        actions = [_bridge_to("+15555550100")]
    elif kind == "CALL_UPDATE_REQUESTED":
        attributes.update(transfer="true", target=data["Parameters"]["Arguments"]["TransferTarget"])
        leg_b = next(p for p in details["Participants"]
                     if p["ParticipantTag"] == "LEG-B" and p.get("Status") == "Connected")
        actions = [{"Type": "Hangup", "Parameters": {"CallId": leg_b["CallId"]}}]
    elif kind == "ACTION_SUCCESSFUL" and data["Type"] == "Hangup" and attributes.get("transfer") == "true":
        attributes["transfer"] = "done"
        leg_a = details["Participants"][0]["CallId"]
        actions = [{"Type": "PlayAudio", "Parameters": {"CallId": leg_a, "AudioSource": {
                       "Type": "S3", "BucketName": "prompts", "Key": "please-hold.wav"}}},
                   _bridge_to(attributes["target"])]
    elif kind == "HANGUP" and data["Parameters"]["ParticipantTag"] == "LEG-A":
        actions = [{"Type": "Hangup", "Parameters": {"ParticipantTag": "LEG-B"}}]
    return {"SchemaVersion": "1.0", "Actions": actions, "TransactionAttributes": attributes}
