"""Errors of the service model; `harness.api` maps each `code` to its HTTP status and shape."""


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
