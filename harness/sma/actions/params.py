"""Reading action parameters as the service does: numbers may come as numeric strings, an
empty value is an absent one, and each problem is the service's ActionFailure."""
from __future__ import annotations

import re

from ..buckets import safe_key
from ..sip_headers import InvalidSipHeaders, check_sip_headers
from .base import ActionFailure, invalid, missing

DTMF_DIGITS = "0123456789*#"
MAX_SPEAK_CHARS = 1000


def as_int(params: dict, name: str, default: int | None = None, minimum: int = 1,
           maximum: int | None = None) -> int:
    """An integer parameter that may come as a number or a numeric string."""
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


def regex(params: dict, name: str, required: bool) -> str | None:
    """A regular expression parameter that must compile."""
    raw = as_str(params, name) if required else params.get(name)
    if raw is None:
        return None
    try:
        re.compile(raw)
    except (re.error, TypeError):
        raise invalid(name) from None
    return raw


def digit_list(params: dict, name: str, allowed: str, default: list[str] | None = None) -> tuple[str, ...]:
    """A list of single DTMF digits (a bare string of digits is accepted too)."""
    raw = params.get(name)
    if raw is None or raw == [] or raw == "":
        if default is None:
            raise missing(name)
        return tuple(default)
    items = list(raw) if isinstance(raw, str) else raw
    if not isinstance(items, list) or not all(isinstance(d, str) and len(d) == 1 and d in allowed
                                              for d in items):
        raise invalid(name)
    return tuple(items)


def audio_source(params: dict, name: str) -> tuple[str, str]:
    """The (BucketName, Key) of an S3 AudioSource whose key stays in its bucket."""
    src = params.get(name)
    if not isinstance(src, dict):
        raise missing(name)
    if src.get("Type", "S3") != "S3" or not src.get("BucketName") or not src.get("Key") \
            or not safe_key(f"{src['BucketName']}/{src['Key']}"):
        raise ActionFailure("InvalidAudioSource", "Audio Source parameter value is invalid.")
    return str(src["BucketName"]), str(src["Key"])


def speech(params: dict, fallback: dict | None = None) -> dict:
    """Speech parameters (Speak, SpeechParameters, FailureSpeechParameters) with their
    defaults (or those of `fallback`): text, engine, language, text_type, voice."""
    fallback = fallback or {}
    text = params.get("Text")
    if not isinstance(text, str) or not text:
        raise missing("Text")
    if len(text) > MAX_SPEAK_CHARS:
        raise ActionFailure("MissingRequiredActionParameter", "Text is limited to 1,000 characters")
    return {"text": text,
            "engine": as_str(params, "Engine", fallback.get("engine", "standard"), ("standard", "neural")),
            "language": as_str(params, "LanguageCode", fallback.get("language", "en-US")),
            "text_type": as_str(params, "TextType", fallback.get("text_type", "text"), ("text", "ssml")),
            "voice": as_str(params, "VoiceId", fallback.get("voice", "Joanna"))}


def sip_headers(params: dict) -> dict[str, str]:
    """The SipHeaders a placed leg may carry (sip_headers.py's rules)."""
    try:
        return check_sip_headers(params.get("SipHeaders"))
    except InvalidSipHeaders as exc:
        raise ActionFailure("InvalidActionParameter", exc.message) from None


def echoed(params: dict, **defaults) -> dict:
    """The parameters as the events echo them: the given ones, and the documented defaults
    of those not given."""
    out = dict(params)
    for name, value in defaults.items():
        out.setdefault(name, value)
    return out
