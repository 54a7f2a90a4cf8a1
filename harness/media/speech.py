"""Speech for Speak and SpeakAndGetDigits, synthesised by espeak-ng in place of Amazon Polly.

Polly's `LanguageCode` picks the espeak-ng language and the `VoiceId`'s gender picks a male or
female espeak-ng variant; `Engine` has no counterpart. `TextType` "ssml" is passed with `-m`.
The synthesis runs as a subprocess without blocking the event loop, and its 8 kHz PCM is
cached by text, voice and text type (concurrent requests for the same speech share one run).
"""
from __future__ import annotations

import asyncio
from collections import OrderedDict

import numpy as np

from .sources import encode_frames, read_wav

DEFAULT_VOICE_ID = "Joanna"
DEFAULT_LANGUAGE_CODE = "en-US"
ESPEAK = "espeak-ng"
CACHE_SIZE = 128
TIMEOUT_S = 30.0
#: Polly language codes whose espeak-ng voice is neither the lower-cased code nor its language.
_LANGUAGE_ALIASES = {"arb": "ar", "ar-ae": "ar", "cmn-cn": "cmn", "yue-cn": "yue",
                     "es-mx": "es-419", "es-us": "es-419", "en-gb-wls": "en-gb"}
_REGIONAL_VOICES = {"en-us", "en-gb", "fr-fr", "fr-be", "fr-ch", "pt-br"}
#: Male Polly voices; every other VoiceId gets the female variant, like Polly's default Joanna.
_MALE_VOICES = {"Matthew", "Joey", "Justin", "Kevin", "Stephen", "Gregory", "Brian", "Arthur",
                "Russell", "Geraint", "Hans", "Daniel", "Mathieu", "Remi", "Liam", "Giorgio",
                "Adriano", "Enrique", "Sergio", "Andres", "Miguel", "Pedro", "Ricardo", "Thiago",
                "Cristiano", "Takumi", "Maxim", "Jacek", "Jan", "Mads", "Karl", "Ruben"}


class SpeechError(RuntimeError):
    """espeak-ng could not synthesise the text."""


def espeak_voice(voice_id: str | None, language_code: str | None) -> str:
    """The espeak-ng voice (language plus gender variant) for a Polly VoiceId and LanguageCode."""
    code = (language_code or DEFAULT_LANGUAGE_CODE).lower()
    language = _LANGUAGE_ALIASES.get(code) or (code if code in _REGIONAL_VOICES else code.split("-")[0])
    variant = "m3" if (voice_id or DEFAULT_VOICE_ID) in _MALE_VOICES else "f3"
    return f"{language}+{variant}"


def espeak_command(voice: str, ssml: bool) -> list[str]:
    """The espeak-ng command line that reads the text from stdin and writes WAV to stdout."""
    return [ESPEAK, "--stdout", "--stdin", "-v", voice] + (["-m"] if ssml else [])


_cache: OrderedDict[tuple[str, str, bool], np.ndarray] = OrderedDict()
_running: dict[tuple[str, str, bool], asyncio.Future] = {}


async def speech_pcm(text: str, voice_id: str | None = None, language_code: str | None = None,
                     text_type: str = "text") -> np.ndarray:
    """The spoken text as 8 kHz int16 PCM (cached)."""
    key = (text, espeak_voice(voice_id, language_code), text_type.lower() == "ssml")
    if key in _cache:
        _cache.move_to_end(key)
        return _cache[key]
    if key not in _running:
        _running[key] = asyncio.ensure_future(_synthesise(*key))
        _running[key].add_done_callback(lambda _: _running.pop(key, None))
    pcm = await asyncio.shield(_running[key])
    _cache[key] = pcm
    while len(_cache) > CACHE_SIZE:
        _cache.popitem(last=False)
    return pcm


async def speech_frames(text: str, codec: str, voice_id: str | None = None,
                        language_code: str | None = None, text_type: str = "text") -> tuple[bytes, ...]:
    """The spoken text as encoded 20 ms frames for `MediaSession.sender.play`."""
    return tuple(encode_frames(await speech_pcm(text, voice_id, language_code, text_type), codec))


async def _synthesise(text: str, voice: str, ssml: bool) -> np.ndarray:
    try:
        proc = await asyncio.create_subprocess_exec(
            *espeak_command(voice, ssml), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    except OSError as exc:
        raise SpeechError(f"cannot run {ESPEAK}: {exc}") from None
    try:
        wav, err = await asyncio.wait_for(proc.communicate(text.encode()), TIMEOUT_S)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise SpeechError(f"{ESPEAK} took longer than {TIMEOUT_S} s") from None
    if proc.returncode != 0 or not wav:
        raise SpeechError(f"{ESPEAK} -v {voice} failed ({proc.returncode}): "
                          f"{err.decode(errors='replace').strip()}")
    return read_wav(wav, "speech")
