"""CallAndBridge (sma-reference §3.10): place LEG-B to a PSTN number or a Voice Connector
and bridge it with the leg once it answers, within `CallTimeoutSeconds`."""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from .. import commands as cmd
from ..model import Leg, new_id
from ..phone_numbers import is_e164
from .base import DROPPED, Action, ActionFailure, Context, Done, Failed, Outcome, Run, invalid, missing
from .params import as_int, as_str, audio_source, echoed, sip_headers

AWS_URI = re.compile(r"[A-Za-z0-9&=+$/%_!~*().-]{1,30}")  # an AWS endpoint's Uri (§3.10)
NOT_ANSWERED = ("CallNotAnswered", "Call not answered")


class Bridging(Run):
    """LEG-B rings (`other`) until it answers, fails or the timeout; the ringback, if any,
    plays to the leg meanwhile (its end changes nothing)."""

    def __init__(self, action: "CallAndBridge", leg: Leg, token: int, other: Leg, deadline: float):
        super().__init__(action, leg, token)
        self.other: Leg | None = other
        self.deadline = deadline

    def on_media_done(self, ctx: Context, error: tuple[str, str] | None, result: dict | None) -> Outcome:
        return Failed(*error) if error is not None else None

    def on_leg_answered(self, ctx: Context, call_id: str) -> Outcome:
        if self.other is None or self.other.call_id != call_id:
            return None
        b, self.other = self.other, None
        b.answered = True
        ctx.add_leg(b)
        ctx.answer(self.leg)
        ctx.emit(cmd.StopMedia(self.leg.call_id))
        ctx.emit(cmd.Bridge(self.leg.call_id, b.call_id))
        return Done()

    def on_leg_failed(self, ctx: Context, call_id: str) -> Outcome:
        if self.other is None or self.other.call_id != call_id:
            return None
        self.other = None
        ctx.emit(cmd.StopMedia(self.leg.call_id))
        return Failed(*NOT_ANSWERED)

    def on_timer(self, ctx: Context, now: float) -> Outcome:
        self.deadline = None
        if self.other is None:
            return None
        ctx.emit(cmd.CancelCall(self.other.call_id))
        ctx.emit(cmd.StopMedia(self.leg.call_id))
        self.other = None
        return Failed(*NOT_ANSWERED)

    def on_leg_ended(self, ctx: Context, leg: Leg, others_connected: bool) -> str:
        if self.other is not None:
            ctx.emit(cmd.CancelCall(self.other.call_id))
        return DROPPED


@dataclass(frozen=True)
class CallAndBridge(Action):
    TYPE = "CallAndBridge"
    PARAMETERS = ("CallTimeoutSeconds", "CallerIdNumber", "Endpoints", "RingbackTone", "SipHeaders")
    ANSWERS = False
    REPORTS = True
    EMULATION = "the PSTN number or Voice Connector is a SIP target from the profile"
    ERRORS = ("MissingRequiredActionParameter", "InvalidAudioSource", "CallNotAnswered")

    timeout_s: int
    caller_id: str
    endpoint_type: str  # "PSTN" or "AWS"
    uri: str
    arn: str | None
    sip_headers: dict
    ringback: tuple[str, str] | None

    @classmethod
    def parse(cls, params: dict) -> "CallAndBridge":
        timeout_s = as_int(params, "CallTimeoutSeconds", 30, maximum=120)
        caller_id = as_str(params, "CallerIdNumber")
        if not is_e164(caller_id):
            raise invalid("CallerIdNumber")
        endpoints = params.get("Endpoints")
        if not isinstance(endpoints, list) or not endpoints or not isinstance(endpoints[0], dict):
            raise missing("Endpoints")
        ep = endpoints[0]
        kind, uri = ep.get("BridgeEndpointType"), ep.get("Uri")
        if kind not in ("PSTN", "AWS") or not isinstance(uri, str) or not uri:
            raise invalid("Endpoints")
        if kind == "PSTN" and not is_e164(uri):
            raise invalid("Endpoints")
        if kind == "AWS" and (not ep.get("Arn") or not AWS_URI.fullmatch(uri)):
            raise invalid("Endpoints")
        headers = sip_headers(params)
        ringback = audio_source(params, "RingbackTone") if params.get("RingbackTone") else None
        return cls(echoed(params, CallTimeoutSeconds=30), timeout_s, caller_id, kind, uri,
                   ep.get("Arn"), headers, ringback)

    def start(self, ctx: Context, leg: Leg) -> Bridging:
        # the service's events echo the CallId of the leg it bridges (call-and-bridge.md)
        action = dataclasses.replace(self, parameters=echoed(self.parameters, CallId=leg.call_id))
        if any(l.participant_tag == "LEG-B" and l.status == "Connected" for l in ctx.legs):
            raise ActionFailure("InvalidActionParameter", "Invalid action on the call.")
        b = Leg(new_id(), "LEG-B", self.uri, self.caller_id, "Outbound", ctx.wall_ms())
        run = Bridging(action, leg, ctx.new_token(), b, ctx.clock() + self.timeout_s)
        ctx.emit(cmd.PlaceCall(b, self.endpoint_type, self.uri, self.arn, self.sip_headers))
        if self.ringback and leg.answered:
            bucket, key = self.ringback
            ctx.emit(cmd.PlayAudio(leg.call_id, bucket, key, 1000, -run.token))
        return run
