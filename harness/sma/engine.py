"""The SMA engine for one transaction (one call and its legs), sans-IO.

It consumes what happens (a call arrived, the handler answered, a playback ended, a leg hung
up, an update was requested, time passed) and emits commands (`harness.sma.commands`). Handler
invocations are serialized per transaction and numbered by `Sequence`. The list, failure,
interruption and hangup rules are those of the reference (`docs/fidelity.md` records the
choices where it is silent).
"""
from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from . import commands as cmd
from .actions import (ANSWERING_ACTIONS, KNOWN_ACTIONS, ActionFailure, ParsedAction,
                      parse_action)
from .model import Leg, SipMediaApplication

MAX_ACTIONS = 10
MAX_INVOCATIONS = 1000
MAX_ATTRIBUTES = 100
MAX_ATTRIBUTES_BYTES = 20 * 1024
NO_ACTIONS_TIMEOUT_S = 30.0

NEW_INBOUND_CALL = "NEW_INBOUND_CALL"
ACTION_SUCCESSFUL = "ACTION_SUCCESSFUL"
ACTION_FAILED = "ACTION_FAILED"
ACTION_INTERRUPTED = "ACTION_INTERRUPTED"
HANGUP = "HANGUP"
INVALID_LAMBDA_RESPONSE = "INVALID_LAMBDA_RESPONSE"
CALL_UPDATE_REQUESTED = "CALL_UPDATE_REQUESTED"


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


class CallTransaction:
    """One TransactionId: its legs, attributes, action list and handler invocations."""

    def __init__(self, sma: SipMediaApplication, transaction_id: str, sip_rule_id: str | None,
                 clock: Callable[[], float], wall_ms: Callable[[], int]):
        self.sma, self.transaction_id, self.sip_rule_id = sma, transaction_id, sip_rule_id
        self.clock, self.wall_ms = clock, wall_ms
        self.legs: list[Leg] = []
        self.sequence = 0
        self.attributes: dict[str, str] = {}
        self.ended = False
        self._pending_actions: list[dict] = []
        self._current: ParsedAction | None = None
        self._current_leg: Leg | None = None
        self._token = 0
        self._list_running = False  # a handler's list is running; it ends in ACTION_SUCCESSFUL
        self._answered: set[str] = set()
        self._queue: deque[_Pending] = deque()
        self._outstanding: _Pending | None = None
        self._commands: list[object] = []
        self._no_actions_deadline: float | None = None

    # ---- inputs -----------------------------------------------------------------------
    def inbound_call(self, leg: Leg) -> None:
        """A new inbound leg (LEG-A) arrived through a SIP rule."""
        self.legs.append(leg)
        self._emit(cmd.Ring(leg.call_id))
        self._invoke(NEW_INBOUND_CALL)

    def handler_result(self, sequence: int, response: object, failed: str | None = None) -> None:
        """The handler answered invocation `sequence` (or failed after its retries: `failed`)."""
        pending = self._outstanding
        if pending is None or sequence != self.sequence:
            return
        self._outstanding = None
        if failed is not None:
            self._on_invocation_failed(pending)
        elif not pending.ignore or pending.event_type == HANGUP and self._connected():
            try:
                self._apply_response(pending.event_type, response)
            except InvalidResponse as exc:
                self._invoke(INVALID_LAMBDA_RESPONSE,
                             extra={"ErrorType": exc.error_type, "ErrorMessage": exc.message})
        self._pump()
        self._check_end()

    def media_done(self, token: int, error: tuple[str, str] | None = None) -> None:
        """The playback started with `token` ended by itself, or could not start (`error`)."""
        if self._current is None or token != self._token:
            return  # stale: the action was interrupted or its leg is gone
        action, self._current = self._current, None
        if error is not None:
            self._fail(action, *error)
        else:
            self._run_actions(completed=action)

    def leg_ended(self, call_id: str, sip_code: int = 0) -> None:
        """A leg hung up (far end BYE, our Hangup action, or a failure)."""
        leg = self._leg_by_call_id(call_id)
        if leg is None or leg.status == "Disconnected":
            return
        leg.status = "Disconnected"
        if self._current_leg is leg or not self._connected():
            self._current = None
        if not self._connected():
            self._pending_actions, self._list_running = [], False
            self._no_actions_deadline = None
        self._invoke(HANGUP, {"Type": "Hangup", "Parameters": {
            "SipResponseCode": sip_code, "CallId": leg.call_id,
            "ParticipantTag": leg.participant_tag}}, ignore=True)
        self._check_end()

    def update_requested(self, arguments: dict[str, str]) -> None:
        """UpdateSipMediaApplicationCall was accepted for this transaction."""
        self._invoke(CALL_UPDATE_REQUESTED, {"Type": "CallUpdateRequest",
                                             "Parameters": {"Arguments": dict(arguments)}})

    def handle_timers(self, now: float) -> None:
        """Fire the timers due at `now` (the 30 s wait for actions on a new inbound call)."""
        if self._no_actions_deadline is not None and now >= self._no_actions_deadline:
            self._no_actions_deadline = None
            leg = self.legs[0]
            if leg.call_id not in self._answered and leg.status == "Connected":
                self._emit(cmd.HangupLeg(leg.call_id, 480))

    def next_deadline(self) -> float | None:
        return self._no_actions_deadline

    # ---- outputs ----------------------------------------------------------------------
    def take_commands(self) -> list[object]:
        out, self._commands = self._commands, []
        return out

    @property
    def busy(self) -> bool:
        """True while an invocation is outstanding or queued."""
        return self._outstanding is not None or bool(self._queue)

    # ---- invocations ------------------------------------------------------------------
    def _emit(self, command: object) -> None:
        self._commands.append(command)

    def _invoke(self, event_type: str, action_data: dict | None = None, ignore: bool = False,
                extra: dict | None = None) -> None:
        self._queue.append(_Pending(event_type, action_data, ignore, extra))
        self._pump()

    def _pump(self) -> None:
        if self._outstanding is not None or not self._queue:
            return
        if self.sequence >= MAX_INVOCATIONS:
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

    def _on_invocation_failed(self, pending: _Pending) -> None:
        """Retries ran out: the call ends with 480 (sma-reference §5.1)."""
        if pending.ignore:
            return
        for leg in self.legs:
            if leg.status == "Connected":
                self._emit(cmd.HangupLeg(leg.call_id, 480))

    # ---- responses --------------------------------------------------------------------
    def _apply_response(self, event_type: str, response: object) -> None:
        if not isinstance(response, dict):
            raise InvalidResponse("InvalidResponse",
                                  f"The Lambda response is not a JSON object: {type(response).__name__}")
        if response.get("SchemaVersion") != "1.0":
            raise InvalidResponse("InvalidSchemaVersion",
                                  f"SchemaVersion {response.get('SchemaVersion')!r} is not supported; expected \"1.0\"")
        actions = response.get("Actions")
        if actions is not None:
            self._check_actions(actions)
        if response.get("TransactionAttributes") is not None:
            self.attributes = self._check_attributes(response["TransactionAttributes"])
        if event_type == NEW_INBOUND_CALL and not actions:
            # "the call attempt times out after 30 seconds" (sma-reference §1.2)
            self._no_actions_deadline = self.clock() + NO_ACTIONS_TIMEOUT_S
        elif actions is not None:
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
        self._no_actions_deadline = None
        self._pending_actions = list(actions)
        self._list_running = bool(actions)
        current = self._current
        if current is not None and event_type == CALL_UPDATE_REQUESTED \
                and current.type in self.sma.interruptible:
            self._current = None
            self._emit(cmd.StopMedia(self._current_leg.call_id))
            self._run_actions()
            self._invoke(ACTION_INTERRUPTED, current.action_data(), ignore=True)
        elif current is None:
            self._run_actions()

    # ---- actions ----------------------------------------------------------------------
    def _run_actions(self, completed: ParsedAction | None = None) -> None:
        """Start pending actions until one takes time; report the list when it completes.

        `completed` is the action that just finished, the last one done so far.
        """
        last_done = completed
        while self._current is None and self._pending_actions:
            raw = self._pending_actions.pop(0)
            try:
                action = parse_action(raw)
                leg = self._target_leg(action)
            except ActionFailure as exc:
                self._fail(ParsedAction(raw["Type"], dict(raw.get("Parameters") or {})),
                           exc.error_type, exc.message)
                return
            if action.type in ANSWERING_ACTIONS and leg.call_id not in self._answered:
                self._answered.add(leg.call_id)
                self._emit(cmd.Answer(leg.call_id))
            last_done = action
            self._start(action, leg)
        if self._current is None and last_done is not None and self._list_running \
                and self._connected():
            self._list_running = False
            self._invoke(ACTION_SUCCESSFUL, last_done.action_data())

    def _start(self, action: ParsedAction, leg: Leg) -> None:
        if action.type == "PlayAudio":
            self._token += 1
            self._current, self._current_leg = action, leg
            self._emit(cmd.PlayAudio(leg.call_id, action.values["bucket"], action.values["key"],
                                     action.values["repeat"], self._token))
        elif action.type == "Pause":
            self._token += 1
            self._current, self._current_leg = action, leg
            self._emit(cmd.PlaySilence(leg.call_id, action.values["duration_ms"], self._token))
        elif action.type == "Hangup":
            if leg.call_id not in self._answered:
                self._answered.add(leg.call_id)  # a final response, never answered
            self._emit(cmd.HangupLeg(leg.call_id, action.values["sip_code"]))
            leg_is_last = sum(1 for l in self.legs if l.status == "Connected") <= 1
            if leg_is_last:
                self._pending_actions, self._list_running = [], False
        elif action.type == "Answer":
            pass
        else:
            self._fail(action, "SystemException",
                       f"{action.type} is not emulated by this version of sip-harness")

    def _fail(self, action: ParsedAction, error_type: str, message: str) -> None:
        """ACTION_FAILED for `action`; the rest of its list is cleared (sma-reference §1.6)."""
        self._pending_actions, self._list_running = [], False
        data = action.action_data()
        data["ErrorType"], data["ErrorMessage"] = error_type, message
        self._invoke(ACTION_FAILED, data)

    def _target_leg(self, action: ParsedAction) -> Leg:
        call_id = action.parameters.get("CallId")
        tag = action.parameters.get("ParticipantTag")
        if call_id:
            leg = self._leg_by_call_id(call_id)
        elif tag:
            leg = next((l for l in self.legs if l.participant_tag == tag), None)
        else:
            leg = self.legs[0] if self.legs else None
        if leg is None or leg.status != "Connected":
            raise ActionFailure("InvalidActionParameter",
                                "CallId or ParticipantTag parameter for action is invalid.")
        return leg

    # ---- helpers ----------------------------------------------------------------------
    def _leg_by_call_id(self, call_id: str) -> Leg | None:
        return next((l for l in self.legs if l.call_id == call_id), None)

    def _connected(self) -> bool:
        return any(l.status == "Connected" for l in self.legs)

    def _check_end(self) -> None:
        if not self.ended and not self._connected() and not self.busy:
            self.ended = True
            self._emit(cmd.TransactionEnded(self.transaction_id))
