"""A handler with the mistakes a first handler makes, one per number called:
+14345550201 sleeps past its timeout, +14345550202 answers with SchemaVersion "2.0",
+14345550203 names the action "PlayAudo", +14345550204 plays a key the bucket does not hold,
+14345550205 raises, +14345550206 answers with more than Lambda's 6 MB, +14345550207 answers
with a value JSON cannot hold (a set)."""
import time

PLAY = {"Type": "PlayAudio", "Parameters": {"AudioSource": {
    "Type": "S3", "BucketName": "prompts", "Key": "tone-440hz.wav"}}}


def lambda_handler(event, context):
    if event["InvocationEventType"] != "NEW_INBOUND_CALL":
        return {"SchemaVersion": "1.0", "Actions": []}
    number = event["CallDetails"]["Participants"][0]["To"]
    if number == "+14345550201":
        time.sleep(3)
        return {"SchemaVersion": "1.0", "Actions": [PLAY]}
    if number == "+14345550202":
        return {"SchemaVersion": "2.0", "Actions": [PLAY]}
    if number == "+14345550203":
        return {"SchemaVersion": "1.0", "Actions": [{**PLAY, "Type": "PlayAudo"}]}
    if number == "+14345550205":
        raise RuntimeError(f"no greeting configured for {number}")
    if number == "+14345550206":
        return {"SchemaVersion": "1.0", "Actions": [PLAY], "Debug": "x" * 7_000_000}
    if number == "+14345550207":
        return {"SchemaVersion": "1.0", "Actions": [PLAY], "Seen": {number}}
    missing = {"Type": "S3", "BucketName": "prompts", "Key": "welcome-typo.wav"}
    return {"SchemaVersion": "1.0", "Actions": [{"Type": "PlayAudio", "Parameters": {"AudioSource": missing}}]}
