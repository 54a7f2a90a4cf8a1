"""The restJson1 error format of chime-sdk-voice, as botocore parses it.

Each modeled error has an HTTP status, a shape name (sent in `x-amzn-ErrorType`, which
botocore turns into the exception class) and an ErrorCode (`Code` in the body).
"""
from __future__ import annotations

import json
import uuid

from ..sma.errors import SmaError

#: ErrorCode -> (HTTP status, error shape) for every error the API answers with.
ERRORS = {
    "BadRequest": (400, "BadRequestException"),
    "NotFound": (404, "NotFoundException"),
    "Forbidden": (403, "ForbiddenException"),
    "ResourceLimitExceeded": (400, "ResourceLimitExceededException"),
    "Throttled": (429, "ThrottledClientException"),
    "Unauthorized": (401, "UnauthorizedClientException"),
    "ServiceUnavailable": (503, "ServiceUnavailableException"),
    "ServiceFailure": (500, "ServiceFailureException"),
}


class Unauthorized(SmaError):
    """The request's SigV4 signature is missing or does not verify."""

    code = "Unauthorized"


class Throttled(SmaError):
    """The caller's account has no request tokens left."""

    code = "Throttled"


def error_parts(code: str, message: str) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of one modeled error."""
    status, shape = ERRORS[code]
    headers = {"x-amzn-ErrorType": shape, "x-amzn-RequestId": str(uuid.uuid4()),
               "Content-Type": "application/json"}
    return status, headers, json.dumps({"Code": code, "Message": message}).encode()
