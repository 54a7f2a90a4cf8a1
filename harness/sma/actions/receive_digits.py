"""ReceiveDigits (sma-reference §3.6): a standing listener on the leg; it succeeds at once,
and each match of `InputDigitsRegex` is a DIGITS_RECEIVED."""
from __future__ import annotations

from dataclasses import dataclass

from ..model import Leg
from .base import Action, Context, Done
from .digits import DigitListener
from .params import as_int, echoed, regex


@dataclass(frozen=True)
class ReceiveDigits(Action):
    TYPE = "ReceiveDigits"
    PARAMETERS = ("InputDigitsRegex", "InBetweenDigitsDurationInMilliseconds",
                  "FlushDigitsDurationInMilliseconds", "CallId", "ParticipantTag")
    ERRORS = ("MissingRequiredActionParameter",)

    regex: str
    in_between_ms: int
    flush_ms: int

    @classmethod
    def parse(cls, params: dict) -> "ReceiveDigits":
        return cls(echoed(params), regex(params, "InputDigitsRegex", required=True),
                   as_int(params, "InBetweenDigitsDurationInMilliseconds"),
                   as_int(params, "FlushDigitsDurationInMilliseconds"))

    def start(self, ctx: Context, leg: Leg) -> Done:
        ctx.listen(leg.call_id, DigitListener(self.regex, self.in_between_ms, self.flush_ms,
                                              self.action_data()))
        return Done({"ReceivedDigits": ""})
