"""What the service accepts as the function's response (sma-reference §2): `check` validates
one, and a response it cannot use is an `InvalidResponse`, told to the function in an
INVALID_LAMBDA_RESPONSE event with its `ErrorType` (the types and their causes: `ERROR_TYPES`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from .actions import ACTIONS
from .errors import EventError

SCHEMA_VERSION = "1.0"
MAX_ACTIONS = 10
MAX_ATTRIBUTES = 100
MAX_ATTRIBUTES_BYTES = 20 * 1024

#: Each ErrorType of INVALID_LAMBDA_RESPONSE and what causes it (docs/coverage.md).
ERROR_TYPES = {
    "InvalidResponse": "the response is not a JSON object",
    "SchemaVersionMismatch": "SchemaVersion is missing or not \"1.0\" (the ErrorType the service sends: "
                             "click-to-call issue 125)",
    "InvalidActions": "Actions is not a list",
    "TooManyActions": f"more than {MAX_ACTIONS} actions",
    "InvalidActionType": "an action Type the service does not have",
    "InvalidActionParameters": "Parameters is not an object",
    "TransactionAttributesInvalidType": "attributes are not a string-to-string map",
    "TransactionAttributesInvalidMapSize": f"more than {MAX_ATTRIBUTES} attributes",
    "TransactionAttributesInvalidSize": "attributes larger than 20 KB",
}


class InvalidResponse(EventError):
    """The function's response cannot be used; becomes INVALID_LAMBDA_RESPONSE."""


@dataclass(frozen=True)
class Response:
    """A valid response: its actions and TransactionAttributes (None: not given)."""

    actions: list[dict] | None
    attributes: dict[str, str] | None


def check(response: object) -> Response:
    """The usable parts of `response`, or InvalidResponse for the first problem found."""
    if not isinstance(response, dict):
        raise InvalidResponse("InvalidResponse", f"The Lambda response is not a JSON object: {_kind(response)}")
    if response.get("SchemaVersion") != SCHEMA_VERSION:
        raise InvalidResponse("SchemaVersionMismatch", f"SchemaVersion {response.get('SchemaVersion')!r} "
                                                       f"is not supported; expected \"{SCHEMA_VERSION}\"")
    actions = response.get("Actions")
    if actions is not None:
        _check_actions(actions)
    attributes = response.get("TransactionAttributes")
    return Response(actions, check_attributes(attributes) if attributes is not None else None)


def kept_attributes(response: object) -> dict[str, str] | None:
    """The TransactionAttributes of a response the service otherwise ignores (an informational
    event's): kept when valid (click-to-call relies on it), else None, as is what is wrong."""
    if isinstance(response, dict) and response.get("TransactionAttributes") is not None:
        try:
            return check_attributes(response["TransactionAttributes"])
        except InvalidResponse:
            return None
    return None


def _check_actions(actions: object) -> None:
    if not isinstance(actions, list):
        raise InvalidResponse("InvalidActions", "Actions must be a list")
    if len(actions) > MAX_ACTIONS:
        raise InvalidResponse("TooManyActions", f"Lambda response has {len(actions)} actions. "
                                                f"Maximum number of actions is {MAX_ACTIONS}")
    for action in actions:
        if not isinstance(action, dict) or action.get("Type") not in ACTIONS:
            kind = action.get("Type") if isinstance(action, dict) else action
            raise InvalidResponse("InvalidActionType", f"Action type {kind!r} is not supported")
        if action.get("Parameters") is not None and not isinstance(action["Parameters"], dict):
            raise InvalidResponse("InvalidActionParameters", f"Parameters of {action['Type']} must be an object")


def check_attributes(attributes: object) -> dict[str, str]:
    """TransactionAttributes as the service takes them: at most 100 strings to strings, 20 KB."""
    if not isinstance(attributes, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in attributes.items()):
        raise InvalidResponse("TransactionAttributesInvalidType",
                              "Transaction Attributes must be a map of string to string")
    if len(attributes) > MAX_ATTRIBUTES:
        raise InvalidResponse("TransactionAttributesInvalidMapSize", "Transaction Attributes has too many "
                              f"mappings. Maximum number of mappings is {MAX_ATTRIBUTES}")
    if len(json.dumps(attributes).encode()) > MAX_ATTRIBUTES_BYTES:
        raise InvalidResponse("TransactionAttributesInvalidSize",
                              "Transaction Attributes exceed the maximum payload size of 20 KB")
    return dict(attributes)


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__
