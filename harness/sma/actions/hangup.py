"""Hangup (sma-reference §3.1): end a leg with `SipResponseCode` (0, 480 or 486).

The last leg: the call ends and the rest of the list with it (its HANGUP is the last
invocation). A meeting leg leaves the meeting at once. Another leg: the action completes
once that leg has ended, after its HANGUP (hangup.md; the take-back-and-transfer sample).
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import commands as cmd
from ..model import Leg
from .base import DROPPED, Action, Context, Done, Run, invalid
from .params import as_int, echoed

CODES = (0, 480, 486)


class HangingUp(Run):
    """A Hangup of one leg while another stays: done when that leg is gone."""

    def on_leg_ended(self, ctx: Context, leg: Leg, others_connected: bool) -> Done | str:
        return Done() if leg is self.leg and others_connected else DROPPED


@dataclass(frozen=True)
class Hangup(Action):
    TYPE = "Hangup"
    PARAMETERS = ("CallId", "ParticipantTag", "SipResponseCode")
    ANSWERS = False

    sip_code: int

    @classmethod
    def parse(cls, params: dict) -> "Hangup":
        code = as_int(params, "SipResponseCode", 0, minimum=0)
        if code not in CODES:
            raise invalid("SipResponseCode")
        return cls(echoed(params, SipResponseCode="0"), code)

    def start(self, ctx: Context, leg: Leg) -> Done | HangingUp:
        meeting = ctx.meeting
        if meeting is not None and leg is meeting.leg:
            leg.status, ctx.meeting = "Disconnected", None
            return Done()
        ctx.emit(cmd.HangupLeg(leg.call_id, self.sip_code))
        if not any(l.status == "Connected" for l in ctx.legs if l is not leg):
            return Done(ends_list=True)
        return HangingUp(self, leg, ctx.new_token())
