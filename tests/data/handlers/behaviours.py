"""A handler whose behaviour the event picks, to test the Lambda-like runner."""
import time

calls = 0


def lambda_handler(event, context):
    global calls
    calls += 1
    kind = event.get("kind")
    print("a handler's print goes to its log, not into the protocol")
    if kind == "raise":
        raise ValueError("boom")
    if kind == "sleep":
        time.sleep(event["seconds"])
    if kind == "unserializable":
        return {"value": object()}
    return {"calls": calls, "request_id": context.aws_request_id,
            "function_name": context.function_name,
            "remaining_ms": context.get_remaining_time_in_millis()}
