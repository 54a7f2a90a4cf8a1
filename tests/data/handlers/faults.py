"""A handler whose fault depends on the number called, to test the service's fault rules."""
import time


def lambda_handler(event, context):
    to = event["CallDetails"]["Participants"][0]["To"]
    kind = event["InvocationEventType"]
    if kind != "NEW_INBOUND_CALL":
        return {"SchemaVersion": "1.0", "Actions": []}
    if to.endswith("02"):
        raise RuntimeError("the database is down")
    if to.endswith("03"):
        time.sleep(3600)  # never returns: the worker is killed at the timeout
    if to.endswith("04"):
        return {"SchemaVersion": "1.0", "Actions": [{"Type": "Pause"}], "Blob": "x" * (7 * 1024 * 1024)}
    if to.endswith("05"):
        return {"SchemaVersion": "1.0", "Actions": set()}  # the runtime cannot serialize it
    if to.endswith("06"):
        return "PlayAudio"  # JSON, but not a response object
    return {"SchemaVersion": "1.0", "Actions": [
        {"Type": "Pause", "Parameters": {"DurationInMilliseconds": 1500}},
        {"Type": "Hangup", "Parameters": {"SipResponseCode": "0"}}]}
