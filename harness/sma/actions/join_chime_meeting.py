"""JoinChimeMeeting (sma-reference §3.11): the call joins a Chime meeting, which stands as
LEG-B (To "SMA")."""
from __future__ import annotations

from dataclasses import dataclass

from .. import commands as cmd
from ..model import Leg, Meeting, new_id
from .base import Action, ActionFailure, Context, Done
from .params import as_str, echoed


@dataclass(frozen=True)
class JoinChimeMeeting(Action):
    TYPE = "JoinChimeMeeting"
    PARAMETERS = ("JoinToken", "MeetingId", "CallId", "ParticipantTag")
    REPORTS = True
    EMULATION = "the meeting is a local conference leg (LEG-B, To \"SMA\")"
    ERRORS = ("MissingRequiredActionParameter",)

    join_token: str
    meeting_id: str | None

    @classmethod
    def parse(cls, params: dict) -> "JoinChimeMeeting":
        return cls(echoed(params), as_str(params, "JoinToken"), params.get("MeetingId"))

    def start(self, ctx: Context, leg: Leg) -> Done:
        if len([l for l in ctx.legs if l.status == "Connected"]) > 1:
            raise ActionFailure("InvalidActionParameter", "Invalid action on the call.")
        meeting_leg = Leg(new_id(), "LEG-B", "SMA", leg.from_, "Outbound", ctx.wall_ms(), answered=True)
        ctx.add_leg(meeting_leg)
        ctx.meeting = Meeting(self.meeting_id, meeting_leg)
        ctx.emit(cmd.StopMedia(leg.call_id))
        return Done()
