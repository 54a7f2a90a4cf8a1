"""Errors of the service model: the API's (`harness.api` maps each `code` to its HTTP status and
shape), and those the service reports to the function in its events."""


class SmaError(Exception):
    """A modeled service error; `code` is the ErrorCode enum value of the API model."""

    code = "ServiceFailure"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class BadRequest(SmaError):
    code = "BadRequest"


class NotFound(SmaError):
    code = "NotFound"


class Forbidden(SmaError):
    code = "Forbidden"


class ResourceLimitExceeded(SmaError):
    code = "ResourceLimitExceeded"


class ServiceUnavailable(SmaError):
    code = "ServiceUnavailable"


class EventError(Exception):
    """What the service tells the function in an event, as `ErrorType` and `ErrorMessage`:
    an action that failed (`actions.ActionFailure`) or a response it could not use
    (`responses.InvalidResponse`)."""

    def __init__(self, error_type: str, message: str):
        super().__init__(message)
        self.error_type, self.message = error_type, message
