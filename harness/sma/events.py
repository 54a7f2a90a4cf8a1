"""The invocation events the service sends the function (sma-reference §2): their types, what
each means for its response, and one builder each with the exact JSON shape.

A builder returns an `Event` waiting its turn; `render` gives its JSON once it is invoked, with
its `Sequence` and the `CallDetails` of that moment (Participants, TransactionAttributes).
"""
from __future__ import annotations

from dataclasses import dataclass

from .model import Leg, SipMediaApplication

SCHEMA_VERSION = "1.0"

NEW_INBOUND_CALL = "NEW_INBOUND_CALL"
NEW_OUTBOUND_CALL = "NEW_OUTBOUND_CALL"
RINGING = "RINGING"
CALL_ANSWERED = "CALL_ANSWERED"
ACTION_SUCCESSFUL = "ACTION_SUCCESSFUL"
ACTION_FAILED = "ACTION_FAILED"
ACTION_INTERRUPTED = "ACTION_INTERRUPTED"
HANGUP = "HANGUP"
INVALID_LAMBDA_RESPONSE = "INVALID_LAMBDA_RESPONSE"
DIGITS_RECEIVED = "DIGITS_RECEIVED"
CALL_UPDATE_REQUESTED = "CALL_UPDATE_REQUESTED"


@dataclass(frozen=True)
class EventType:
    """What the service does with an event type: `informational` ones are flagged so (their
    responses are not the call's next actions), `runs_actions` says whether the actions of
    the response run (always only while a leg is connected), `after_last_leg` whether it is
    still sent once no leg is connected; `when` it is sent (docs/coverage.md)."""

    informational: bool
    runs_actions: bool
    after_last_leg: bool
    when: str


EVENT_TYPES = {
    NEW_INBOUND_CALL: EventType(False, True, False, "an INVITE matched a SIP rule"),
    NEW_OUTBOUND_CALL: EventType(True, False, False, "CreateSipMediaApplicationCall placed LEG-A"),
    RINGING: EventType(True, False, False, "the outbound LEG-A rings (response ignored, attributes kept)"),
    CALL_ANSWERED: EventType(False, True, False, "the outbound LEG-A answered"),
    ACTION_SUCCESSFUL: EventType(False, True, False, "an action list completed (carries the last action)"),
    ACTION_FAILED: EventType(False, True, False, "an action failed (the rest of its list is cleared)"),
    ACTION_INTERRUPTED: EventType(True, False, False, "an update's actions stopped an interruptible "
                                                      "action (response ignored)"),
    HANGUP: EventType(True, True, True, "a leg ended (response used only while another leg is connected)"),
    INVALID_LAMBDA_RESPONSE: EventType(False, True, False, "the previous response could not be used"),
    DIGITS_RECEIVED: EventType(False, True, False, "a ReceiveDigits listener matched its regex"),
    CALL_UPDATE_REQUESTED: EventType(False, True, False, "UpdateSipMediaApplicationCall was accepted"),
}


@dataclass(frozen=True)
class Event:
    """An invocation to make: its type, its `ActionData`, and any top-level `extra` fields."""

    type: str
    action_data: dict | None = None
    extra: dict | None = None

    @property
    def rules(self) -> EventType:
        return EVENT_TYPES[self.type]


def new_inbound_call() -> Event:
    return Event(NEW_INBOUND_CALL)


def new_outbound_call(arguments: dict[str, str]) -> Event:
    """With the call's ArgumentsMap as a CallCreateRequest (none when it has none)."""
    return Event(NEW_OUTBOUND_CALL, _request("CallCreateRequest", arguments) if arguments else None)


def ringing() -> Event:
    return Event(RINGING)


def call_answered() -> Event:
    return Event(CALL_ANSWERED)


def call_update_requested(arguments: dict[str, str]) -> Event:
    return Event(CALL_UPDATE_REQUESTED, _request("CallUpdateRequest", arguments))


def action_successful(action_data: dict) -> Event:
    return Event(ACTION_SUCCESSFUL, action_data)


def action_failed(action_data: dict, error_type: str, message: str) -> Event:
    """The failed action with its ErrorType and ErrorMessage inside ActionData."""
    return Event(ACTION_FAILED, {**action_data, "ErrorType": error_type, "ErrorMessage": message})


def action_interrupted(action_data: dict) -> Event:
    return Event(ACTION_INTERRUPTED, action_data)


def hangup(leg: Leg, sip_code: int) -> Event:
    return Event(HANGUP, {"Type": "Hangup", "Parameters": {
        "SipResponseCode": sip_code, "CallId": leg.call_id, "ParticipantTag": leg.participant_tag}})


def invalid_lambda_response(error_type: str, message: str) -> Event:
    """ErrorType and ErrorMessage at the top of the event, no ActionData (sma-reference §2)."""
    return Event(INVALID_LAMBDA_RESPONSE, extra={"ErrorType": error_type, "ErrorMessage": message})


def digits_received(action_data: dict, digits: str) -> Event:
    """The ReceiveDigits action that listens, with the digits that matched."""
    return Event(DIGITS_RECEIVED, {**action_data, "ReceivedDigits": digits})


def _request(kind: str, arguments: dict[str, str]) -> dict:
    return {"Type": kind, "Parameters": {"Arguments": dict(arguments)}}


def call_details(transaction_id: str, attributes: dict[str, str], sma: SipMediaApplication,
                 sip_rule_id: str | None, legs: list[Leg]) -> dict:
    """`CallDetails`: TransactionAttributes only when there are some, SipRuleId only for a
    call that came through a rule."""
    details = {"TransactionId": transaction_id}
    if attributes:
        details["TransactionAttributes"] = dict(attributes)
    details["AwsAccountId"] = sma.aws_account_id
    details["AwsRegion"] = sma.aws_region
    if sip_rule_id:
        details["SipRuleId"] = sip_rule_id
    details["SipMediaApplicationId"] = sma.sip_media_application_id
    details["Participants"] = [leg.to_event() for leg in legs]
    return details


def render(event: Event, sequence: int, details: dict) -> dict:
    """The event's JSON as the function receives it."""
    out = {"SchemaVersion": SCHEMA_VERSION, "Sequence": sequence, "InvocationEventType": event.type}
    if event.action_data is not None:
        out["ActionData"] = event.action_data
    out["CallDetails"] = details
    if event.extra:
        out.update(event.extra)
    return out
