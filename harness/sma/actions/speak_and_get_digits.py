"""SpeakAndGetDigits (sma-reference §3.9): a spoken prompt, then digits."""
from __future__ import annotations

from dataclasses import dataclass

from .. import commands as cmd
from .base import missing
from .get_digits import GetDigits, collection
from .params import echoed, speech


@dataclass(frozen=True)
class SpeakAndGetDigits(GetDigits):
    TYPE = "SpeakAndGetDigits"
    PARAMETERS = ("CallId", "SpeechParameters", "FailureSpeechParameters", "InputDigitsRegex",
                  "MinNumberOfDigits", "MaxNumberOfDigits", "TerminatorDigits",
                  "InBetweenDigitsDurationInMilliseconds", "Repeat", "RepeatDurationInMilliseconds")
    EMULATION = "Amazon Polly is espeak-ng"

    speech: dict
    failure_speech: dict

    @classmethod
    def parse(cls, params: dict) -> "SpeakAndGetDigits":
        main = params.get("SpeechParameters")
        if not isinstance(main, dict):
            raise missing("SpeechParameters")
        spoken = speech(main)
        failure = params.get("FailureSpeechParameters")
        if not isinstance(failure, dict):
            raise missing("FailureSpeechParameters")
        failure_speech = speech(failure, fallback=spoken)
        values, defaults = collection(params)
        return cls(echoed(params, **defaults), speech=spoken, failure_speech=failure_speech, **values)

    def prompt(self, call_id: str, token: int, failure: bool) -> cmd.Speak:
        return cmd.Speak(call_id, self.failure_speech if failure else self.speech, token)
