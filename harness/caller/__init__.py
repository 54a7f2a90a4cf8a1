"""Real SIP calls placed and received by pjsua2, which runs only in caller worker processes."""

from harness.caller.call import Call, CallerError, Listener
from harness.caller.caller import Caller

__all__ = ["Call", "Caller", "CallerError", "Listener"]
