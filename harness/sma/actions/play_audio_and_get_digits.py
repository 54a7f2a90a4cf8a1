"""PlayAudioAndGetDigits (sma-reference §3.4): a prompt from S3, then digits."""
from __future__ import annotations

from dataclasses import dataclass

from .. import commands as cmd
from .get_digits import GetDigits, collection
from .params import audio_source, echoed


@dataclass(frozen=True)
class PlayAudioAndGetDigits(GetDigits):
    TYPE = "PlayAudioAndGetDigits"
    PARAMETERS = ("AudioSource", "FailureAudioSource", "InputDigitsRegex", "MinNumberOfDigits",
                  "MaxNumberOfDigits", "TerminatorDigits", "InBetweenDigitsDurationInMilliseconds",
                  "Repeat", "RepeatDurationInMilliseconds", "CallId", "ParticipantTag")
    EMULATION = "S3 objects are files under the bucket folder"
    ERRORS = GetDigits.ERRORS + ("InvalidAudioSource",)

    source: tuple[str, str]
    failure_source: tuple[str, str]

    @classmethod
    def parse(cls, params: dict) -> "PlayAudioAndGetDigits":
        source = audio_source(params, "AudioSource")
        failure_source = audio_source(params, "FailureAudioSource")
        values, defaults = collection(params)
        return cls(echoed(params, **defaults), source=source, failure_source=failure_source, **values)

    def prompt(self, call_id: str, token: int, failure: bool) -> cmd.PlayAudio:
        bucket, key = self.failure_source if failure else self.source
        return cmd.PlayAudio(call_id, bucket, key, 1, token)
