"""VoiceFocus (sma-reference §3.14): noise reduction on or off; at most 5 actions a second
in an account."""
from __future__ import annotations

from dataclasses import dataclass

from ..model import Leg
from .base import Action, ActionFailure, Context, Done
from .params import as_bool, echoed


@dataclass(frozen=True)
class VoiceFocus(Action):
    TYPE = "VoiceFocus"
    PARAMETERS = ("Enable", "CallId")
    EMULATION = "accepted (no audio change); 5 actions per second per account"
    ERRORS = ("MissingRequiredActionParameter", "ActionExecutionThrottled")

    enable: bool

    @classmethod
    def parse(cls, params: dict) -> "VoiceFocus":
        return cls(echoed(params), as_bool(params, "Enable"))

    def start(self, ctx: Context, leg: Leg) -> Done:
        if not ctx.action_allowed(ctx.sma.aws_account_id):
            raise ActionFailure("ActionExecutionThrottled", "Failed to run action. The maximum "
                                "number of actions per second has been reached.")
        return Done()
