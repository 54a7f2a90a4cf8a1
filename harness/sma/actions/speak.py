"""Speak (sma-reference §3.9): text or SSML spoken on the leg."""
from __future__ import annotations

from dataclasses import dataclass

from .. import commands as cmd
from ..model import Leg
from .base import Action, Context
from .params import echoed, speech
from .runs import Playback


@dataclass(frozen=True)
class Speak(Action):
    TYPE = "Speak"
    PARAMETERS = ("CallId", "Text", "Engine", "LanguageCode", "TextType", "VoiceId")
    EMULATION = "Amazon Polly is espeak-ng"
    ERRORS = ("MissingRequiredActionParameter", "SystemException")

    speech: dict

    @classmethod
    def parse(cls, params: dict) -> "Speak":
        return cls(echoed(params, Engine="standard", TextType="text", VoiceId="Joanna"), speech(params))

    def start(self, ctx: Context, leg: Leg) -> Playback:
        run = Playback(self, leg, ctx.new_token())
        ctx.emit(cmd.Speak(leg.call_id, self.speech, run.token))
        return run
