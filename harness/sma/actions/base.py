"""What every action is: a frozen dataclass parsed from its parameters, with its metadata, and
the run object that carries it while it takes time.

An action module defines one `Action` subclass: its documented `PARAMETERS`, whether using
it on an unanswered inbound leg `ANSWERS` it, whether an update `INTERRUPTIBLE`s it by default,
whether it `REPORTS` its result as soon as it succeeds (wherever it stands in its list), its
`EMULATION` here and the ACTION_FAILED `ERRORS` it can give; `parse(params)` validates the
parameters (ActionFailure with the service's ErrorType and message) and `start(ctx, leg)`
begins it: `Done` at once, or a `Run` whose `on_media_done`, `on_digit`, `on_timer` and
`on_leg_*` say when it is over.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from .. import commands as cmd
from ..errors import EventError
from ..model import Leg, Meeting, SipMediaApplication


#: What every action can fail with: a CallId or ParticipantTag that names no connected leg, a
#: parameter out of range, a call state that forbids it.
COMMON_ERRORS = ("InvalidActionParameter",)


class ActionFailure(EventError):
    """The action cannot run; reported as ACTION_FAILED with `error_type` and `message`."""


def missing(name: str) -> ActionFailure:
    return ActionFailure("MissingRequiredActionParameter", f"{name} is a required parameter.")


def invalid(name: str) -> ActionFailure:
    return ActionFailure("InvalidActionParameter", f"{name} parameter value is invalid.")


class Context(Protocol):
    """What an action may use of its transaction (`engine.CallTransaction` is one)."""

    sma: SipMediaApplication
    transaction_id: str
    legs: list[Leg]
    meeting: Meeting | None
    recordings: dict[str, str]  # CallId -> "on", "paused" or "stopped"
    clock: Callable[[], float]
    wall_ms: Callable[[], int]
    action_allowed: Callable[[str], bool]

    def emit(self, command: object) -> None: ...

    def new_token(self) -> int: ...

    def answer(self, leg: Leg) -> None: ...

    def add_leg(self, leg: Leg) -> None: ...

    def listen(self, call_id: str, listener) -> None: ...


@dataclass(frozen=True)
class Done:
    """The action succeeded: `result` are the fields its ACTION_SUCCESSFUL adds (ReceivedDigits,
    RecordingDestination, ...); `ends_list` when the rest of its list goes with it (a Hangup
    of the last leg)."""

    result: dict = field(default_factory=dict)
    ends_list: bool = False


@dataclass(frozen=True)
class Failed:
    """The action failed with the service's ErrorType and message."""

    error_type: str
    message: str


#: A run that ends without a word: its leg is gone.
DROPPED = "dropped"
Outcome = Done | Failed | None  # None: still running


@dataclass(frozen=True)
class Action:
    """A validated action; `parameters` are its Parameters as its events echo them (documented
    defaults filled in, unknown extras kept)."""

    TYPE: ClassVar[str]
    PARAMETERS: ClassVar[tuple[str, ...]]
    ANSWERS: ClassVar[bool] = True
    INTERRUPTIBLE: ClassVar[bool] = False
    REPORTS: ClassVar[bool] = False
    EMULATION: ClassVar[str] = ""
    ERRORS: ClassVar[tuple[str, ...]] = ()  # its ACTION_FAILED ErrorTypes beyond COMMON_ERRORS

    parameters: dict

    @classmethod
    def parse(cls, params: dict) -> "Action":
        raise NotImplementedError

    def start(self, ctx: Context, leg: Leg) -> "Done | Run":
        """Begin on `leg` (answered already when the action answers); ActionFailure when the
        call's state forbids it."""
        return Done()

    def action_data(self, result: dict | None = None) -> dict:
        """The ActionData of its events, with the `result` fields of a success."""
        return {"Type": self.TYPE, "Parameters": self.parameters, **(result or {})}


class Run:
    """An action in progress on `leg`; `token` ties the media it started to it."""

    deadline: float | None = None  # when `on_timer` has work to do
    result: dict | None = None  # result fields known before the end (its failure carries them too)

    def __init__(self, action: Action, leg: Leg, token: int):
        self.action, self.leg, self.token = action, leg, token

    def on_media_done(self, ctx: Context, error: tuple[str, str] | None, result: dict | None) -> Outcome:
        """The media of `token` ended by itself, or could not start (`error`)."""
        return Failed(*error) if error is not None else Done()

    def takes_digit(self, digit: str) -> bool:
        """Whether a digit from its leg is for this action (else a ReceiveDigits listener's)."""
        return False

    def on_digit(self, ctx: Context, digit: str, now: float) -> Outcome:
        return None

    def on_timer(self, ctx: Context, now: float) -> Outcome:
        return None

    def on_leg_answered(self, ctx: Context, call_id: str) -> Outcome:
        """A leg it placed answered (None: not one of its legs)."""
        return None

    def on_leg_failed(self, ctx: Context, call_id: str) -> Outcome:
        """A leg it placed ended without answering (None: not one of its legs)."""
        return None

    def on_leg_ended(self, ctx: Context, leg: Leg, others_connected: bool) -> Done | str:
        """Its own leg ended, or the last one did: DROPPED, or Done to report after the
        leg's HANGUP."""
        return DROPPED

    def interrupt(self, ctx: Context) -> None:
        """An update's actions take its place: stop its media at once."""
        ctx.emit(cmd.StopMedia(self.leg.call_id))
