"""The actions of the service: which exist, their parameters, defaults and interruptibility.

A handler's action is validated here into a `ParsedAction`: the parameters as the success
event echoes them (defaults filled in), numeric strings accepted, unknown extra parameters
kept. Failures carry the service's ErrorType and message.
"""
from __future__ import annotations

from dataclasses import dataclass, field

#: Every action type the service documents (sma-reference §3.0), plus the undocumented Answer.
KNOWN_ACTIONS = (
    "Answer", "CallAndBridge", "Hangup", "JoinChimeMeeting", "ModifyChimeMeetingAttendees",
    "Pause", "PlayAudio", "PlayAudioAndGetDigits", "ReceiveDigits", "RecordAudio", "SendDigits",
    "Speak", "SpeakAndGetDigits", "StartBotConversation", "VoiceFocus", "StartCallRecording",
    "StopCallRecording", "PauseCallRecording", "ResumeCallRecording",
)
#: Actions whose first use on an unanswered inbound leg answers it.
ANSWERING_ACTIONS = frozenset({"Answer", "Pause", "PlayAudio", "PlayAudioAndGetDigits", "RecordAudio",
                               "Speak", "SpeakAndGetDigits", "ReceiveDigits", "SendDigits",
                               "StartBotConversation", "VoiceFocus", "StartCallRecording"})
HANGUP_CODES = (0, 480, 486)


class ActionFailure(Exception):
    """The action cannot run; reported as ACTION_FAILED with `error_type` and `message`."""

    def __init__(self, error_type: str, message: str):
        super().__init__(message)
        self.error_type, self.message = error_type, message


@dataclass
class ParsedAction:
    """A validated action: its type, the echoed parameters and the values the engine uses."""

    type: str
    parameters: dict
    values: dict = field(default_factory=dict)

    def action_data(self) -> dict:
        return {"Type": self.type, "Parameters": self.parameters}


def as_int(params: dict, name: str, default: int | None = None, minimum: int = 1,
           maximum: int | None = None) -> int | None:
    """Read an integer parameter that may come as a number or a numeric string."""
    raw = params.get(name)
    if raw is None or raw == "":
        if default is None:
            raise ActionFailure("MissingRequiredActionParameter", f"{name} is a required parameter.")
        return default
    try:
        value = int(raw) if not isinstance(raw, bool) else None
    except (TypeError, ValueError):
        value = None
    if value is None or value < minimum or (maximum is not None and value > maximum):
        raise ActionFailure("InvalidActionParameter", f"{name} parameter value is invalid.")
    return value


def _audio_source(params: dict, name: str) -> tuple[str, str]:
    src = params.get(name)
    if not isinstance(src, dict):
        raise ActionFailure("MissingRequiredActionParameter", f"{name} is a required parameter.")
    if src.get("Type", "S3") != "S3" or not src.get("BucketName") or not src.get("Key"):
        raise ActionFailure("InvalidAudioSource", "Audio Source parameter value is invalid.")
    return str(src["BucketName"]), str(src["Key"])


def parse_action(action: dict) -> ParsedAction:
    """Validate one action object of a handler response (its Type is already known)."""
    kind = action["Type"]
    params = dict(action.get("Parameters") or {})
    parsed = ParsedAction(kind, params)
    if kind == "PlayAudio":
        parsed.values["bucket"], parsed.values["key"] = _audio_source(params, "AudioSource")
        parsed.values["repeat"] = as_int(params, "Repeat", default=1)
        params.setdefault("Repeat", 1)
    elif kind == "Pause":
        parsed.values["duration_ms"] = as_int(params, "DurationInMilliseconds")
    elif kind == "Hangup":
        code = as_int(params, "SipResponseCode", default=0, minimum=0)
        if code not in HANGUP_CODES:
            raise ActionFailure("InvalidActionParameter", "SipResponseCode parameter value is invalid.")
        parsed.values["sip_code"] = code
        params.setdefault("SipResponseCode", "0")
    return parsed
