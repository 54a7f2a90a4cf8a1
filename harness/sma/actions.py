"""The actions of the service: which exist, their parameters, defaults and errors.

`parse_action` validates one action of a handler response into a `ParsedAction`: the
parameters as the success event echoes them (documented defaults filled in, numeric strings
accepted, unknown extra parameters kept) and typed `values` for the engine. A problem raises
`ActionFailure` with the service's ErrorType and message (sma-reference §3).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from .buckets import safe_key, valid_bucket_name
from .phone_numbers import is_e164
from .sip_headers import InvalidSipHeaders, check_sip_headers

#: Every action type the service documents (sma-reference §3.0), plus the undocumented Answer.
KNOWN_ACTIONS = (
    "Answer", "CallAndBridge", "Hangup", "JoinChimeMeeting", "ModifyChimeMeetingAttendees",
    "Pause", "PlayAudio", "PlayAudioAndGetDigits", "ReceiveDigits", "RecordAudio", "SendDigits",
    "Speak", "SpeakAndGetDigits", "StartBotConversation", "VoiceFocus", "StartCallRecording",
    "StopCallRecording", "PauseCallRecording", "ResumeCallRecording",
)
#: The documented parameters of each action (sma-reference §3), for docs/coverage.md.
PARAMETERS = {
    "Answer": ("CallId", "ParticipantTag"),
    "CallAndBridge": ("CallTimeoutSeconds", "CallerIdNumber", "Endpoints", "RingbackTone", "SipHeaders"),
    "Hangup": ("CallId", "ParticipantTag", "SipResponseCode"),
    "JoinChimeMeeting": ("JoinToken", "MeetingId", "CallId", "ParticipantTag"),
    "ModifyChimeMeetingAttendees": ("Operation", "MeetingId", "AttendeeList", "CallId", "ParticipantTag"),
    "Pause": ("DurationInMilliseconds", "CallId", "ParticipantTag"),
    "PlayAudio": ("AudioSource", "Repeat", "PlaybackTerminators", "CallId", "ParticipantTag"),
    "PlayAudioAndGetDigits": ("AudioSource", "FailureAudioSource", "InputDigitsRegex", "MinNumberOfDigits",
                              "MaxNumberOfDigits", "TerminatorDigits", "InBetweenDigitsDurationInMilliseconds",
                              "Repeat", "RepeatDurationInMilliseconds", "CallId", "ParticipantTag"),
    "ReceiveDigits": ("InputDigitsRegex", "InBetweenDigitsDurationInMilliseconds",
                      "FlushDigitsDurationInMilliseconds", "CallId", "ParticipantTag"),
    "RecordAudio": ("DurationInSeconds", "SilenceDurationInSeconds", "SilenceThreshold",
                    "RecordingTerminators", "RecordingDestination", "CallId", "ParticipantTag"),
    "SendDigits": ("CallId", "Digits", "ToneDurationInMilliseconds"),
    "Speak": ("CallId", "Text", "Engine", "LanguageCode", "TextType", "VoiceId"),
    "SpeakAndGetDigits": ("CallId", "SpeechParameters", "FailureSpeechParameters", "InputDigitsRegex",
                          "MinNumberOfDigits", "MaxNumberOfDigits", "TerminatorDigits",
                          "InBetweenDigitsDurationInMilliseconds", "Repeat", "RepeatDurationInMilliseconds"),
    "StartBotConversation": ("BotAliasArn", "LocaleId", "Configuration", "CallId", "ParticipantTag"),
    "VoiceFocus": ("Enable", "CallId"),
    "StartCallRecording": ("CallId", "Track", "Destination"),
    "StopCallRecording": ("CallId",),
    "PauseCallRecording": ("CallId",),
    "ResumeCallRecording": ("CallId",),
}
#: How an action that depends on another AWS service is emulated locally.
LOCAL_BEHAVIOUR = {
    "PlayAudio": "S3 objects are files under the profile's bucket folder",
    "PlayAudioAndGetDigits": "S3 objects are files under the bucket folder",
    "Speak": "Amazon Polly is espeak-ng",
    "SpeakAndGetDigits": "Amazon Polly is espeak-ng",
    "RecordAudio": "the recording is a WAV written under the bucket folder",
    "StartCallRecording": "the recording is a WAV written under the bucket folder, with the service's key naming",
    "CallAndBridge": "the PSTN number or Voice Connector is a SIP target from the profile",
    "JoinChimeMeeting": "the meeting is a local conference leg (LEG-B, To \"SMA\")",
    "ModifyChimeMeetingAttendees": "mute state is kept on the local meeting",
    "StartBotConversation": "the bot returns the scripted IntentResult of the profile",
    "VoiceFocus": "accepted (no audio change); 5 actions per second per account",
}
#: The ErrorTypes ACTION_FAILED can carry (sma-reference §3.0) and what produces each here
#: (None: the emulator never produces it).
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
#: Actions whose use on an unanswered inbound leg answers it (sma-reference §1.2).
ANSWERING_ACTIONS = frozenset({
    "Answer", "Pause", "PlayAudio", "PlayAudioAndGetDigits", "RecordAudio", "Speak",
    "SpeakAndGetDigits", "ReceiveDigits", "SendDigits", "StartBotConversation", "VoiceFocus",
    "StartCallRecording", "JoinChimeMeeting"})
#: Actions after which the service always invokes the function with their result, wherever
#: they stand in their list (docs/fidelity.md, "Results reported mid-list").
REPORTING_ACTIONS = frozenset({
    "PlayAudioAndGetDigits", "SpeakAndGetDigits", "RecordAudio", "CallAndBridge",
    "JoinChimeMeeting", "ModifyChimeMeetingAttendees", "StartBotConversation"})
#: Actions whose target must be given by CallId (no ParticipantTag) per the reference.
CALL_ID_ACTIONS = frozenset({"SendDigits", "Speak", "SpeakAndGetDigits", "VoiceFocus",
                             "StartCallRecording", "StopCallRecording", "PauseCallRecording",
                             "ResumeCallRecording"})
HANGUP_CODES = (0, 480, 486)
DTMF_DIGITS = "0123456789*#"
SEND_DIGITS = re.compile(r"^[0-9*#A-Da-d,]{1,50}$")
AWS_URI = re.compile(r"[A-Za-z0-9&=+$/%_!~*().-]{1,30}")  # an AWS endpoint's Uri (§3.10)
RECORDING_TERMINATORS = "123456789*0#"
MAX_SPEAK_CHARS = 1000
MAX_BOT_CONFIGURATION_BYTES = 10 * 1024


class ActionFailure(Exception):
    """The action cannot run; reported as ACTION_FAILED with `error_type` and `message`."""

    def __init__(self, error_type: str, message: str):
        super().__init__(message)
        self.error_type, self.message = error_type, message


def missing(name: str) -> ActionFailure:
    return ActionFailure("MissingRequiredActionParameter", f"{name} is a required parameter.")


def invalid(name: str) -> ActionFailure:
    return ActionFailure("InvalidActionParameter", f"{name} parameter value is invalid.")


@dataclass
class ParsedAction:
    """A validated action: its type, the echoed parameters and the values the engine uses."""

    type: str
    parameters: dict
    values: dict = field(default_factory=dict)
    result: dict = field(default_factory=dict)  # fields the success event adds (ReceivedDigits, ...)

    def action_data(self) -> dict:
        return {"Type": self.type, "Parameters": self.parameters, **self.result}


def as_int(params: dict, name: str, default: int | None = None, minimum: int = 1,
           maximum: int | None = None) -> int:
    """Read an integer parameter that may come as a number or a numeric string."""
    raw = params.get(name)
    if raw is None or raw == "":
        if default is None:
            raise missing(name)
        return default
    try:
        value = None if isinstance(raw, bool) else int(raw)
    except (TypeError, ValueError):
        value = None
    if value is None or value < minimum or (maximum is not None and value > maximum):
        raise invalid(name)
    return value


def as_str(params: dict, name: str, default: str | None = None, choices: tuple[str, ...] = ()) -> str:
    raw = params.get(name)
    if raw is None or raw == "":
        if default is None:
            raise missing(name)
        return default
    if not isinstance(raw, str) or (choices and raw not in choices):
        raise invalid(name)
    return raw


def as_bool(params: dict, name: str) -> bool:
    raw = params.get(name)
    if raw is None:
        raise missing(name)
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise invalid(name)


def digit_list(params: dict, name: str, allowed: str, default: list[str] | None = None) -> list[str]:
    """A list of single DTMF digits (a bare string of digits is accepted too)."""
    raw = params.get(name)
    if raw is None or raw == [] or raw == "":
        if default is None:
            raise missing(name)
        return list(default)
    items = list(raw) if isinstance(raw, str) else raw
    if not isinstance(items, list) or not all(isinstance(d, str) and len(d) == 1 and d in allowed
                                              for d in items):
        raise invalid(name)
    return items


def audio_source(params: dict, name: str) -> tuple[str, str]:
    src = params.get(name)
    if not isinstance(src, dict):
        raise missing(name)
    if src.get("Type", "S3") != "S3" or not src.get("BucketName") or not src.get("Key") \
            or not safe_key(f"{src['BucketName']}/{src['Key']}"):
        raise ActionFailure("InvalidAudioSource", "Audio Source parameter value is invalid.")
    return str(src["BucketName"]), str(src["Key"])


def speech(params: dict, name: str, fallback: dict | None = None) -> dict:
    """Speech parameters (Speak, SpeechParameters, FailureSpeechParameters) with defaults."""
    fallback = fallback or {}
    text = params.get("Text")
    if not isinstance(text, str) or not text:
        raise missing(f"{name}Text" if name else "Text")
    if len(text) > MAX_SPEAK_CHARS:
        raise ActionFailure("MissingRequiredActionParameter", "Text is limited to 1,000 characters")
    return {"text": text,
            "engine": as_str(params, "Engine", fallback.get("engine", "standard"), ("standard", "neural")),
            "language": as_str(params, "LanguageCode", fallback.get("language", "en-US")),
            "text_type": as_str(params, "TextType", fallback.get("text_type", "text"), ("text", "ssml")),
            "voice": as_str(params, "VoiceId", fallback.get("voice", "Joanna"))}


def _digit_collection(params: dict, p: ParsedAction) -> None:
    """The parameters PlayAudioAndGetDigits and SpeakAndGetDigits share (§3.4, §3.9)."""
    repeat_ms = as_int(params, "RepeatDurationInMilliseconds")
    minimum = as_int(params, "MinNumberOfDigits", 0, minimum=0)
    maximum = as_int(params, "MaxNumberOfDigits", 128, minimum=1)
    if maximum < minimum:
        raise invalid("MaxNumberOfDigits")
    regex = params.get("InputDigitsRegex")
    if regex is not None:
        try:
            re.compile(regex)
        except (re.error, TypeError):
            raise invalid("InputDigitsRegex") from None
    p.values.update(
        repeat_ms=repeat_ms, min_digits=minimum, max_digits=maximum, regex=regex,
        terminators=digit_list(params, "TerminatorDigits", DTMF_DIGITS, ["#"]),
        in_between_ms=as_int(params, "InBetweenDigitsDurationInMilliseconds", repeat_ms),
        attempts=as_int(params, "Repeat", 1))
    params.setdefault("MinNumberOfDigits", 0)
    params.setdefault("MaxNumberOfDigits", 128)
    params.setdefault("TerminatorDigits", ["#"])
    params.setdefault("InBetweenDigitsDurationInMilliseconds", repeat_ms)
    params.setdefault("Repeat", 1)


def _sip_headers(params: dict) -> dict[str, str]:
    try:
        return check_sip_headers(params.get("SipHeaders"))
    except InvalidSipHeaders as exc:
        raise ActionFailure("InvalidActionParameter", exc.message) from None


def parse_action(action: dict) -> ParsedAction:
    """Validate one action object of a handler response (its Type is already known)."""
    kind = action["Type"]
    params = dict(action.get("Parameters") or {})
    p = ParsedAction(kind, params)
    v = p.values
    if kind == "PlayAudio":
        v["bucket"], v["key"] = audio_source(params, "AudioSource")
        v["repeat"] = as_int(params, "Repeat", 1)
        v["terminators"] = digit_list(params, "PlaybackTerminators", DTMF_DIGITS, [])
        params.setdefault("Repeat", 1)
    elif kind == "Pause":
        v["duration_ms"] = as_int(params, "DurationInMilliseconds")
    elif kind == "Hangup":
        code = as_int(params, "SipResponseCode", 0, minimum=0)
        if code not in HANGUP_CODES:
            raise invalid("SipResponseCode")
        v["sip_code"] = code
        params.setdefault("SipResponseCode", "0")
    elif kind == "PlayAudioAndGetDigits":
        v["bucket"], v["key"] = audio_source(params, "AudioSource")
        v["failure_bucket"], v["failure_key"] = audio_source(params, "FailureAudioSource")
        _digit_collection(params, p)
    elif kind == "SpeakAndGetDigits":
        main = params.get("SpeechParameters")
        if not isinstance(main, dict):
            raise missing("SpeechParameters")
        v["speech"] = speech(main, "")
        failure = params.get("FailureSpeechParameters")
        if not isinstance(failure, dict):
            raise missing("FailureSpeechParameters")
        v["failure_speech"] = speech(failure, "", fallback=v["speech"])
        _digit_collection(params, p)
    elif kind == "ReceiveDigits":
        regex = as_str(params, "InputDigitsRegex")
        try:
            re.compile(regex)
        except re.error:
            raise invalid("InputDigitsRegex") from None
        v.update(regex=regex, in_between_ms=as_int(params, "InBetweenDigitsDurationInMilliseconds"),
                 flush_ms=as_int(params, "FlushDigitsDurationInMilliseconds"))
    elif kind == "SendDigits":
        digits = as_str(params, "Digits")
        if not SEND_DIGITS.match(digits):
            raise invalid("Digits")
        v["digits"] = digits.upper()
        v["tone_ms"] = as_int(params, "ToneDurationInMilliseconds", 250, minimum=50, maximum=24000)
        if not 50 <= v["tone_ms"] <= 24000:
            raise ActionFailure("InvalidActionParameter", "ToneDuration parameter value is invalid.")
        params.setdefault("ToneDurationInMilliseconds", 250)
    elif kind == "RecordAudio":
        if params.get("CallId") and params.get("ParticipantTag"):
            raise ActionFailure("InvalidActionParameter",
                                "CallId and ParticipantTag cannot both be specified.")
        dest = params.get("RecordingDestination")
        if not isinstance(dest, dict) or dest.get("Type", "S3") != "S3" \
                or not valid_bucket_name(dest.get("BucketName")):
            raise ActionFailure("InvalidActionParameter", "RecordingDestination parameter value is invalid.")
        prefix = dest.get("Prefix", "")
        if not isinstance(prefix, str) or len(prefix) > 979 or not safe_key(prefix):
            raise ActionFailure("InvalidActionParameter", "RecordingDestination parameter value is invalid.")
        v.update(bucket=str(dest["BucketName"]), prefix=prefix,
                 duration_s=as_int(params, "DurationInSeconds", 0, minimum=0) or None,
                 silence_s=as_int(params, "SilenceDurationInSeconds", 0, minimum=0, maximum=1000) or None,
                 silence_threshold=as_int(params, "SilenceThreshold", 200, maximum=1000),
                 terminators=digit_list(params, "RecordingTerminators", RECORDING_TERMINATORS))
    elif kind == "Speak":
        v["speech"] = speech(params, "")
        params.setdefault("Engine", "standard")
        params.setdefault("TextType", "text")
        params.setdefault("VoiceId", "Joanna")
    elif kind == "CallAndBridge":
        v["timeout_s"] = as_int(params, "CallTimeoutSeconds", 30, maximum=120)
        caller_id = as_str(params, "CallerIdNumber")
        if not is_e164(caller_id):
            raise invalid("CallerIdNumber")
        endpoints = params.get("Endpoints")
        if not isinstance(endpoints, list) or not endpoints or not isinstance(endpoints[0], dict):
            raise missing("Endpoints")
        ep = endpoints[0]
        kind_ep = ep.get("BridgeEndpointType")
        uri = ep.get("Uri")
        if kind_ep not in ("PSTN", "AWS") or not isinstance(uri, str) or not uri:
            raise invalid("Endpoints")
        if kind_ep == "PSTN" and not is_e164(uri):
            raise invalid("Endpoints")
        if kind_ep == "AWS" and (not ep.get("Arn") or not AWS_URI.fullmatch(uri)):
            raise invalid("Endpoints")
        ringback = params.get("RingbackTone")
        v.update(caller_id=caller_id, endpoint_type=kind_ep, uri=uri, arn=ep.get("Arn"),
                 sip_headers=_sip_headers(params),
                 ringback=audio_source(params, "RingbackTone") if ringback else None)
        params.setdefault("CallTimeoutSeconds", 30)
    elif kind == "JoinChimeMeeting":
        v["join_token"] = as_str(params, "JoinToken")
        v["meeting_id"] = params.get("MeetingId")
    elif kind == "ModifyChimeMeetingAttendees":
        v["operation"] = as_str(params, "Operation", choices=("Mute", "Unmute"))
        v["meeting_id"] = as_str(params, "MeetingId")
        attendees = params.get("AttendeeList")
        if not isinstance(attendees, list) or not attendees or len(attendees) > 100 \
                or not all(isinstance(a, str) and a for a in attendees):
            raise ActionFailure("InvalidActionParameter", "Attendee List parameter value is invalid.")
        v["attendees"] = attendees
    elif kind == "StartBotConversation":
        v["bot_alias_arn"] = as_str(params, "BotAliasArn")
        v["locale"] = as_str(params, "LocaleId", "en_US")
        config = params.get("Configuration") or {}
        if not isinstance(config, dict) or len(json.dumps(config)) > MAX_BOT_CONFIGURATION_BYTES:
            raise invalid("Configuration")
        v["welcome"] = [m.get("Content", "") for m in config.get("WelcomeMessages", [])
                        if isinstance(m, dict)]
        params.setdefault("LocaleId", "en_US")
    elif kind == "VoiceFocus":
        v["enable"] = as_bool(params, "Enable")
    elif kind == "StartCallRecording":
        v["track"] = as_str(params, "Track", choices=("BOTH", "INCOMING", "OUTGOING"))
        dest = params.get("Destination")
        if not isinstance(dest, dict) or dest.get("Type", "S3") != "S3" or not dest.get("Location") \
                or not safe_key(str(dest["Location"])) \
                or not valid_bucket_name(str(dest["Location"]).split("/", 1)[0]):
            raise ActionFailure("InvalidActionParameter", "Destination parameter value is invalid.")
        v["location"] = str(dest["Location"])
    return p
