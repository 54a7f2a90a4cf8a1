"""A handler that keeps its state in DynamoDB, as production SMA handlers do.

NEW_INBOUND_CALL looks the caller up in the table named by TABLE_NAME to choose the prompt
(a caller it does not know hears the default prompt); HANGUP writes the call's end on the
caller's item (how many calls, the last prompt, when the last call ended).
"""
import logging
import os
import time

import boto3

logger = logging.getLogger()
logger.setLevel(logging.INFO)

TABLE = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])
DEFAULT_PROMPT = os.environ.get("DEFAULT_PROMPT", "tone-440hz.wav")


def caller_of(event):
    return event["CallDetails"]["Participants"][0]["From"]


def lambda_handler(event, context):
    kind = event["InvocationEventType"]
    logger.info("%s for %s", kind, event["CallDetails"]["TransactionId"])
    if kind == "NEW_INBOUND_CALL":
        item = TABLE.get_item(Key={"caller": caller_of(event)}).get("Item")
        prompt = item["prompt"] if item else DEFAULT_PROMPT
        logger.info("caller %s hears %s", caller_of(event), prompt)
        return {"SchemaVersion": "1.0", "TransactionAttributes": {"prompt": prompt}, "Actions": [
            {"Type": "PlayAudio", "Parameters": {"AudioSource": {
                "Type": "S3", "BucketName": "prompts", "Key": prompt}}},
            {"Type": "Hangup", "Parameters": {"SipResponseCode": "0"}}]}
    if kind == "HANGUP":
        attributes = event["CallDetails"].get("TransactionAttributes", {})
        TABLE.update_item(
            Key={"caller": caller_of(event)},
            UpdateExpression="SET calls = if_not_exists(calls, :zero) + :one, "
                             "last_prompt = :prompt, last_call_ended_at = :ended",
            ExpressionAttributeValues={":zero": 0, ":one": 1,
                                       ":prompt": attributes.get("prompt", DEFAULT_PROMPT),
                                       ":ended": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        logger.info("call of %s ended", caller_of(event))
    return {"SchemaVersion": "1.0", "Actions": []}
