"""ModifyChimeMeetingAttendees (sma-reference §3.12): mute or unmute attendees of the
meeting the call joined."""
from __future__ import annotations

from dataclasses import dataclass

from ..model import Leg
from .base import Action, ActionFailure, Context, Done
from .params import as_str, echoed

MAX_ATTENDEES = 100


@dataclass(frozen=True)
class ModifyChimeMeetingAttendees(Action):
    TYPE = "ModifyChimeMeetingAttendees"
    PARAMETERS = ("Operation", "MeetingId", "AttendeeList", "CallId", "ParticipantTag")
    ANSWERS = False
    REPORTS = True
    EMULATION = "mute state is kept on the local meeting"
    ERRORS = ("MissingRequiredActionParameter",)

    operation: str  # "Mute" or "Unmute"
    meeting_id: str
    attendees: tuple[str, ...]

    @classmethod
    def parse(cls, params: dict) -> "ModifyChimeMeetingAttendees":
        operation = as_str(params, "Operation", choices=("Mute", "Unmute"))
        meeting_id = as_str(params, "MeetingId")
        attendees = params.get("AttendeeList")
        if not isinstance(attendees, list) or not attendees or len(attendees) > MAX_ATTENDEES \
                or not all(isinstance(a, str) and a for a in attendees):
            raise ActionFailure("InvalidActionParameter", "Attendee List parameter value is invalid.")
        return cls(echoed(params), operation, meeting_id, tuple(attendees))

    def start(self, ctx: Context, leg: Leg) -> Done:
        meeting = ctx.meeting
        if meeting is None:
            raise ActionFailure("InvalidActionParameter", "Call is not connected to Chime Meeting.")
        if meeting.meeting_id and self.meeting_id != meeting.meeting_id:
            raise ActionFailure("InvalidActionParameter", "Meeting ID parameter value is invalid.")
        if self.operation == "Mute":
            meeting.muted.update(self.attendees)
        else:
            meeting.muted.difference_update(self.attendees)
        return Done()
