"""What PlayAudioAndGetDigits and SpeakAndGetDigits share (sma-reference §3.4, §3.9): the
digit collection's parameters, their defaults, and its start; each says how it prompts."""
from __future__ import annotations

from dataclasses import dataclass

from ..model import Leg
from .base import Action, Context, invalid
from .digits import DigitCollector
from .params import DTMF_DIGITS, as_int, digit_list, regex
from .runs import DigitCollection


def collection(params: dict) -> tuple[dict, dict]:
    """The collection's values (the GetDigits fields) and the defaults its events echo."""
    repeat_ms = as_int(params, "RepeatDurationInMilliseconds")
    minimum = as_int(params, "MinNumberOfDigits", 0, minimum=0)
    maximum = as_int(params, "MaxNumberOfDigits", 128, minimum=1)
    if maximum < minimum:
        raise invalid("MaxNumberOfDigits")
    values = dict(repeat_ms=repeat_ms, min_digits=minimum, max_digits=maximum,
                  regex=regex(params, "InputDigitsRegex", required=False),
                  terminators=digit_list(params, "TerminatorDigits", DTMF_DIGITS, ["#"]),
                  in_between_ms=as_int(params, "InBetweenDigitsDurationInMilliseconds", repeat_ms),
                  attempts=as_int(params, "Repeat", 1))
    defaults = dict(MinNumberOfDigits=0, MaxNumberOfDigits=128, TerminatorDigits=["#"],
                    InBetweenDigitsDurationInMilliseconds=repeat_ms, Repeat=1)
    return values, defaults


@dataclass(frozen=True)
class GetDigits(Action):
    """A prompt, then digits; `prompt(call_id, token, failure)` is the command that plays
    the prompt (or the failure prompt)."""

    REPORTS = True
    ERRORS = ("MissingRequiredActionParameter", "InvalidDigitsReceived", "SystemException")

    repeat_ms: int
    min_digits: int
    max_digits: int
    regex: str | None
    terminators: tuple[str, ...]
    in_between_ms: int
    attempts: int

    def prompt(self, call_id: str, token: int, failure: bool) -> object:
        raise NotImplementedError

    def start(self, ctx: Context, leg: Leg) -> DigitCollection:
        collector = DigitCollector(self.min_digits, self.max_digits, list(self.terminators),
                                   self.regex, self.in_between_ms, self.repeat_ms, self.attempts)
        run = DigitCollection(self, leg, ctx.new_token(), collector)
        run.prompt(ctx, failure=False)
        return run
