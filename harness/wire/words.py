"""The words heard on the wire: offline speech recognition with pocketsphinx (CMU Sphinx).

The recogniser's US English model ships in the pocketsphinx wheel. It was trained on 16 kHz
speech, so the 8 kHz telephone audio is resampled to 16 kHz (soxr) and decoded with the
model's own filter bank: a filter bank set for 8 kHz (upper edge 3500 Hz) no longer matches
the model's features and recognises nothing, and the default one refuses 8 kHz audio.

Free decoding (`transcribe`) of synthetic voices such as espeak-ng's is poor, so an expected
phrase is spotted instead (`find_phrase`): the stream's speech is cut at its pauses, and for
each run of consecutive pieces the phrase is force-aligned to the audio with a grammar that
holds only the phrase. The phrase is found where the alignment reaches its last word, its
words cover at least `MIN_COVERAGE` of the loud frames of that audio, and no more than
`MAX_QUIET_IN_WORDS` of the frames inside its words are quiet: a wrong phrase either fails to
align or leaves speech to silence. Fillers (silence, noise) are made improbable so that they
cannot swallow speech. The measured share of phrases found and of wrong phrases found is in
README.md (bench/bench_speech.py).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import soxr
from pocketsphinx import Decoder

MODEL_RATE = 16000
#: share of the loud frames the phrase's words must cover
MIN_COVERAGE = 0.9
#: share of the frames inside the phrase's words that may be quiet (pauses, stops)
MAX_QUIET_IN_WORDS = 0.4
#: a frame is loud within this many dB of the loudest frame
LOUD_RANGE_DB = 30.0
#: pauses at least this long cut speech into pieces a phrase may start or end at
PIECE_PAUSE_MS = 120.0
#: runs of more pieces than this are not tried as one phrase
MAX_PIECES = 6
#: audio kept around a run of pieces: the quiet ends of its first and last words
MARGIN_MS = 150.0
_FRAME = MODEL_RATE // 100  # pocketsphinx analyses 100 frames per second
_PAD = np.zeros(MODEL_RATE // 8, np.int16)
_NUMBER_WORDS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
                 "fourteen fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()


class RecognitionError(ValueError):
    """A phrase the recogniser cannot look for (a word its dictionary does not have)."""


@dataclass(frozen=True, slots=True)
class PhraseMatch:
    """Where a phrase was heard: its speech, in seconds from the start of the audio searched."""

    phrase: str
    start_s: float
    end_s: float
    coverage: float


def normalise(text: str) -> list[str]:
    """The words of `text` as the dictionary spells them: lower case, no punctuation, numbers
    written out ("42" -> "forty two")."""
    words = []
    for token in re.findall(r"[a-z0-9']+", text.lower()):
        words += _number(int(token)).split() if token.isdigit() and len(token) < 7 else [token.strip("'")]
    return [w for w in words if w]


def _number(n: int) -> str:
    if n < 20:
        return _NUMBER_WORDS[n]
    if n < 100:
        return _TENS[n // 10 - 2] + ("" if n % 10 == 0 else " " + _NUMBER_WORDS[n % 10])
    if n < 1000:
        return _NUMBER_WORDS[n // 100] + " hundred" + ("" if n % 100 == 0 else " " + _number(n % 100))
    return _number(n // 1000) + " thousand" + ("" if n % 1000 == 0 else " " + _number(n % 1000))


class Recognizer:
    """One pocketsphinx decoder for alignments and one for free decoding, made when first used."""

    def __init__(self) -> None:
        self._align: Decoder | None = None
        self._free: Decoder | None = None

    def _aligner(self) -> Decoder:
        if self._align is None:
            self._align = Decoder(loglevel="FATAL", lm=None, beam=1e-80, pbeam=1e-80,
                                  wbeam=1e-60, silprob=1e-10, fillprob=1e-20)
        return self._align

    def transcribe(self, pcm: np.ndarray, rate: int) -> str:
        """The best free decoding of the audio with the model's language model."""
        if self._free is None:
            self._free = Decoder(loglevel="FATAL")
        return _decode(self._free, _to_model(pcm, rate))[0]

    def check_words(self, phrase: str) -> list[str]:
        """The phrase's words; RecognitionError names any word the dictionary lacks."""
        words = normalise(phrase)
        decoder = self._aligner()
        missing = [w for w in words if decoder.lookup_word(w) is None]
        if not words or missing:
            raise RecognitionError(f"{phrase!r}: " + (f"the recogniser's dictionary has no word {missing[0]!r}"
                                                       if missing else "no words to look for"))
        return words

    def find_phrase(self, pcm: np.ndarray, rate: int, phrase: str, after_s: float = 0.0) -> PhraseMatch | None:
        """The first place from `after_s` (seconds into the audio) on where the phrase was
        spoken, or None (see the module docstring)."""
        words = self.check_words(phrase)
        decoder = self._aligner()
        decoder.add_jsgf_string("phrase", f"#JSGF V1.0; grammar g; public <s> = {' '.join(words)};")
        decoder.activate_search("phrase")
        pieces = speech_pieces(pcm, rate)
        margin = int(MARGIN_MS * rate / 1000)
        for first in range(len(pieces)):
            if pieces[first][0] < after_s * rate:
                continue
            for last in range(first, min(first + MAX_PIECES, len(pieces))):
                start = max(pieces[first][0] - margin, 0 if first == 0 else pieces[first - 1][1])
                end = min(pieces[last][1] + margin, len(pcm) if last + 1 == len(pieces) else pieces[last + 1][0])
                coverage = _aligned_coverage(decoder, _to_model(pcm[start:end], rate), words)
                if coverage is not None:
                    return PhraseMatch(phrase, pieces[first][0] / rate, pieces[last][1] / rate, coverage)
        return None


def speech_pieces(pcm: np.ndarray, rate: int, pause_ms: float = PIECE_PAUSE_MS) -> list[tuple[int, int]]:
    """(start, end) sample ranges of sound between pauses of at least `pause_ms`."""
    frame = rate // 100
    n = len(pcm) // frame
    if n == 0:
        return []
    power = np.mean(pcm[:n * frame].astype(np.float64).reshape(n, frame) ** 2, axis=1)
    db = 10 * np.log10(power + 1)
    loud = db > max(db.max() - LOUD_RANGE_DB, 10 * np.log10(32768.0 ** 2) - 100)
    pieces: list[tuple[int, int]] = []
    gap = max(int(pause_ms / 10), 1)
    run_start, quiet = None, 0
    for i, on in enumerate(loud.tolist() + [False] * gap):
        if on:
            run_start = i if run_start is None else run_start
            quiet = 0
        elif run_start is not None:
            quiet += 1
            if quiet >= gap:
                pieces.append((run_start * frame, (i - quiet + 1) * frame))
                run_start, quiet = None, 0
    return pieces


def _to_model(pcm: np.ndarray, rate: int) -> np.ndarray:
    """The audio at the model's rate, with a little silence around it."""
    audio = pcm if rate == MODEL_RATE else soxr.resample(pcm.astype(np.float32), rate, MODEL_RATE)
    return np.concatenate([_PAD, np.clip(audio, -32768, 32767).astype(np.int16), _PAD])


def _decode(decoder: Decoder, audio: np.ndarray) -> tuple[str, list]:
    decoder.start_utt()
    decoder.process_raw(audio.tobytes(), False, True)
    decoder.end_utt()
    hyp = decoder.hyp()
    return (hyp.hypstr if hyp else ""), list(decoder.seg() or [])


def _aligned_coverage(decoder: Decoder, audio: np.ndarray, words: list[str]) -> float | None:
    """The share of loud frames the aligned words cover, or None when the phrase does not fit."""
    _, segs = _decode(decoder, audio)
    spoken = [s for s in segs if not s.word.startswith(("<", "["))]
    if [s.word.split("(")[0] for s in spoken] != words:
        return None
    n = len(audio) // _FRAME
    power = np.mean(audio[:n * _FRAME].astype(np.float64).reshape(n, _FRAME) ** 2, axis=1)
    db = 10 * np.log10(power + 1)
    loud = db > db.max() - LOUD_RANGE_DB
    inside = np.zeros(n, bool)
    for s in spoken:
        inside[s.start_frame:s.end_frame + 1] = True
    coverage = np.count_nonzero(loud & inside) / max(np.count_nonzero(loud), 1)
    quiet = np.count_nonzero(inside & ~loud) / max(np.count_nonzero(inside), 1)
    if coverage < MIN_COVERAGE or quiet > MAX_QUIET_IN_WORDS:
        return None
    return float(coverage)
