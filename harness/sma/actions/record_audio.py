"""RecordAudio (sma-reference §3.5): record what the caller says into S3 until a
terminator digit, `DurationInSeconds`, or `SilenceDurationInSeconds` of silence."""
from __future__ import annotations

from dataclasses import dataclass

from .. import commands as cmd
from ..buckets import safe_key, valid_bucket_name
from ..model import Leg
from .base import Action, ActionFailure, Context, Done, Failed, Outcome, Run
from .params import as_int, digit_list, echoed

TERMINATORS = "123456789*0#"
MAX_PREFIX_CHARS = 979


def _bad_destination() -> ActionFailure:
    return ActionFailure("InvalidActionParameter", "RecordingDestination parameter value is invalid.")


class Recording(Run):
    """The recording under way into s3://bucket/key."""

    def __init__(self, action: "RecordAudio", leg: Leg, token: int, key: str, deadline: float | None):
        super().__init__(action, leg, token)
        self.key, self.deadline = key, deadline

    def on_media_done(self, ctx: Context, error: tuple[str, str] | None, result: dict | None) -> Outcome:
        return Failed(*error) if error is not None else self._finish(ctx, None)  # silence ended it

    def takes_digit(self, digit: str) -> bool:
        return digit in self.action.terminators

    def on_digit(self, ctx: Context, digit: str, now: float) -> Outcome:
        return self._finish(ctx, digit)

    def on_timer(self, ctx: Context, now: float) -> Outcome:
        return self._finish(ctx, None)

    def interrupt(self, ctx: Context) -> None:
        ctx.emit(cmd.StopRecordAudio(self.leg.call_id, self.token))

    def _finish(self, ctx: Context, terminator: str | None) -> Done:
        ctx.emit(cmd.StopRecordAudio(self.leg.call_id, self.token))
        result = {"RecordingDestination": {"Type": "S3", "BucketName": self.action.bucket, "Key": self.key}}
        if terminator is not None:
            result["RecordingTerminatorUsed"] = terminator
        return Done(result)


@dataclass(frozen=True)
class RecordAudio(Action):
    TYPE = "RecordAudio"
    PARAMETERS = ("DurationInSeconds", "SilenceDurationInSeconds", "SilenceThreshold",
                  "RecordingTerminators", "RecordingDestination", "CallId", "ParticipantTag")
    INTERRUPTIBLE = True
    REPORTS = True
    EMULATION = "the recording is a WAV written under the bucket folder"
    ERRORS = ("MissingRequiredActionParameter", "SystemException")

    bucket: str
    prefix: str
    duration_s: int | None
    silence_s: int | None
    silence_threshold: int
    terminators: tuple[str, ...]

    @classmethod
    def parse(cls, params: dict) -> "RecordAudio":
        if params.get("CallId") and params.get("ParticipantTag"):
            raise ActionFailure("InvalidActionParameter", "CallId and ParticipantTag cannot both be specified.")
        dest = params.get("RecordingDestination")
        if not isinstance(dest, dict) or dest.get("Type", "S3") != "S3" \
                or not valid_bucket_name(dest.get("BucketName")):
            raise _bad_destination()
        prefix = dest.get("Prefix", "")
        if not isinstance(prefix, str) or len(prefix) > MAX_PREFIX_CHARS or not safe_key(prefix):
            raise _bad_destination()
        return cls(echoed(params), str(dest["BucketName"]), prefix,
                   as_int(params, "DurationInSeconds", 0, minimum=0) or None,
                   as_int(params, "SilenceDurationInSeconds", 0, minimum=0, maximum=1000) or None,
                   as_int(params, "SilenceThreshold", 200, maximum=1000),
                   digit_list(params, "RecordingTerminators", TERMINATORS))

    def start(self, ctx: Context, leg: Leg) -> Recording:
        key = f"{self.prefix}{ctx.transaction_id}-{ctx.wall_ms()}.wav"
        deadline = ctx.clock() + self.duration_s if self.duration_s else None
        run = Recording(self, leg, ctx.new_token(), key, deadline)
        ctx.emit(cmd.StartRecordAudio(leg.call_id, self.bucket, key, self.silence_s,
                                      self.silence_threshold, run.token))
        return run
