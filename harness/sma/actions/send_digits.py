"""SendDigits (sma-reference §3.7): RFC 4733 digits to the leg; a comma pauses 500 ms."""
from __future__ import annotations

import re
from dataclasses import dataclass

from .. import commands as cmd
from ..model import Leg
from .base import Action, Context, invalid
from .params import as_int, as_str, echoed
from .runs import Playback

DIGITS = re.compile(r"^[0-9*#A-Da-d,]{1,50}$")


@dataclass(frozen=True)
class SendDigits(Action):
    TYPE = "SendDigits"
    PARAMETERS = ("CallId", "Digits", "ToneDurationInMilliseconds")
    ERRORS = ("MissingRequiredActionParameter", "SystemException")

    digits: str
    tone_ms: int

    @classmethod
    def parse(cls, params: dict) -> "SendDigits":
        digits = as_str(params, "Digits")
        if not DIGITS.match(digits):
            raise invalid("Digits")
        tone_ms = as_int(params, "ToneDurationInMilliseconds", 250, minimum=50, maximum=24000)
        return cls(echoed(params, ToneDurationInMilliseconds=250), digits.upper(), tone_ms)

    def start(self, ctx: Context, leg: Leg) -> Playback:
        run = Playback(self, leg, ctx.new_token())
        ctx.emit(cmd.SendDigits(leg.call_id, self.digits, self.tone_ms, run.token))
        return run
