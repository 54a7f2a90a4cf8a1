"""The run objects several actions share: a playback that ends when its media does, and the
digit collection of PlayAudioAndGetDigits and SpeakAndGetDigits."""
from __future__ import annotations

from .. import commands as cmd
from ..model import Leg
from .base import Action, Context, Done, Failed, Outcome, Run
from .digits import SUCCESS, DigitCollector

#: The real ErrorType of a GetDigits action out of attempts is undocumented.
DIGITS_ERROR = ("InvalidDigitsReceived", "The digits received did not match the action's requirements.")


class Playback(Run):
    """Media that completes the action when it ends (a prompt, silence, speech, digits);
    a digit of `terminators` stops it early. `result` goes with its success."""

    def __init__(self, action: Action, leg: Leg, token: int, terminators: tuple[str, ...] = (),
                 result: dict | None = None):
        super().__init__(action, leg, token)
        self.terminators, self.result = terminators, result or {}

    def on_media_done(self, ctx: Context, error: tuple[str, str] | None, result: dict | None) -> Outcome:
        return Failed(*error) if error is not None else Done(self.result)

    def takes_digit(self, digit: str) -> bool:
        return digit in self.terminators

    def on_digit(self, ctx: Context, digit: str, now: float) -> Outcome:
        ctx.emit(cmd.StopMedia(self.leg.call_id))
        return Done(self.result)


class DigitCollection(Run):
    """A prompt, then digits until a terminator, the maximum or a timeout; a wrong entry
    plays the failure prompt and tries again, up to the action's attempts. The first digit
    stops the prompt (barge-in). The action gives its prompts: `prompt(call_id, token, failure)`."""

    def __init__(self, action: Action, leg: Leg, token: int, collector: DigitCollector):
        super().__init__(action, leg, token)
        self.collector = collector
        self.phase = ""  # prompt, listen, failure

    @property
    def deadline(self) -> float | None:
        return self.collector.deadline

    def prompt(self, ctx: Context, failure: bool) -> None:
        self.phase = "failure" if failure else "prompt"
        ctx.emit(self.action.prompt(self.leg.call_id, self.token, failure))

    def on_media_done(self, ctx: Context, error: tuple[str, str] | None, result: dict | None) -> Outcome:
        if error is not None:
            return Failed(*error)
        if self.phase == "prompt":
            self.phase = "listen"
            self.collector.listen(ctx.clock())
        elif self.phase == "failure":
            if self.collector.attempt > self.collector.attempts:
                return Failed(*DIGITS_ERROR)
            self.prompt(ctx, failure=False)
        return None

    def takes_digit(self, digit: str) -> bool:
        return self.phase in ("prompt", "listen")

    def on_digit(self, ctx: Context, digit: str, now: float) -> Outcome:
        if self.phase == "prompt":  # barge-in: the first digit stops the prompt
            self.phase = "listen"
            ctx.emit(cmd.StopMedia(self.leg.call_id))
        return self._outcome(ctx, self.collector.add(digit, now))

    def on_timer(self, ctx: Context, now: float) -> Outcome:
        return self._outcome(ctx, self.collector.expire(now))

    def _outcome(self, ctx: Context, outcome: str | None) -> Outcome:
        if outcome == SUCCESS:
            return Done({"ReceivedDigits": self.collector.received})
        if outcome is not None:  # RETRY or FAILED: the failure prompt, then the next attempt or the end
            self.prompt(ctx, failure=True)
        return None
