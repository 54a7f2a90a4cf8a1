"""The actions of the service, one module each: their parameters, defaults, metadata, errors
and how they run (`base.py` says what an action is).

`parse_action` validates one action of a handler response into its `Action`; a problem
raises `ActionFailure` with the service's ErrorType and message (sma-reference §3).
"""
from __future__ import annotations

from .answer import Answer
from .base import Action, ActionFailure, Done, Failed, Run
from .call_and_bridge import CallAndBridge
from .call_recording import (PauseCallRecording, ResumeCallRecording, StartCallRecording,
                             StopCallRecording)
from .hangup import Hangup
from .join_chime_meeting import JoinChimeMeeting
from .modify_chime_meeting_attendees import ModifyChimeMeetingAttendees
from .pause import Pause
from .play_audio import PlayAudio
from .play_audio_and_get_digits import PlayAudioAndGetDigits
from .receive_digits import ReceiveDigits
from .record_audio import RecordAudio
from .send_digits import SendDigits
from .speak import Speak
from .speak_and_get_digits import SpeakAndGetDigits
from .start_bot_conversation import StartBotConversation
from .voice_focus import VoiceFocus

__all__ = ["ACTIONS", "DEFAULT_INTERRUPTIBLE", "ERROR_TYPES", "Action", "ActionFailure", "Done",
           "Failed", "Run", "parse_action"]

#: Every action type the service documents (sma-reference §3.0), plus the undocumented Answer.
ACTIONS: dict[str, type[Action]] = {a.TYPE: a for a in (
    Answer, CallAndBridge, Hangup, JoinChimeMeeting, ModifyChimeMeetingAttendees, Pause,
    PlayAudio, PlayAudioAndGetDigits, ReceiveDigits, RecordAudio, SendDigits, Speak,
    SpeakAndGetDigits, StartBotConversation, VoiceFocus, StartCallRecording, StopCallRecording,
    PauseCallRecording, ResumeCallRecording)}
#: The actions an update interrupts unless the SMA says otherwise.
DEFAULT_INTERRUPTIBLE = frozenset(t for t, a in ACTIONS.items() if a.INTERRUPTIBLE)
#: The ErrorTypes ACTION_FAILED can carry (sma-reference §3.0) and what produces each here
#: (None: the emulator never produces it); which actions give each is their `ERRORS`.
ERROR_TYPES = {
    "InvalidActionParameter": "a parameter out of range, a bad CallId/ParticipantTag, a state that forbids the action",
    "MissingRequiredActionParameter": "a required parameter absent",
    "InvalidAudioSource": "a missing or non-PCM-WAV object, or an AudioSource without bucket or key",
    "ActionExecutionThrottled": "more than 5 VoiceFocus actions per second in one account",
    "ResourceNotFound": "StartBotConversation with a BotAliasArn the profile does not script",
    "CallNotAnswered": "CallAndBridge's LEG-B rejected the call or did not answer in CallTimeoutSeconds",
    "InvalidDigitsReceived": "PlayAudioAndGetDigits/SpeakAndGetDigits out of attempts (the real ErrorType is undocumented)",
    "SystemException": "a media fault in the stub (e.g. espeak-ng failed)",
    "AccessDenied": None,
    "ResourceAccessDenied": None,
}


def parse_action(action: dict) -> Action:
    """Validate one action object of a handler response (its Type is a known one)."""
    return ACTIONS[action["Type"]].parse(dict(action.get("Parameters") or {}))
