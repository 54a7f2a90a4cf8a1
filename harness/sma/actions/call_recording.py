"""StartCallRecording, StopCallRecording, PauseCallRecording and ResumeCallRecording
(sma-reference §3.15): one call recording per leg, into S3 with the service's key naming."""
from __future__ import annotations

import time
from dataclasses import dataclass

from .. import commands as cmd
from ..buckets import safe_key, valid_bucket_name
from ..model import Leg
from .base import Action, ActionFailure, Context, Done, Failed, Outcome, Run
from .params import as_str, echoed

RECORDINGS_PREFIX = "Amazon-Chime-SMA-Call-Recordings"
#: The recording states (of a leg, in `Context.recordings`) each control allows.
ALLOWED_STATES = {"stop": ("on", "paused"), "pause": ("on",), "resume": ("paused",)}
NEXT_STATE = {"stop": "stopped", "pause": "paused", "resume": "on"}


def _bad_call_id() -> ActionFailure:
    return ActionFailure("InvalidActionParameter", "CallId parameter for action is invalid")


class Opening(Run):
    """StartCallRecording is done once the edge has opened the recording (or failed to)."""

    def __init__(self, action: Action, leg: Leg, token: int, result: dict):
        super().__init__(action, leg, token)
        self.result = result

    def on_media_done(self, ctx: Context, error: tuple[str, str] | None, result: dict | None) -> Outcome:
        if error is not None:
            ctx.recordings.pop(self.leg.call_id, None)  # it never started
            return Failed(*error)
        return Done(self.result)


@dataclass(frozen=True)
class StartCallRecording(Action):
    TYPE = "StartCallRecording"
    PARAMETERS = ("CallId", "Track", "Destination")
    EMULATION = "the recording is a WAV written under the bucket folder, with the service's key naming"
    ERRORS = ("MissingRequiredActionParameter", "SystemException")

    track: str  # BOTH, INCOMING or OUTGOING
    location: str  # bucket[/prefix]

    @classmethod
    def parse(cls, params: dict) -> "StartCallRecording":
        track = as_str(params, "Track", choices=("BOTH", "INCOMING", "OUTGOING"))
        dest = params.get("Destination")
        if not isinstance(dest, dict) or dest.get("Type", "S3") != "S3" or not dest.get("Location") \
                or not safe_key(str(dest["Location"])) \
                or not valid_bucket_name(str(dest["Location"]).split("/", 1)[0]):
            raise ActionFailure("InvalidActionParameter", "Destination parameter value is invalid.")
        return cls(echoed(params), track, str(dest["Location"]))

    def start(self, ctx: Context, leg: Leg) -> Opening:
        if leg.call_id in ctx.recordings:
            raise _bad_call_id()
        bucket, _, prefix = self.location.partition("/")
        stamp = ctx.wall_ms()
        day = time.strftime("%Y/%m/%d", time.gmtime(stamp / 1000))
        moment = time.strftime("%Y-%m-%d-%H-%M-%S", time.gmtime(stamp / 1000)) + f"-{stamp % 1000:03d}"
        key = f"{prefix.strip('/') or RECORDINGS_PREFIX}/{day}/{moment}_{ctx.transaction_id}_{leg.call_id}.wav"
        ctx.recordings[leg.call_id] = "on"
        run = Opening(self, leg, ctx.new_token(),
                      {"CallRecordingDestination": {"Type": "S3", "Location": f"{bucket}/{key}"}})
        ctx.emit(cmd.CallRecording(leg.call_id, "start", self.track, bucket, key, run.token))
        return run


@dataclass(frozen=True)
class RecordingControl(Action):
    """Stop, pause or resume the call recording of the leg."""

    PARAMETERS = ("CallId",)
    ANSWERS = False

    @classmethod
    def parse(cls, params: dict) -> "RecordingControl":
        return cls(echoed(params))

    def start(self, ctx: Context, leg: Leg) -> Done:
        operation = self.TYPE.removesuffix("CallRecording").lower()
        if ctx.recordings.get(leg.call_id) not in ALLOWED_STATES[operation]:
            raise _bad_call_id()
        ctx.emit(cmd.CallRecording(leg.call_id, operation))
        ctx.recordings[leg.call_id] = NEXT_STATE[operation]
        return Done()


@dataclass(frozen=True)
class StopCallRecording(RecordingControl):
    TYPE = "StopCallRecording"


@dataclass(frozen=True)
class PauseCallRecording(RecordingControl):
    TYPE = "PauseCallRecording"


@dataclass(frozen=True)
class ResumeCallRecording(RecordingControl):
    TYPE = "ResumeCallRecording"
