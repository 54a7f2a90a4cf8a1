"""The SMA engine for one transaction (one call and its legs), sans-IO.

It consumes what happens (a call arrived, the handler answered, media ended, a digit came, a
leg answered or hung up, an update was requested, time passed) and emits commands
(`harness.sma.commands`). Handler invocations are serialized per transaction and numbered by
`Sequence`. The list, failure, interruption and hangup rules are those of the reference;
`docs/fidelity.md` records the choices where it is silent.
"""
from __future__ import annotations

import functools
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from . import commands as cmd
from .actions import (ANSWERING_ACTIONS, KNOWN_ACTIONS, REPORTING_ACTIONS, ActionFailure,
                      ParsedAction, parse_action)
from .digits import FAILED, RETRY, SUCCESS, DigitCollector, DigitListener
from .model import Leg, SipMediaApplication, new_id

MAX_ACTIONS = 10
MAX_INVOCATIONS = 1000
MAX_ATTRIBUTES = 100
MAX_ATTRIBUTES_BYTES = 20 * 1024
NO_ACTIONS_TIMEOUT_S = 30.0
DIGITS_ERROR = ("InvalidDigitsReceived", "The digits received did not match the action's requirements.")
RECORDINGS_PREFIX = "Amazon-Chime-SMA-Call-Recordings"

NEW_INBOUND_CALL = "NEW_INBOUND_CALL"
NEW_OUTBOUND_CALL = "NEW_OUTBOUND_CALL"
RINGING = "RINGING"
CALL_ANSWERED = "CALL_ANSWERED"
ACTION_SUCCESSFUL = "ACTION_SUCCESSFUL"
ACTION_FAILED = "ACTION_FAILED"
ACTION_INTERRUPTED = "ACTION_INTERRUPTED"
HANGUP = "HANGUP"
INVALID_LAMBDA_RESPONSE = "INVALID_LAMBDA_RESPONSE"
DIGITS_RECEIVED = "DIGITS_RECEIVED"
CALL_UPDATE_REQUESTED = "CALL_UPDATE_REQUESTED"


def _input(method):
    """An input of the engine: after it, the transaction's standing timers are brought up to date."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        result = method(self, *args, **kwargs)
        self._settle()
        return result
    return wrapper


class InvalidResponse(Exception):
    """The handler's response cannot be used; becomes INVALID_LAMBDA_RESPONSE."""

    def __init__(self, error_type: str, message: str):
        super().__init__(message)
        self.error_type, self.message = error_type, message


@dataclass
class _Pending:
    event_type: str
    action_data: dict | None
    ignore: bool
    extra: dict | None


@dataclass
class _Running:
    """The action in progress and the state it keeps while it runs."""

    action: ParsedAction
    leg: Leg
    token: int
    collector: DigitCollector | None = None
    phase: str = ""  # GetDigits: prompt, listen, failure
    deadline: float | None = None  # RecordAudio duration, CallAndBridge timeout
    other_leg: Leg | None = None  # CallAndBridge's LEG-B while it rings


class CallTransaction:
    """One TransactionId: its legs, attributes, action list and handler invocations."""

    def __init__(self, sma: SipMediaApplication, transaction_id: str, sip_rule_id: str | None,
                 clock: Callable[[], float], wall_ms: Callable[[], int],
                 fallbacks: list[SipMediaApplication] | None = None,
                 action_allowed: Callable[[str], bool] | None = None):
        self.sma, self.transaction_id, self.sip_rule_id = sma, transaction_id, sip_rule_id
        self.clock, self.wall_ms = clock, wall_ms
        self.fallbacks = list(fallbacks or [])
        self.action_allowed = action_allowed or (lambda account: True)
        self.legs: list[Leg] = []
        self.sequence = 0
        self.attributes: dict[str, str] = {}
        self.ended = False
        self._pending_actions: list[dict] = []
        self._run: _Running | None = None
        self._tokens = 0
        self._list_running = False
        self._listeners: dict[str, DigitListener] = {}
        self._recordings: dict[str, str] = {}  # CallId -> on, paused, stopped
        self._meeting: dict | None = None
        self._ringing_reported = False
        self._queue: deque[_Pending] = deque()
        self._outstanding: _Pending | None = None
        self._commands: list[object] = []
        self._no_actions_deadline: float | None = None

    # ---- inputs: the call -------------------------------------------------------------
    @_input
    def inbound_call(self, leg: Leg) -> None:
        """A new inbound leg (LEG-A) arrived through a SIP rule."""
        self.legs.append(leg)
        self._emit(cmd.Ring(leg.call_id))
        self._invoke(NEW_INBOUND_CALL)

    @_input
    def outbound_call(self, leg: Leg, arguments: dict[str, str], sip_headers: dict[str, str]) -> None:
        """CreateSipMediaApplicationCall: place LEG-A and tell the handler (§4.3)."""
        self.legs.append(leg)
        self._emit(cmd.PlaceCall(leg.call_id, leg.to, leg.from_, "PSTN", leg.to,
                                 sip_headers=dict(sip_headers)))
        data = {"Type": "CallCreateRequest", "Parameters": {"Arguments": dict(arguments)}} \
            if arguments else None
        self._invoke(NEW_OUTBOUND_CALL, data, ignore=True)

    @_input
    def leg_ringing(self, call_id: str) -> None:
        """An outbound leg is ringing (180/183)."""
        if self.legs and call_id == self.legs[0].call_id and not self._ringing_reported:
            self._ringing_reported = True
            self._invoke(RINGING, ignore=True)

    @_input
    def leg_answered(self, call_id: str) -> None:
        """An outbound leg answered (200 OK)."""
        run = self._run
        if run is not None and run.other_leg is not None and run.other_leg.call_id == call_id:
            b, run.other_leg = run.other_leg, None
            b.answered = True
            self._add_leg(b)
            self._answer(run.leg)
            self._emit(cmd.StopMedia(run.leg.call_id))
            self._emit(cmd.Bridge(run.leg.call_id, b.call_id))
            self._complete()
        elif self.legs and call_id == self.legs[0].call_id and not self.legs[0].answered:
            self.legs[0].answered = True
            self._invoke(CALL_ANSWERED)

    @_input
    def leg_failed(self, call_id: str, sip_code: int) -> None:
        """An outbound leg ended without answering (busy, no answer, error)."""
        run = self._run
        if run is not None and run.other_leg is not None and run.other_leg.call_id == call_id:
            run.other_leg = None
            self._emit(cmd.StopMedia(run.leg.call_id))
            self._fail_running("CallNotAnswered", "Call not answered")
        elif self.legs and call_id == self.legs[0].call_id:
            self.leg_ended(call_id, sip_code)

    @_input
    def leg_ended(self, call_id: str, sip_code: int = 0) -> None:
        """A leg hung up (far end BYE, our Hangup action, or a failure)."""
        leg = self._leg(call_id)
        if leg is None or leg.status == "Disconnected":
            return
        leg.status = "Disconnected"
        self._listeners.pop(call_id, None)
        meeting = self._meeting
        if meeting is not None and not any(l.status == "Connected" for l in self.legs
                                           if l is not meeting["leg"]):
            meeting["leg"].status = "Disconnected"  # the meeting leg goes with the last real leg
            self._meeting = None
        run = self._run
        # a Hangup of this leg, while another leg stays, completes once the leg is gone: its
        # list reports after the HANGUP event (hangup.md; the take-back-and-transfer sample)
        hung_up = run is not None and run.action.type == "Hangup" and run.leg is leg \
            and self._connected()
        if run is not None and not hung_up and (run.leg is leg or not self._connected()):
            if run.other_leg is not None:
                self._emit(cmd.CancelCall(run.other_leg.call_id))
            self._run = None
        if not self._connected():
            self._pending_actions, self._list_running = [], False
        self._invoke(HANGUP, {"Type": "Hangup", "Parameters": {
            "SipResponseCode": sip_code, "CallId": leg.call_id,
            "ParticipantTag": leg.participant_tag}}, ignore=True)
        if hung_up:
            self._complete()
        self._check_end()

    @_input
    def update_requested(self, arguments: dict[str, str]) -> None:
        """UpdateSipMediaApplicationCall was accepted for this transaction."""
        self._invoke(CALL_UPDATE_REQUESTED, {"Type": "CallUpdateRequest",
                                             "Parameters": {"Arguments": dict(arguments)}})

    # ---- inputs: media and digits -----------------------------------------------------
    @_input
    def media_done(self, token: int, error: tuple[str, str] | None = None,
                   result: dict | None = None) -> None:
        """The media started with `token` ended by itself, or could not start (`error`)."""
        run = self._run
        if run is None or token != run.token:
            return  # stale: the action was interrupted, or its leg is gone
        if error is not None:
            if run.action.type == "StartCallRecording":
                self._recordings.pop(run.leg.call_id, None)  # it never started
            self._fail_running(*error)
        elif run.collector is not None:
            self._collector_media_done(run)
        elif run.action.type == "RecordAudio":
            self._finish_recording(run, terminator=None)
        elif run.action.type != "CallAndBridge":  # its ringback ending changes nothing
            self._complete()

    @_input
    def digit_received(self, call_id: str, digit: str) -> None:
        """A DTMF digit from a leg (RFC 4733 or SIP INFO)."""
        now = self.clock()
        run = self._run
        if run is not None and run.leg.call_id == call_id:
            action = run.action
            if run.collector is not None and run.phase in ("prompt", "listen"):
                if run.phase == "prompt":  # barge-in: the first digit stops the prompt
                    run.phase = "listen"
                    self._emit(cmd.StopMedia(call_id))
                outcome = run.collector.add(digit, now)
                if outcome:
                    self._collector_outcome(run, outcome)
                return
            if action.type == "PlayAudio" and digit in action.values["terminators"]:
                self._emit(cmd.StopMedia(call_id))
                self._complete()
                return
            if action.type == "RecordAudio" and digit in action.values["terminators"]:
                self._finish_recording(run, terminator=digit)
                return
        listener = self._listeners.get(call_id)
        if listener is not None:
            listener.add(digit, now)

    @_input
    def handle_timers(self, now: float) -> None:
        """Fire the timers due at `now`."""
        if self._no_actions_deadline is not None and now >= self._no_actions_deadline:
            self._no_actions_deadline = None
            leg = self.legs[0]
            if not leg.answered and leg.status == "Connected":
                self._emit(cmd.HangupLeg(leg.call_id, 480))
        run = self._run
        if run is not None and run.collector is not None and run.phase == "listen":
            outcome = run.collector.expire(now)
            if outcome:
                self._collector_outcome(run, outcome)
        elif run is not None and run.deadline is not None and now >= run.deadline:
            run.deadline = None
            if run.action.type == "RecordAudio":
                self._finish_recording(run, terminator=None)
            elif run.other_leg is not None:
                self._emit(cmd.CancelCall(run.other_leg.call_id))
                self._emit(cmd.StopMedia(run.leg.call_id))
                run.other_leg = None
                self._fail_running("CallNotAnswered", "Call not answered")
        for listener in list(self._listeners.values()):
            digits = listener.expire(now)
            if digits:
                self._invoke(DIGITS_RECEIVED, {**listener.action_data, "ReceivedDigits": digits})

    def next_deadline(self) -> float | None:
        """The earliest time `handle_timers` has work to do, or None."""
        times = [self._no_actions_deadline] + [l.next_deadline() for l in self._listeners.values()]
        run = self._run
        if run is not None:
            times.append(run.collector.deadline if run.collector is not None else run.deadline)
        return min((t for t in times if t is not None), default=None)

    # ---- outputs ----------------------------------------------------------------------
    def take_commands(self) -> list[object]:
        out, self._commands = self._commands, []
        return out

    @property
    def busy(self) -> bool:
        """True while an invocation is outstanding or queued."""
        return self._outstanding is not None or bool(self._queue)

    @property
    def invocations_exhausted(self) -> bool:
        """The call has used its 1,000 invocations (sma-reference §5.2)."""
        return self.sequence >= MAX_INVOCATIONS

    # ---- invocations ------------------------------------------------------------------
    def _emit(self, command: object) -> None:
        self._commands.append(command)

    def _invoke(self, event_type: str, action_data: dict | None = None, ignore: bool = False,
                extra: dict | None = None) -> None:
        """Queue an invocation. Once no leg is connected the transaction is over: only the
        HANGUP of its last leg is still made, nothing after it."""
        if not self._connected() and event_type != HANGUP:
            return
        self._queue.append(_Pending(event_type, action_data, ignore, extra))
        self._pump()

    def _pump(self) -> None:
        if self._outstanding is not None or not self._queue:
            return
        if self.invocations_exhausted:
            self._queue.clear()
            for leg in self.legs:
                if leg.status == "Connected":
                    self._emit(cmd.HangupLeg(leg.call_id, 480))
            return
        pending = self._queue.popleft()
        self.sequence += 1
        self._outstanding = pending
        self._emit(cmd.Invoke(self.transaction_id, self.sequence, self._event(pending),
                              pending.ignore))

    def _event(self, pending: _Pending) -> dict:
        details = {"TransactionId": self.transaction_id}
        if self.attributes:
            details["TransactionAttributes"] = dict(self.attributes)
        details["AwsAccountId"] = self.sma.aws_account_id
        details["AwsRegion"] = self.sma.aws_region
        if self.sip_rule_id:
            details["SipRuleId"] = self.sip_rule_id
        details["SipMediaApplicationId"] = self.sma.sip_media_application_id
        details["Participants"] = [leg.to_event() for leg in self.legs]
        event = {"SchemaVersion": "1.0", "Sequence": self.sequence,
                 "InvocationEventType": pending.event_type}
        if pending.action_data is not None:
            event["ActionData"] = pending.action_data
        event["CallDetails"] = details
        if pending.extra:
            event.update(pending.extra)
        return event

    @_input
    def handler_result(self, sequence: int, response: object, failed: str | None = None) -> None:
        """The handler answered invocation `sequence` (or failed after its retries: `failed`)."""
        pending = self._outstanding
        if pending is None or sequence != self.sequence:
            return
        self._outstanding = None
        if failed is not None:
            self._on_invocation_failed(pending)
        elif not self._connected() or (pending.ignore and pending.event_type != HANGUP):
            self._keep_attributes(response)  # informational, or the transaction is over
        else:
            try:
                self._apply_response(pending.event_type, response)
            except InvalidResponse as exc:
                self._invoke(INVALID_LAMBDA_RESPONSE,
                             extra={"ErrorType": exc.error_type, "ErrorMessage": exc.message})
        self._pump()
        self._check_end()

    def _on_invocation_failed(self, pending: _Pending) -> None:
        """Retries ran out: the next SMA of the SIP rule, else the call ends with 480 (§5.1)."""
        if pending.event_type == NEW_INBOUND_CALL and self.fallbacks:
            self.sma = self.fallbacks.pop(0)
            self._invoke(NEW_INBOUND_CALL)
            return
        if pending.ignore:
            return
        for leg in self.legs:
            if leg.status == "Connected":
                self._emit(cmd.HangupLeg(leg.call_id, 480))

    def _keep_attributes(self, response: object) -> None:
        """An ignored response still stores valid TransactionAttributes (click-to-call relies on it)."""
        if isinstance(response, dict) and response.get("TransactionAttributes") is not None:
            try:
                self.attributes = self._check_attributes(response["TransactionAttributes"])
            except InvalidResponse:
                pass  # the response is ignored, and so is what is wrong with it

    # ---- responses --------------------------------------------------------------------
    def _apply_response(self, event_type: str, response: object) -> None:
        if not isinstance(response, dict):
            raise InvalidResponse("InvalidResponse",
                                  f"The Lambda response is not a JSON object: {_kind(response)}")
        if response.get("SchemaVersion") != "1.0":
            raise InvalidResponse("SchemaVersionMismatch",
                                  f"SchemaVersion {response.get('SchemaVersion')!r} is not supported; expected \"1.0\"")
        actions = response.get("Actions")
        if actions is not None:
            self._check_actions(actions)
        if response.get("TransactionAttributes") is not None:
            self.attributes = self._check_attributes(response["TransactionAttributes"])
        if actions is not None:
            self._replace_actions(event_type, actions)

    @staticmethod
    def _check_actions(actions: object) -> None:
        if not isinstance(actions, list):
            raise InvalidResponse("InvalidActions", "Actions must be a list")
        if len(actions) > MAX_ACTIONS:
            raise InvalidResponse("TooManyActions",
                                  f"Lambda response has {len(actions)} actions. Maximum number of actions is {MAX_ACTIONS}")
        for action in actions:
            if not isinstance(action, dict) or action.get("Type") not in KNOWN_ACTIONS:
                kind = action.get("Type") if isinstance(action, dict) else action
                raise InvalidResponse("InvalidActionType", f"Action type {kind!r} is not supported")
            if action.get("Parameters") is not None and not isinstance(action["Parameters"], dict):
                raise InvalidResponse("InvalidActionParameters",
                                      f"Parameters of {action['Type']} must be an object")

    @staticmethod
    def _check_attributes(attributes: object) -> dict[str, str]:
        if not isinstance(attributes, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in attributes.items()):
            raise InvalidResponse("TransactionAttributesInvalidType",
                                  "Transaction Attributes must be a map of string to string")
        if len(attributes) > MAX_ATTRIBUTES:
            raise InvalidResponse("TransactionAttributesInvalidMapSize",
                                  f"Transaction Attributes has too many mappings. Maximum number of mappings is {MAX_ATTRIBUTES}")
        if len(json.dumps(attributes).encode()) > MAX_ATTRIBUTES_BYTES:
            raise InvalidResponse("TransactionAttributesInvalidSize",
                                  "Transaction Attributes exceed the maximum payload size of 20 KB")
        return dict(attributes)

    def _replace_actions(self, event_type: str, actions: list[dict]) -> None:
        """Replace every action after the current one; an update interrupts an interruptible one."""
        self._pending_actions = list(actions)
        self._list_running = bool(actions)
        run = self._run
        if run is not None and event_type == CALL_UPDATE_REQUESTED \
                and run.action.type in self.sma.interruptible:
            self._run = None
            if run.action.type == "RecordAudio":
                self._emit(cmd.StopRecordAudio(run.leg.call_id, run.token))
            else:
                self._emit(cmd.StopMedia(run.leg.call_id))
            self._run_actions()
            self._invoke(ACTION_INTERRUPTED, run.action.action_data(), ignore=True)
        elif run is None:
            self._run_actions()

    # ---- running actions --------------------------------------------------------------
    def _run_actions(self, completed: ParsedAction | None = None) -> None:
        """Start pending actions until one takes time; report the list when it completes.

        `completed` is the action that just finished. One ACTION_SUCCESSFUL reports a whole
        list, with its last action (use-case-2.md); an action whose result the function needs
        (`REPORTING_ACTIONS`) reports as soon as it succeeds, wherever it stands in its list,
        and the rest of the list goes on (docs/fidelity.md, "Results reported mid-list").
        """
        last_done = self._done(completed)
        while self._run is None and self._pending_actions:
            raw = self._pending_actions.pop(0)
            try:
                action = parse_action(raw)
                leg = self._target_leg(action)
                if action.type in ANSWERING_ACTIONS:
                    self._answer(leg)
                done = self._start(action, leg)
            except ActionFailure as exc:
                failed = ParsedAction(raw["Type"], dict(raw.get("Parameters") or {}))
                self._fail(failed, exc.error_type, exc.message)
                return
            if done:
                last_done = self._done(action) or last_done
        if self._run is None and last_done is not None and self._list_running and self._connected():
            self._list_running = False
            self._invoke(ACTION_SUCCESSFUL, last_done.action_data())

    def _done(self, action: ParsedAction | None) -> ParsedAction | None:
        """`action` succeeded: a reporting action that does not end a running list reports now
        (and is then not the list's last action to report); any other is returned as the last
        action done."""
        if action is None:
            return None
        if action.type in REPORTING_ACTIONS and (self._pending_actions or not self._list_running):
            self._invoke(ACTION_SUCCESSFUL, action.action_data())
            return None
        return action

    def _answer(self, leg: Leg) -> None:
        """Answer `leg` if it has not answered yet (200 OK with our SDP)."""
        if not leg.answered:
            leg.answered = True
            self._emit(cmd.Answer(leg.call_id))

    def _begin(self, action: ParsedAction, leg: Leg, **state) -> int:
        self._tokens += 1
        self._run = _Running(action, leg, self._tokens, **state)
        return self._tokens

    def _start(self, action: ParsedAction, leg: Leg) -> bool:
        """Start `action` on `leg`; True when it completed at once."""
        v, kind, call_id = action.values, action.type, leg.call_id
        if kind == "PlayAudio":
            self._emit(cmd.PlayAudio(call_id, v["bucket"], v["key"], v["repeat"], self._begin(action, leg)))
        elif kind == "Pause":
            self._emit(cmd.PlaySilence(call_id, v["duration_ms"], self._begin(action, leg)))
        elif kind == "Speak":
            self._emit(cmd.Speak(call_id, v["speech"], self._begin(action, leg)))
        elif kind == "SendDigits":
            self._emit(cmd.SendDigits(call_id, v["digits"], v["tone_ms"], self._begin(action, leg)))
        elif kind in ("PlayAudioAndGetDigits", "SpeakAndGetDigits"):
            collector = DigitCollector(v["min_digits"], v["max_digits"], v["terminators"], v["regex"],
                                       v["in_between_ms"], v["repeat_ms"], v["attempts"])
            self._begin(action, leg, collector=collector)
            self._prompt(self._run, failure=False)
        elif kind == "ReceiveDigits":
            self._listeners[call_id] = DigitListener(v["regex"], v["in_between_ms"], v["flush_ms"],
                                                     action.action_data())
            action.result["ReceivedDigits"] = ""
            return True
        elif kind == "RecordAudio":
            key = f"{v['prefix']}{self.transaction_id}-{self.wall_ms()}.wav"
            v["key"] = key
            token = self._begin(action, leg)
            self._run.deadline = self.clock() + v["duration_s"] if v["duration_s"] else None
            self._emit(cmd.StartRecordAudio(call_id, v["bucket"], key, v["silence_s"],
                                            v["silence_threshold"], token))
        elif kind == "CallAndBridge":
            return self._call_and_bridge(action, leg)
        elif kind == "Hangup":
            return self._hangup(action, leg)
        elif kind == "JoinChimeMeeting":
            return self._join_meeting(action, leg)
        elif kind == "ModifyChimeMeetingAttendees":
            meeting = self._meeting
            if meeting is None:
                raise ActionFailure("InvalidActionParameter", "Call is not connected to Chime Meeting.")
            if meeting["meeting_id"] and v["meeting_id"] != meeting["meeting_id"]:
                raise ActionFailure("InvalidActionParameter", "Meeting ID parameter value is invalid.")
            muted = meeting["muted"]
            (muted.update if v["operation"] == "Mute" else muted.difference_update)(v["attendees"])
            return True
        elif kind == "StartBotConversation":
            return self._bot(action, leg)
        elif kind == "VoiceFocus":
            if not self.action_allowed(self.sma.aws_account_id):
                raise ActionFailure("ActionExecutionThrottled", "Failed to run action. The maximum "
                                    "number of actions per second has been reached.")
            return True
        elif kind.endswith("CallRecording"):
            return self._call_recording(action, leg)
        elif kind == "Answer":
            return True
        return False

    def _hangup(self, action: ParsedAction, leg: Leg) -> bool:
        """Hang up `leg`. The last leg: the call ends and the rest of the list with it (its
        HANGUP is the last invocation). A meeting leg leaves the meeting at once. Another
        leg: the action completes when the leg has ended, after its HANGUP (hangup.md)."""
        meeting = self._meeting
        if meeting is not None and leg is meeting["leg"]:
            leg.status, self._meeting = "Disconnected", None
            return True
        self._emit(cmd.HangupLeg(leg.call_id, action.values["sip_code"]))
        if not any(l.status == "Connected" for l in self.legs if l is not leg):
            self._pending_actions, self._list_running = [], False
            return True
        self._begin(action, leg)
        return False

    def _call_and_bridge(self, action: ParsedAction, leg: Leg) -> bool:
        v = action.values
        # the service's events echo the CallId of the leg it bridges (call-and-bridge.md)
        action.parameters.setdefault("CallId", leg.call_id)
        if any(l.participant_tag == "LEG-B" and l.status == "Connected" for l in self.legs):
            raise ActionFailure("InvalidActionParameter", "Invalid action on the call.")
        b = Leg(new_id(), "LEG-B", v["uri"], v["caller_id"], "Outbound", self.wall_ms())
        token = self._begin(action, leg, other_leg=b, deadline=self.clock() + v["timeout_s"])
        self._emit(cmd.PlaceCall(b.call_id, v["uri"], v["caller_id"], v["endpoint_type"], v["uri"],
                                 v["arn"], v["sip_headers"]))
        if v["ringback"] and leg.answered:
            bucket, key = v["ringback"]
            self._emit(cmd.PlayAudio(leg.call_id, bucket, key, 1000, -token))
        return False

    def _join_meeting(self, action: ParsedAction, leg: Leg) -> bool:
        if len([l for l in self.legs if l.status == "Connected"]) > 1:
            raise ActionFailure("InvalidActionParameter", "Invalid action on the call.")
        meeting_leg = Leg(new_id(), "LEG-B", "SMA", leg.from_, "Outbound", self.wall_ms(),
                          answered=True)
        self._add_leg(meeting_leg)
        self._meeting = {"meeting_id": action.values["meeting_id"], "leg": meeting_leg, "muted": set()}
        self._emit(cmd.StopMedia(leg.call_id))
        return True

    def _bot(self, action: ParsedAction, leg: Leg) -> bool:
        bot = self.sma.bots.get(action.values["bot_alias_arn"])
        if bot is None:
            raise ActionFailure("ResourceNotFound", f"Bot alias {action.values['bot_alias_arn']} not found.")
        action.result["IntentResult"] = bot
        welcome = " ".join(w for w in action.values["welcome"] if w)
        if not welcome:
            return True
        speech = {"text": welcome, "engine": "standard", "language": "en-US", "text_type": "text",
                  "voice": "Joanna"}
        self._emit(cmd.Speak(leg.call_id, speech, self._begin(action, leg)))
        return False

    def _call_recording(self, action: ParsedAction, leg: Leg) -> bool:
        state = self._recordings.get(leg.call_id)
        operation = action.type.removesuffix("CallRecording").lower()
        allowed = {"start": state is None, "stop": state in ("on", "paused"),
                   "pause": state == "on", "resume": state == "paused"}[operation]
        if not allowed:
            raise ActionFailure("InvalidActionParameter", "CallId parameter for action is invalid")
        if operation == "start":
            bucket, _, prefix = action.values["location"].partition("/")
            stamp = self.wall_ms()
            day = time.strftime("%Y/%m/%d", time.gmtime(stamp / 1000))
            moment = time.strftime("%Y-%m-%d-%H-%M-%S", time.gmtime(stamp / 1000)) + f"-{stamp % 1000:03d}"
            key = f"{prefix.strip('/') or RECORDINGS_PREFIX}/{day}/{moment}_{self.transaction_id}_{leg.call_id}.wav"
            action.result["CallRecordingDestination"] = {"Type": "S3", "Location": f"{bucket}/{key}"}
            # done when the edge has opened the recording (media_done), or failed to
            self._recordings[leg.call_id] = "on"
            self._emit(cmd.CallRecording(leg.call_id, "start", action.values["track"], bucket, key,
                                         self._begin(action, leg)))
            return False
        self._emit(cmd.CallRecording(leg.call_id, operation))
        self._recordings[leg.call_id] = {"stop": "stopped", "pause": "paused", "resume": "on"}[operation]
        return True

    def _prompt(self, run: _Running, failure: bool) -> None:
        """Play (or speak) the GetDigits prompt, or its failure prompt."""
        v, call_id = run.action.values, run.leg.call_id
        run.phase = "failure" if failure else "prompt"
        if "speech" in v:
            self._emit(cmd.Speak(call_id, v["failure_speech" if failure else "speech"], run.token))
        elif failure:
            self._emit(cmd.PlayAudio(call_id, v["failure_bucket"], v["failure_key"], 1, run.token))
        else:
            self._emit(cmd.PlayAudio(call_id, v["bucket"], v["key"], 1, run.token))

    def _collector_media_done(self, run: _Running) -> None:
        if run.phase == "prompt":
            run.phase = "listen"
            run.collector.listen(self.clock())
        elif run.phase == "failure":
            if run.collector.attempt > run.collector.attempts:
                self._fail_running(*DIGITS_ERROR)
            else:
                self._prompt(run, failure=False)

    def _collector_outcome(self, run: _Running, outcome: str) -> None:
        if outcome == SUCCESS:
            run.action.result["ReceivedDigits"] = run.collector.received
            self._complete()
        elif outcome in (RETRY, FAILED):
            self._prompt(run, failure=True)

    def _finish_recording(self, run: _Running, terminator: str | None) -> None:
        v = run.action.values
        self._emit(cmd.StopRecordAudio(run.leg.call_id, run.token))
        run.action.result["RecordingDestination"] = {"Type": "S3", "BucketName": v["bucket"],
                                                     "Key": v["key"]}
        if terminator is not None:
            run.action.result["RecordingTerminatorUsed"] = terminator
        self._complete()

    def _complete(self) -> None:
        action, self._run = self._run.action, None
        self._run_actions(completed=action)

    def _fail_running(self, error_type: str, message: str) -> None:
        action, self._run = self._run.action, None
        self._fail(action, error_type, message)

    def _fail(self, action: ParsedAction, error_type: str, message: str) -> None:
        """ACTION_FAILED for `action`; the rest of its list is cleared (sma-reference §1.6)."""
        self._pending_actions, self._list_running = [], False
        data = action.action_data()
        data["ErrorType"], data["ErrorMessage"] = error_type, message
        self._invoke(ACTION_FAILED, data)

    def _target_leg(self, action: ParsedAction) -> Leg:
        """The leg an action addresses: CallId, else ParticipantTag, else LEG-A (or the leg left)."""
        call_id = action.parameters.get("CallId")
        tag = action.parameters.get("ParticipantTag")
        if call_id:
            leg = self._leg(call_id)
        elif tag:
            leg = next((l for l in self.legs if l.participant_tag == tag), None)
        else:
            leg = next((l for l in self.legs if l.status == "Connected"), None)
        if leg is None or leg.status != "Connected":
            raise ActionFailure("InvalidActionParameter",
                                "CallId or ParticipantTag parameter for action is invalid.")
        return leg

    # ---- helpers ----------------------------------------------------------------------
    def _add_leg(self, leg: Leg) -> None:
        """A new participant takes the place of an ended one of the same tag: after a transfer
        `Participants` is LEG-A and the new LEG-B (take-back-and-transfer hangs up
        `Participants[1]` when the caller leaves)."""
        self.legs = [l for l in self.legs if not (l.participant_tag == leg.participant_tag
                                                  and l.status == "Disconnected")] + [leg]

    def _leg(self, call_id: str) -> Leg | None:
        return next((l for l in self.legs if l.call_id == call_id), None)

    def _connected(self) -> bool:
        return any(l.status == "Connected" for l in self.legs)

    def _settle(self) -> None:
        """Keep the answer deadline: an inbound leg that has not answered while nothing runs, is
        pending or is being asked is refused after 30 s ("the call attempt times out after 30
        seconds", sma-reference §1.2), whichever path left it so."""
        leg = self.legs[0] if self.legs else None
        idle = leg is not None and leg.direction == "Inbound" and not leg.answered \
            and leg.status == "Connected" and self._run is None and not self._pending_actions \
            and not self.busy
        if not idle:
            self._no_actions_deadline = None
        elif self._no_actions_deadline is None:
            self._no_actions_deadline = self.clock() + NO_ACTIONS_TIMEOUT_S

    def _check_end(self) -> None:
        if not self.ended and not self._connected() and not self.busy:
            self.ended = True
            self._emit(cmd.TransactionEnded(self.transaction_id))


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__
