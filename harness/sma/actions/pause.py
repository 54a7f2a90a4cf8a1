"""Pause (sma-reference §3.8): silence on the leg for `DurationInMilliseconds`."""
from __future__ import annotations

from dataclasses import dataclass

from .. import commands as cmd
from ..model import Leg
from .base import Action, Context
from .params import as_int, echoed
from .runs import Playback


@dataclass(frozen=True)
class Pause(Action):
    TYPE = "Pause"
    PARAMETERS = ("DurationInMilliseconds", "CallId", "ParticipantTag")
    INTERRUPTIBLE = True
    ERRORS = ("MissingRequiredActionParameter", "SystemException")

    duration_ms: int

    @classmethod
    def parse(cls, params: dict) -> "Pause":
        return cls(echoed(params), as_int(params, "DurationInMilliseconds"))

    def start(self, ctx: Context, leg: Leg) -> Playback:
        run = Playback(self, leg, ctx.new_token())
        ctx.emit(cmd.PlaySilence(leg.call_id, self.duration_ms, run.token))
        return run
