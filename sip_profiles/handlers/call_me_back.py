"""Call-me-back: the caller hears a prompt and the call ends; from the HANGUP, the handler
asks the service (CreateSipMediaApplicationCall, through the chime-sdk-voice client) to call
the caller back, and the callback plays another prompt once answered."""
import logging

import boto3

logger = logging.getLogger()
logger.setLevel(logging.INFO)
voice = boto3.client("chime-sdk-voice")


def play_then_hang_up(prompt):
    return {"SchemaVersion": "1.0", "Actions": [
        {"Type": "PlayAudio", "Parameters": {"AudioSource": {
            "Type": "S3", "BucketName": "prompts", "Key": prompt}}},
        {"Type": "Hangup", "Parameters": {"SipResponseCode": "0"}}]}


def lambda_handler(event, context):
    kind = event["InvocationEventType"]
    details = event["CallDetails"]
    leg = details["Participants"][0]
    if kind == "NEW_INBOUND_CALL":
        return play_then_hang_up("tone-440hz.wav")
    if kind == "HANGUP" and leg["Direction"] == "Inbound":
        placed = voice.create_sip_media_application_call(
            FromPhoneNumber=leg["To"], ToPhoneNumber=leg["From"],
            SipMediaApplicationId=details["SipMediaApplicationId"],
            ArgumentsMap={"reason": "callback"})
        logger.info("calling %s back: transaction %s", leg["From"],
                    placed["SipMediaApplicationCall"]["TransactionId"])
    if kind == "CALL_ANSWERED":
        return play_then_hang_up("tone-1000hz.wav")
    return {"SchemaVersion": "1.0", "Actions": []}
