"""PlayAudio (sma-reference §3.2): play an S3 object, `Repeat` times, until a playback
terminator digit."""
from __future__ import annotations

from dataclasses import dataclass

from .. import commands as cmd
from ..model import Leg
from .base import Action, Context
from .params import DTMF_DIGITS, as_int, audio_source, digit_list, echoed
from .runs import Playback


@dataclass(frozen=True)
class PlayAudio(Action):
    TYPE = "PlayAudio"
    PARAMETERS = ("AudioSource", "Repeat", "PlaybackTerminators", "CallId", "ParticipantTag")
    INTERRUPTIBLE = True
    EMULATION = "S3 objects are files under the profile's bucket folder"
    ERRORS = ("MissingRequiredActionParameter", "InvalidAudioSource", "SystemException")

    bucket: str
    key: str
    repeat: int
    terminators: tuple[str, ...]

    @classmethod
    def parse(cls, params: dict) -> "PlayAudio":
        bucket, key = audio_source(params, "AudioSource")
        return cls(echoed(params, Repeat=1), bucket, key, as_int(params, "Repeat", 1),
                   digit_list(params, "PlaybackTerminators", DTMF_DIGITS, []))

    def start(self, ctx: Context, leg: Leg) -> Playback:
        run = Playback(self, leg, ctx.new_token(), self.terminators)
        ctx.emit(cmd.PlayAudio(leg.call_id, self.bucket, self.key, self.repeat, run.token))
        return run
