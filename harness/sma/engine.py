"""The SMA engine for one transaction (one call and its legs), sans-IO.

It consumes what happens (a call arrived, the handler answered, media ended, a digit came, a
leg answered or hung up, an update was requested, time passed) and emits commands
(`harness.sma.commands`). Handler invocations are serialized per transaction and numbered by
`Sequence`. The list, failure, interruption and hangup rules are those of the reference;
`docs/fidelity.md` records the choices where it is silent.
"""
from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable

from . import commands as cmd
from . import events as ev
from . import responses
from .actions import DEFAULT_INTERRUPTIBLE, Action, ActionFailure, Failed, Run, parse_action
from .actions.base import DROPPED, Outcome
from .actions.digits import DigitListener
from .model import Leg, Meeting, SipMediaApplication

MAX_INVOCATIONS = 1000
NO_ACTIONS_TIMEOUT_S = 30.0


def _input(method):
    """An input of the engine: after it, the transaction's standing timers are brought up to date."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        result = method(self, *args, **kwargs)
        self._settle()
        return result
    return wrapper


class CallTransaction:
    """One TransactionId: its legs, attributes, action list and handler invocations.

    It is the `actions.base.Context` its actions run in: they start on it and their run
    objects tell it when they are over; the list, queue, interruption and end rules are its own.
    """

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
        self._run: Run | None = None
        self._tokens = 0
        self._list_running = False
        self._listeners: dict[str, DigitListener] = {}
        self.recordings: dict[str, str] = {}  # CallId -> on, paused, stopped
        self.meeting: Meeting | None = None
        self._ringing_reported = False
        self._queue: deque[ev.Event] = deque()
        self._outstanding: ev.Event | None = None
        self._commands: list[object] = []
        self._no_actions_deadline: float | None = None

    # ---- inputs: the call -------------------------------------------------------------
    @_input
    def inbound_call(self, leg: Leg) -> None:
        """A new inbound leg (LEG-A) arrived through a SIP rule."""
        self.legs.append(leg)
        self.emit(cmd.Ring(leg.call_id))
        self._invoke(ev.new_inbound_call())

    @_input
    def outbound_call(self, leg: Leg, arguments: dict[str, str], sip_headers: dict[str, str]) -> None:
        """CreateSipMediaApplicationCall: place LEG-A and tell the handler (§4.3)."""
        self.legs.append(leg)
        self.emit(cmd.PlaceCall(leg, "PSTN", leg.to, sip_headers=dict(sip_headers)))
        self._invoke(ev.new_outbound_call(arguments))

    @_input
    def leg_ringing(self, call_id: str) -> None:
        """An outbound leg is ringing (180/183)."""
        if self.legs and call_id == self.legs[0].call_id and not self._ringing_reported:
            self._ringing_reported = True
            self._invoke(ev.ringing())

    @_input
    def leg_answered(self, call_id: str) -> None:
        """An outbound leg answered (200 OK)."""
        run = self._run
        outcome = run.on_leg_answered(self, call_id) if run is not None else None
        if outcome is not None:
            self._conclude(run, outcome)
        elif self.legs and call_id == self.legs[0].call_id and not self.legs[0].answered:
            self.legs[0].answered = True
            self._invoke(ev.call_answered())

    @_input
    def leg_failed(self, call_id: str, sip_code: int) -> None:
        """An outbound leg ended without answering (busy, no answer, error)."""
        run = self._run
        outcome = run.on_leg_failed(self, call_id) if run is not None else None
        if outcome is not None:
            self._conclude(run, outcome)
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
        meeting = self.meeting
        if meeting is not None and not any(l.status == "Connected" for l in self.legs
                                           if l is not meeting.leg):
            meeting.leg.status = "Disconnected"  # the meeting leg goes with the last real leg
            self.meeting = None
        run, finished = self._run, None
        # the run of this leg (or of any, once no leg is left) goes with it, or, as a Hangup of
        # this leg while another stays, completes after the HANGUP event (hangup.md)
        if run is not None and (run.leg is leg or not self._connected()):
            outcome = run.on_leg_ended(self, leg, self._connected())
            if outcome is DROPPED:
                self._run = None
            else:
                finished = outcome
        if not self._connected():
            self._pending_actions, self._list_running = [], False
        self._invoke(ev.hangup(leg, sip_code))
        if finished is not None:
            self._conclude(run, finished)
        self._check_end()

    @_input
    def update_requested(self, arguments: dict[str, str]) -> None:
        """UpdateSipMediaApplicationCall was accepted for this transaction."""
        self._invoke(ev.call_update_requested(arguments))

    # ---- inputs: media and digits -----------------------------------------------------
    @_input
    def media_done(self, token: int, error: tuple[str, str] | None = None,
                   result: dict | None = None) -> None:
        """The media started with `token` ended by itself, or could not start (`error`)."""
        run = self._run
        if run is None or token != run.token:
            return  # stale: the action was interrupted, or its leg is gone
        self._conclude(run, run.on_media_done(self, error, result))

    @_input
    def digit_received(self, call_id: str, digit: str) -> None:
        """A DTMF digit from a leg (RFC 4733 or SIP INFO)."""
        now = self.clock()
        run = self._run
        if run is not None and run.leg.call_id == call_id and run.takes_digit(digit):
            self._conclude(run, run.on_digit(self, digit, now))
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
                self.emit(cmd.HangupLeg(leg.call_id, 480))
        run = self._run
        if run is not None and run.deadline is not None and now >= run.deadline:
            self._conclude(run, run.on_timer(self, now))
        for listener in list(self._listeners.values()):
            digits = listener.expire(now)
            if digits:
                self._invoke(ev.digits_received(listener.action_data, digits))

    def next_deadline(self) -> float | None:
        """The earliest time `handle_timers` has work to do, or None."""
        times = [self._no_actions_deadline] + [l.next_deadline() for l in self._listeners.values()]
        if self._run is not None:
            times.append(self._run.deadline)
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
    def _invoke(self, event: ev.Event) -> None:
        """Queue an invocation. Once no leg is connected the transaction is over: only the
        HANGUP of its last leg is still made, nothing after it."""
        if not self._connected() and not event.rules.after_last_leg:
            return
        self._queue.append(event)
        self._pump()

    def _pump(self) -> None:
        if self._outstanding is not None or not self._queue:
            return
        if self.invocations_exhausted:
            self._queue.clear()
            for leg in self.legs:
                if leg.status == "Connected":
                    self.emit(cmd.HangupLeg(leg.call_id, 480))
            return
        event = self._queue.popleft()
        self.sequence += 1
        self._outstanding = event
        details = ev.call_details(self.transaction_id, self.attributes, self.sma, self.sip_rule_id, self.legs)
        self.emit(cmd.Invoke(self.transaction_id, self.sequence, ev.render(event, self.sequence, details),
                             event.rules.informational))

    @_input
    def handler_result(self, sequence: int, response: object, failed: str | None = None) -> None:
        """The handler answered invocation `sequence` (or failed after its retries: `failed`)."""
        event = self._outstanding
        if event is None or sequence != self.sequence:
            return
        self._outstanding = None
        if failed is not None:
            self._on_invocation_failed(event)
        elif not self._connected() or not event.rules.runs_actions:
            kept = responses.kept_attributes(response)  # informational, or the transaction is over
            if kept is not None:
                self.attributes = kept
        else:
            try:
                checked = responses.check(response)
            except responses.InvalidResponse as exc:
                self._invoke(ev.invalid_lambda_response(exc.error_type, exc.message))
            else:
                if checked.attributes is not None:
                    self.attributes = checked.attributes
                if checked.actions is not None:
                    self._replace_actions(event.type, checked.actions)
        self._pump()
        self._check_end()

    def _on_invocation_failed(self, event: ev.Event) -> None:
        """Retries ran out: the next SMA of the SIP rule, else the call ends with 480 (§5.1)."""
        if event.type == ev.NEW_INBOUND_CALL and self.fallbacks:
            self.sma = self.fallbacks.pop(0)
            self._invoke(ev.new_inbound_call())
            return
        if event.rules.informational:
            return
        for leg in self.legs:
            if leg.status == "Connected":
                self.emit(cmd.HangupLeg(leg.call_id, 480))

    def _replace_actions(self, event_type: str, actions: list[dict]) -> None:
        """Replace every action after the current one; an update interrupts an interruptible one."""
        self._pending_actions = list(actions)
        self._list_running = bool(actions)
        run = self._run
        if run is not None and event_type == ev.CALL_UPDATE_REQUESTED and run.action.TYPE in self.interruptible:
            self._run = None
            run.interrupt(self)
            self._run_actions()
            self._invoke(ev.action_interrupted(run.action.action_data(run.result)))
        elif run is None:
            self._run_actions()

    @property
    def interruptible(self) -> frozenset[str]:
        """The action types an update interrupts: the SMA's choice, else each action's default."""
        return self.sma.interruptible if self.sma.interruptible is not None else DEFAULT_INTERRUPTIBLE

    # ---- running actions --------------------------------------------------------------
    def _run_actions(self, completed: tuple[Action, dict] | None = None) -> None:
        """Start pending actions until one takes time; report the list when it completes.

        `completed` is the action that just finished, with its result. One ACTION_SUCCESSFUL
        reports a whole list, with its last action (use-case-2.md); an action whose result the
        function needs (`Action.REPORTS`) reports as soon as it succeeds, wherever it stands in
        its list, and the rest of the list goes on (docs/fidelity.md, "Results reported mid-list").
        """
        last_done = self._done(completed)
        while self._run is None and self._pending_actions:
            raw = self._pending_actions.pop(0)
            try:
                action = parse_action(raw)
                leg = self._target_leg(action)
                if action.ANSWERS:
                    self.answer(leg)
                started = action.start(self, leg)
            except ActionFailure as exc:
                self._fail({"Type": raw["Type"], "Parameters": dict(raw.get("Parameters") or {})},
                           exc.error_type, exc.message)
                return
            if isinstance(started, Run):
                self._run = started
                continue
            if started.ends_list:
                self._pending_actions, self._list_running = [], False
            last_done = self._done((action, started.result)) or last_done
        if self._run is None and last_done is not None and self._list_running and self._connected():
            self._list_running = False
            self._invoke(ev.action_successful(last_done))

    def _done(self, completed: tuple[Action, dict] | None) -> dict | None:
        """An action succeeded: a reporting action that does not end a running list reports now
        (and is then not the list's last action to report); any other's ActionData is returned
        as the last action done."""
        if completed is None:
            return None
        action, result = completed
        data = action.action_data(result)
        if action.REPORTS and (self._pending_actions or not self._list_running):
            self._invoke(ev.action_successful(data))
            return None
        return data

    def _conclude(self, run: Run, outcome: Outcome) -> None:
        """What a run object said about its action: still running (None), done or failed."""
        if outcome is None:
            return
        self._run = None
        if isinstance(outcome, Failed):
            self._fail(run.action.action_data(run.result), outcome.error_type, outcome.message)
        else:
            self._run_actions(completed=(run.action, outcome.result))

    def _fail(self, action_data: dict, error_type: str, message: str) -> None:
        """ACTION_FAILED for the action of `action_data`; the rest of its list is cleared
        (sma-reference §1.6)."""
        self._pending_actions, self._list_running = [], False
        self._invoke(ev.action_failed(action_data, error_type, message))

    def _target_leg(self, action: Action) -> Leg:
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

    # ---- what actions may use (actions.base.Context) ---------------------------------
    def emit(self, command: object) -> None:
        self._commands.append(command)

    def new_token(self) -> int:
        """A token for the media of a new run, so a stale end of earlier media is told apart."""
        self._tokens += 1
        return self._tokens

    def answer(self, leg: Leg) -> None:
        """Answer `leg` if it has not answered yet (200 OK with our SDP)."""
        if not leg.answered:
            leg.answered = True
            self.emit(cmd.Answer(leg.call_id))

    def listen(self, call_id: str, listener: DigitListener) -> None:
        """Arm (or replace) the ReceiveDigits listener of a leg."""
        self._listeners[call_id] = listener

    def add_leg(self, leg: Leg) -> None:
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
            self.emit(cmd.TransactionEnded(self.transaction_id))

