"""Judging a finished run: the `expect:` section of the profile language and how each of its
expectations is judged, in one place.

An expectation is a field of `Expect` (its YAML key and shape) and one function registered
under that key with `@expectation(key)`; a function registered with `@every_run` makes the
checks every run gets. `judge(evidence, expect)` calls them in the order they are written
here, each yielding its `Check`s. The functions read `Evidence`: the capture's analysis,
the stub's journal and what the run itself saw (its update requests, its calls, what it left
open), never the live stub.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..journal_entries import Impairment
from ..journal_view import JournalView
from ..media.sources import read_wav, read_wav_channels
from ..profiles.strict import Invalid
from ..results import Check
from ..sip.message import SipResponse
from ..sip.uri import SipUri, UriError, uri_of
from ..sma.events import EVENT_TYPES
from ..wire.audio import (PromptMatcher, dtmf_events, label_packets, load_prompts, prompts_in, segments,
                          stream_pcm, tone_frequency)
from ..wire.http_requests import HttpRequest
from ..wire.sdp import parse_sdp_audio
from ..wire.switch import check_switch

if TYPE_CHECKING:
    from ..caller import Call
    from ..wire.analysis import WireAnalysis
    from ..wire.rtp_streams import RtpStream
    from ..wire.sip_ladder import SipOnWire

#: a recorded tone within this of the expected frequency is that tone
TONE_TOLERANCE_HZ = 10
S3_UNSEEN = "the recording is in the service's S3 bucket, not in a folder of this run"


# ---- the language: what may stand under `expect:` --------------------------------------------
@dataclass
class SwitchExpect:
    """On the wire, the stub's stream to the caller switches prompts after the update."""

    from_prompt: str
    to_prompt: str
    within_ms: int = 200
    call: str = "a"


@dataclass
class PromptAfterAnswerExpect:
    """On the wire, `prompt` starts on the stub's stream to `call` within `within_ms` of the
    stub's 200 OK for that call (e.g. the prompt an ACTION_FAILED response plays)."""

    prompt: str
    within_ms: int = 300
    call: str = "a"


@dataclass
class CallRecordingExpect:
    """The last recording the stub wrote is a two-channel call recording (incoming left,
    outgoing right) whose channels hold these tones in its last quarter."""

    incoming_tone_hz: float
    outgoing_tone_hz: float


@dataclass
class Expect:
    """What must be observed: the handler's events (from the stub's journal); on the wire, the
    prompts the stub played to the first call (in order), the switch, who sent BYE."""

    events: list[str] | None = None
    prompts: list[str] | None = None
    prompts_call: str | None = None  # whose stream `prompts` is read from (default: the first call)
    heard: dict[str, list[str]] | None = None  # call name -> prompts its stream carried, in order
    prompt_after_answer: PromptAfterAnswerExpect | None = None
    switch: SwitchExpect | None = None
    bye_from: Literal["stub", "caller"] | None = None
    received_digits: list[str] | None = None  # ReceivedDigits the handler got, in order
    dtmf_to_caller: str | None = None  # RFC 4733 digits the stub sent to the first call
    final_status: dict[str, int] | None = None  # call name -> final SIP status it saw
    recording_tone_hz: float | None = None  # a recording was written, holding this tone
    call_recording: CallRecordingExpect | None = None
    # table -> items that must be in it after the run: {key: {...}, attribute: value, ...};
    # a value {matches: REGEX} matches the attribute's text
    dynamodb: dict[str, list[dict[str, Any]]] | None = None
    #: phrases the caller heard, in order: recognised in the stub's speech on the wire
    said: list[str] | None = None
    said_call: str | None = None  # whose stream `said` is read from (default: the first call)

    def validate(self) -> str | Invalid | None:
        for key, value in self.given():
            found = _REGISTRY[key].validate(value) if _REGISTRY[key].validate else None
            if isinstance(found, Invalid):
                return Invalid((key, *found.at), found.message)
            if found:
                return f"{key}: {found}"
        return None

    def given(self) -> Iterator[tuple[str, Any]]:
        """(key, value) of each expectation the profile sets (options such as `said_call` aside)."""
        for key in _REGISTRY:
            value = getattr(self, key)
            if value is not None:
                yield key, value


# ---- what a run left to judge it by ---------------------------------------------------------
@dataclass
class Evidence:
    """What a finished run shows: the analysis of its capture, the stub's journal (or a
    trace of the real handler), and what the run saw itself.

    `call(name)` is a named call (placed by a call step, or received by a callee);
    `calls` the calls known by name so far. Against the real service `local` is False and
    `unseen` says why the handler's side cannot be judged (None: it can, from a trace).
    """

    wire: WireAnalysis
    journal: JournalView
    host: str  # the stub's (or the service's) SIP and media address
    sip_ports: frozenset[int]  # its SIP ports: UDP/TCP, and TLS when it serves it
    bucket_dir: Path
    first_call: str
    call: Callable[[str], Call]
    calls: Mapping[str, Call]
    local: bool = True
    unseen: str | None = None
    updates: Sequence[dict] = ()  # the run's update requests: arguments, status, error, ...
    tables: Mapping[str, list[dict]] = field(default_factory=dict)  # local DynamoDB after the run
    leftovers: Mapping[str, int] = field(default_factory=dict)  # what was left open
    message_logs: Sequence[Path] = ()  # the callers' SIP message logs (SIP over TLS)
    srtp_offered: bool = False  # an endpoint of the profile offers SRTP
    impaired: bool = False  # the profile's network impairs the stub's edge

    @cached_property
    def prompts(self) -> dict[str, np.ndarray]:
        return load_prompts(self.bucket_dir)

    def leg(self, call_name: str):
        """The stub's leg of a named call: the call that arrived, or the one it placed."""
        sip_call_id = self.call(call_name).call_id
        for leg in self.journal.legs():
            if leg.sip_call_id == sip_call_id:
                return leg
        raise RuntimeError(f"the stub has no leg for call {call_name!r} ({sip_call_id})")

    def far_media(self, call_name: str) -> tuple[str, int] | None:
        """The media address of the far end (the stub, or the service) of a named call: from
        the stub's journal, else from the SDP the far end answered with on the wire."""
        if self.local:
            return self.host, self.leg(call_name).rtp_port
        sip_call_id = self.call(call_name).call_id
        offers = [parse_sdp_audio(m.message.body) for m in self.wire.sip if m.message.call_id == sip_call_id
                  and getattr(m.message, "method", None) == "INVITE" and m.message.body]
        ours = {(o.address, o.port) for o in offers if o is not None}  # the caller's own media
        theirs = [s.src for s in self.wire.rtp_streams if s.dst in ours and s.src not in ours]
        return theirs[0] if theirs else None

    def stub_stream(self, call_name: str) -> RtpStream | None:
        """The RTP stream the stub (or the service) sent to a named call, found in the capture."""
        far = self.far_media(call_name)
        streams = self.wire.streams(src=far) if far else []
        return streams[0] if streams else None

    def prompt_segments(self, call_name: str):
        """The prompt segments on the stub's stream to a named call, or None without RTP."""
        stream = self.stub_stream(call_name)
        if stream is None:
            return None
        return [seg for seg in segments(label_packets(stream, self.prompts)) if seg.kind == "prompt"]



# ---- the registry ---------------------------------------------------------------------------
Verifier = Callable[..., Iterable[Check]]


@dataclass(frozen=True)
class _Entry:
    judge: Verifier
    #: what the loader says about a value of this expectation (a message, an Invalid below
    #: the key, None: fine)
    validate: Callable[[Any], str | Invalid | None] | None = None
    #: the prompts (WAV names) a value names, as (path below the key, name): `validate`
    #: reports the missing ones before a run
    names_prompts: Callable[[Any], list[tuple[tuple, str]]] | None = None
    #: other fields of Expect that only modify this expectation
    options: tuple[str, ...] = ()


_REGISTRY: dict[str, _Entry] = {}
#: every judge in the order a run reports their checks: (the expectation's key, or None for
#: a check every run gets, judge)
_ORDER: list[tuple[str | None, Verifier]] = []


def expectation(key: str, *, validate=None, names_prompts=None, options: tuple[str, ...] = ()):
    """Register the judge of `expect.<key>`: called as `judge(evidence, value, expect)` when
    the profile sets it, yielding its checks."""
    def register(judge: Verifier) -> Verifier:
        _REGISTRY[key] = _Entry(judge, validate, names_prompts, options)
        _ORDER.append((key, judge))
        return judge
    return register


def every_run(judge: Verifier) -> Verifier:
    """Register a check every run gets: `judge(evidence)` yields the checks that apply."""
    _ORDER.append((None, judge))
    return judge


def judge(evidence: Evidence, expect: Expect) -> list[Check]:
    """Every check of the run, in the order the judges are written in this module."""
    given = dict(expect.given())
    checks: list[Check] = []
    for key, judge_one in _ORDER:
        if key is None:
            checks += judge_one(evidence)
        elif key in given:
            checks += judge_one(evidence, given[key], expect)
    return checks


def named_prompts(expect: Expect) -> list[tuple[tuple, str]]:
    """Every prompt the expectations name: (its path below `expect`, its name)."""
    return [((key, *at), name) for key, value in expect.given() if _REGISTRY[key].names_prompts
            for at, name in _REGISTRY[key].names_prompts(value)]


def keys() -> dict[str, tuple[str, ...]]:
    """The registered expectations, each with its options."""
    return {key: entry.options for key, entry in _REGISTRY.items()}


def not_observable(name: str, why: str) -> Check:
    """An expectation the run cannot judge (against AWS without the emulator's journal)."""
    return Check(name, True, f"not observable: {why}", {"observable": False})


# ---- the checks, in the order a run reports them --------------------------------------------
@every_run
def update_responses(run: Evidence) -> Iterator[Check]:
    """Each update step got the HTTP status and error it expects; the handler got every
    accepted update's Arguments verbatim."""
    for u in run.updates:
        ok = u["status"] == u["expect_status"] and u["error"] == u["expect_error"]
        yield Check("update response", ok,
                    f"HTTP {u['status']} {u['error'] or ''}".strip()
                    + ("" if ok else f", expected {u['expect_status']} {u['expect_error'] or ''}"),
                    {"status": u["status"], "error": u["error"]})
    accepted = [u["arguments"] for u in run.updates if u["status"] == 202]
    if accepted and run.unseen:
        yield not_observable("update arguments delivered", run.unseen)
    elif accepted:
        delivered = [i.action_data["Parameters"]["Arguments"]
                     for i in run.journal.invocations("CALL_UPDATE_REQUESTED")]
        yield Check("update arguments delivered", delivered == accepted,
                    "the handler got each update's Arguments verbatim" if delivered == accepted
                    else f"sent {accepted}, the handler got {delivered}",
                    {"counts": [len(a) for a in delivered]})


def _known_events(events: list[str]) -> str | None:
    bad = [e for e in events if e not in EVENT_TYPES]
    return f"unknown InvocationEventType {bad[0]!r}" if bad else None


@expectation("events", validate=_known_events)
def handler_events(run: Evidence, expected: list[str], expect: Expect) -> Iterator[Check]:
    """The InvocationEventTypes the handler got, in order."""
    if run.unseen:
        yield not_observable("handler events", run.unseen)
        return
    seen = run.journal.event_types()
    yield Check("handler events", seen == expected,
                "as expected" if seen == expected else f"expected {expected}, saw {seen}", {"events": seen})


def _prompts_heard(run: Evidence, expected: list[str], call_name: str) -> Check:
    name = f"prompts heard by {call_name}"
    found = run.prompt_segments(call_name)
    if found is None:
        return Check(name, False, f"no RTP from the stub to {call_name} on the wire")
    heard = prompts_in(found)
    return Check(name, heard == expected,
                 f"the stub played {heard}" + ("" if heard == expected else f", expected {expected}"),
                 {"prompts": heard})


@expectation("prompts", options=("prompts_call",),
             names_prompts=lambda prompts: [((i,), p) for i, p in enumerate(prompts)])
def prompts(run: Evidence, expected: list[str], expect: Expect) -> Iterator[Check]:
    """The prompts the stub played to a call (`prompts_call`, default the first), in order."""
    yield _prompts_heard(run, expected, expect.prompts_call or run.first_call)


@expectation("heard", names_prompts=lambda heard: [((call, i), p) for call, ps in heard.items()
                                                   for i, p in enumerate(ps)])
def heard(run: Evidence, expected: dict[str, list[str]], expect: Expect) -> Iterator[Check]:
    """For each named call, the prompts the stub played to it, in order."""
    for call_name, prompts_of_call in expected.items():
        yield _prompts_heard(run, prompts_of_call, call_name)


@expectation("prompt_after_answer", names_prompts=lambda spec: [(("prompt",), spec.prompt)])
def prompt_after_answer(run: Evidence, spec: PromptAfterAnswerExpect, expect: Expect) -> Iterator[Check]:
    """A prompt starts on the stub's stream within `within_ms` of the stub's 200 OK."""
    name = f"{spec.prompt} after the answer"
    sip_call_id = run.call(spec.call).call_id
    answers = [m for m in run.wire.sip if m.message.call_id == sip_call_id
               and isinstance(m.message, SipResponse) and m.message.status == 200
               and m.message.cseq[1] == "INVITE"]
    found = [seg for seg in run.prompt_segments(spec.call) or [] if seg.prompt == spec.prompt]
    if not answers or not found:
        yield Check(name, False, "no 200 OK for the call on the wire" if not answers
                    else f"{spec.prompt} was not heard")
        return
    delay_ms = (found[0].start_ts_ns / 1e9 - answers[0].time) * 1000
    ok = delay_ms <= spec.within_ms
    yield Check(name, ok, f"{spec.prompt} started {delay_ms:.1f} ms after the stub's 200 OK"
                + ("" if ok else f", more than the {spec.within_ms} ms allowed"), {"delay_ms": round(delay_ms, 2)})


@expectation("switch", names_prompts=lambda spec: [(("from_prompt",), spec.from_prompt),
                                                   (("to_prompt",), spec.to_prompt)])
def switch(run: Evidence, spec: SwitchExpect, expect: Expect) -> Iterator[Check]:
    """After the update request crossed the wire, the stub's stream switched from one prompt
    to the other within `within_ms`, the old one never came back and the stream stayed
    continuous (`measured["latency_ms"]` is the run's update-to-switch time)."""
    missing = [p for p in (spec.from_prompt, spec.to_prompt) if p not in run.prompts]
    if missing:
        yield Check("switch", False, f"prompt {missing[0]!r} is not a WAV in {run.bucket_dir}")
        return
    if not run.local:  # HTTPS: the update's time is the harness's own clock
        requests = [HttpRequest(0, int(u["time"] * 1e9), ("", 0), ("", 0), "POST", "", (), b"")
                    for u in run.updates if u["status"] == 202]
    else:
        requests = run.wire.update_requests(run.leg(spec.call).transaction_id)
    stream = run.stub_stream(spec.call)
    if not requests or stream is None:
        yield Check("switch", False, "no update request on the wire" if not requests
                    else "no RTP from the stub on the wire")
        return
    result = check_switch(run.wire, stream, requests[0], spec.from_prompt, spec.to_prompt, run.prompts)
    measured = {"latency_ms": result.latency_ms, "old_reappears": result.old_reappears,
                "continuous": result.continuous, "first_new_frame": result.first_new_number}
    passed = result.ok and result.latency_ms <= spec.within_ms
    detail = result.reason
    if result.ok and not passed:
        detail = f"{result.reason}; slower than the {spec.within_ms} ms allowed"
    yield Check("switch", passed, detail, measured)


@expectation("bye_from")
def bye_from(run: Evidence, who: str, expect: Expect) -> Iterator[Check]:
    """The first BYE of the run's dialogs came from the stub, or from the caller."""
    ours = {leg.sip_call_id for leg in run.journal.legs()} | {call.call_id for call in run.calls.values()}
    byes = [m for m in run.wire.sip if getattr(m.message, "method", None) == "BYE"
            and m.message.call_id in ours]
    if not byes:
        yield Check("BYE", False, f"no BYE on the wire, expected one from the {who}")
        return
    sender = "stub" if byes[0].src[1] in run.sip_ports else "caller"
    yield Check("BYE", sender == who, f"first BYE sent by the {sender}"
                + ("" if sender == who else f", expected the {who}"),
                {"bye_from": sender, "time": byes[0].time})


@expectation("received_digits")
def received_digits(run: Evidence, expected: list[str], expect: Expect) -> Iterator[Check]:
    """The ReceivedDigits the handler got, in order, each of them on the wire from the caller."""
    got = [i.action_data["ReceivedDigits"] for i in run.journal.invocations()
           if i.action_data.get("ReceivedDigits")]
    far = run.far_media(run.first_call)
    on_wire = "".join(d.digit or "" for s in (run.wire.streams(dst=far) if far else [])
                      for d in dtmf_events(s))
    reached = _in_order("".join(got), on_wire)
    ok = got == expected and reached
    yield Check("received digits", ok,
                f"the handler got {got}; the caller's RFC 4733 digits on the wire: {on_wire!r}"
                + ("" if got == expected else f"; expected {expected}")
                + ("" if reached else "; not every digit the handler got crossed the wire"),
                {"received": got, "on_wire": on_wire})


@expectation("dtmf_to_caller")
def dtmf_to_caller(run: Evidence, expected: str, expect: Expect) -> Iterator[Check]:
    """The RFC 4733 digits the stub sent to the first call."""
    stream = run.stub_stream(run.first_call)
    digits = "".join(d.digit or "" for d in dtmf_events(stream)) if stream else ""
    yield Check("digits sent to the caller", digits == expected,
                f"RFC 4733 digits on the wire: {digits!r}" + ("" if digits == expected else f", expected {expected!r}"),
                {"digits": digits})


@expectation("final_status")
def final_status(run: Evidence, expected: dict[str, int], expect: Expect) -> Iterator[Check]:
    """The final SIP status each named call saw."""
    for name, status in expected.items():
        seen = run.call(name).last_status
        yield Check(f"final status of {name}", seen == status,
                    f"SIP {seen}" + ("" if seen == status else f", expected {status}"), {"status": seen})


def _last_recording(run: Evidence, name: str) -> tuple[Path | None, Check | None]:
    """The last recording the stub wrote, or the check `name` gets without one (against AWS
    the recordings are in the service's bucket: not observable)."""
    if not run.local:
        return None, not_observable(name, S3_UNSEEN)
    paths = run.journal.recordings()
    if not paths or not paths[-1].is_file():
        return None, Check(name, False, "no recording was written")
    return paths[-1], None


@expectation("recording_tone_hz")
def recording_tone(run: Evidence, tone_hz: float, expect: Expect) -> Iterator[Check]:
    """The last recording holds this tone in its middle half."""
    path, unjudged = _last_recording(run, "recording")
    if unjudged is not None:
        yield unjudged
        return
    pcm = read_wav(path.read_bytes())
    heard_hz = _median_tone(pcm[len(pcm) // 4: 3 * len(pcm) // 4])
    ok = heard_hz is not None and abs(heard_hz - tone_hz) <= TONE_TOLERANCE_HZ
    yield Check("recording", ok, f"{path.name}: {len(pcm) / 8000:.2f} s, tone "
                f"{heard_hz and round(heard_hz)} Hz" + ("" if ok else f", expected {tone_hz} Hz"),
                {"path": str(path), "seconds": len(pcm) / 8000, "tone_hz": heard_hz})


@expectation("call_recording")
def call_recording(run: Evidence, spec: CallRecordingExpect, expect: Expect) -> Iterator[Check]:
    """Both channels of the last call recording hold their party's tone in its last quarter:
    the recording kept both directions through everything that played before."""
    path, unjudged = _last_recording(run, "call recording")
    if unjudged is not None:
        yield unjudged
        return
    channels = read_wav_channels(path.read_bytes(), path.name)
    if len(channels) != 2:
        yield Check("call recording", False, f"{path.name} has {len(channels)} channel(s), not 2")
        return
    seen, ok = {}, True
    for side, pcm, want in (("incoming", channels[0], spec.incoming_tone_hz),
                            ("outgoing", channels[1], spec.outgoing_tone_hz)):
        seen[side] = _median_tone(pcm[-(len(pcm) // 4):])
        ok = ok and seen[side] is not None and abs(seen[side] - want) <= TONE_TOLERANCE_HZ
    detail = (f"{path.name}: {len(channels[0]) / 8000:.2f} s; its last quarter: "
              + ", ".join(f"{side} {f and round(f)} Hz" for side, f in seen.items()))
    if not ok:
        detail += f"; expected incoming {spec.incoming_tone_hz} Hz, outgoing {spec.outgoing_tone_hz} Hz"
    yield Check("call recording", ok, detail, {"path": str(path), "tones_hz": seen})


def _items_keyed(tables: dict[str, list[dict]]) -> Invalid | None:
    for table, items in tables.items():
        for i, item in enumerate(items):
            if not isinstance(item.get("key"), dict) or not item["key"]:
                return Invalid((table, i), "each expected item names its key: {key: {attribute: value}, ...}")
    return None


@expectation("dynamodb", validate=_items_keyed)
def dynamodb(run: Evidence, tables: dict[str, list[dict]], expect: Expect) -> Iterator[Check]:
    """The expected items are in the local DynamoDB tables after the run."""
    for table, items in tables.items():
        yield check_table(table, run.tables.get(table), items) if run.local \
            else not_observable(f"DynamoDB table {table}", "the table is in your AWS account")


def check_table(table: str, found: list[dict] | None, expected: list[dict]) -> Check:
    """Each expected item is in the table: found by its key, every attribute given equal (or,
    for {matches: REGEX}, its text matching)."""
    if found is None:
        return Check(f"dynamodb {table}", False, "no such table after the run")
    problems = []
    for want in expected:
        key = want["key"]
        item = next((i for i in found if all(i.get(k) == v for k, v in key.items())), None)
        if item is None:
            problems.append(f"no item with key {key}")
            continue
        for name, value in want.items():
            if name == "key":
                continue
            got = item.get(name)
            if isinstance(value, dict) and set(value) == {"matches"}:
                ok = got is not None and re.fullmatch(str(value["matches"]), str(got)) is not None
            else:
                ok = got == value
            if not ok:
                problems.append(f"item {key}: {name} is {got!r}, expected {value!r}")
    return Check(f"dynamodb {table}", not problems,
                 "; ".join(problems) if problems else f"{len(expected)} expected item(s) found "
                 f"among {len(found)}", {"items": found})


def _phrases_have_words(phrases: list[str]) -> Invalid | None:
    for i, phrase in enumerate(phrases):
        if not phrase.strip():
            return Invalid((i,), "a phrase has no words")
    return None


@expectation("said", validate=_phrases_have_words, options=("said_call",))
def said(run: Evidence, phrases: list[str], expect: Expect) -> Iterator[Check]:
    """Each phrase recognised (pocketsphinx) in the stub's audio to the call, in order."""
    from ..wire.words import RecognitionError, Recognizer
    call_name = expect.said_call or run.first_call
    stream = run.stub_stream(call_name)
    if stream is None:
        yield Check("said", False, "no RTP from the stub on the wire")
        return
    pcm, rate, origin = stream_pcm(stream)
    recognizer, found, after = Recognizer(), [], 0.0
    for phrase in phrases:
        try:
            match = recognizer.find_phrase(pcm, rate, phrase, after)
        except RecognitionError as exc:
            yield Check("said", False, str(exc))
            return
        found.append({"phrase": phrase, "at_s": None if match is None else round(
            (origin - run.wire.start_ns) / 1e9 + match.start_s, 3)})
        if match is None:
            where = "after the phrase before it" if after else ""
            yield Check("said", False, f"{phrase!r} was not heard {where} in the stub's speech to call "
                        f"{call_name!r}".replace("  ", " "), {"said": found})
            return
        after = match.end_s
    yield Check("said", True, "heard " + ", ".join(f"{h['phrase']!r} at {h['at_s']:.2f} s" for h in found),
                {"said": found})


@every_run
def network_impairment(run: Evidence) -> Iterator[Check]:
    """With a `network:` section, the loss the stub's edge made is the loss the capture
    shows on its RTP streams."""
    if not (run.impaired and run.local):
        return
    touched = [e.packet for e in run.journal.of(Impairment)]
    dropped = sum(1 for p in touched if p.kind == "rtp" and p.direction == "outgoing"
                  and p.action == "dropped")
    lost = sum(st.stats.lost for leg in run.journal.legs()
               for st in run.wire.streams(src=(run.host, leg.rtp_port)))
    sip = sum(1 for p in touched if p.kind == "sip" and p.action == "dropped")
    yield Check("network impairment", dropped == lost,
                f"the stub's edge dropped {dropped} outgoing RTP packets, the capture shows "
                f"{lost} lost; {sip} SIP datagrams dropped",
                {"rtp_dropped": dropped, "rtp_lost_on_wire": lost, "sip_dropped": sip})


@every_run
def srtp(run: Evidence) -> Iterator[Check]:
    """Every SRTP flow of the capture decrypted with the SDES key its SDP announced: none
    failed authentication, and there was SRTP in both directions."""
    flows = list(run.wire.srtp)
    if not (run.srtp_offered or flows):
        return
    ok = len([f for f in flows if f.packets]) >= 2 and all(f.ok for f in flows if f.packets)
    detail = "; ".join(f.describe() for f in flows) or "no SRTP key announced in any SDP"
    if flows and not ok and any(f.failed for f in flows):
        detail = "SRTP does not decrypt with the keys of the SDP: " + detail
    yield Check("SRTP", ok, detail, {"flows": [{"src": list(f.src), "packets": f.packets,
                                                "decrypted": f.decrypted, "failed": f.failed}
                                               for f in flows]})


@every_run
def sip_over_tls(run: Evidence) -> Iterator[Check]:
    """Where the SIP of the ladder comes from when the capture cannot read it (TLS)."""
    if run.wire.logged_sip:
        yield Check("SIP over TLS", True,
                    f"the capture cannot read SIP over TLS: {run.wire.logged_sip} SIP messages "
                    f"(ladder, SDP, SRTP keys) come from the callers' own message logs "
                    f"({', '.join(p.name for p in run.message_logs)})",
                    {"logged_messages": run.wire.logged_sip,
                     "message_logs": [str(p) for p in run.message_logs]})


@every_run
def nothing_after_last_hangup(run: Evidence) -> Iterator[Check]:
    """No transaction invokes its handler after the HANGUP of its last leg."""
    yield check_nothing_after_last_hangup(run.journal) if not run.unseen \
        else not_observable("nothing invoked after the last HANGUP", run.unseen)


def check_nothing_after_last_hangup(journal: JournalView) -> Check:
    """No transaction invokes its handler after the HANGUP of its last leg (the service's
    transaction ends there; sma-reference §6.1)."""
    ended: set[str] = set()
    late: list[str] = []
    for inv in journal.invocations():
        if inv.transaction_id in ended:
            late.append(f"{inv.event_type} (Sequence {inv.sequence})")
        elif inv.event_type == "HANGUP" and all(
                p.get("Status") == "Disconnected" for p in inv.event["CallDetails"]["Participants"]):
            ended.add(inv.transaction_id)
    return Check("nothing invoked after the last HANGUP", not late,
                 f"invoked after the transaction ended: {', '.join(late[:5])}"
                 + (f" and {len(late) - 5} more" if len(late) > 5 else "") if late
                 else "no invocation after a transaction's last HANGUP", {"late_invocations": len(late)})


@every_run
def nothing_left_behind(run: Evidence) -> Iterator[Check]:
    """No dialog, media stream, task or caller worker outlived the run."""
    yield Check("nothing left behind", not run.leftovers,
                f"left open: {dict(run.leftovers)}" if run.leftovers else "no dialog, stream or task left",
                dict(run.leftovers))


# ---- load mode: many calls, each judged from the capture alone ----------------------------
@dataclass(frozen=True)
class WireCall:
    """One call as the capture shows it on the callers' side of the `target` it was placed to."""

    sip_call_id: str
    invited_ns: int  # when its INVITE reached the target
    messages: tuple[SipOnWire, ...]  # between the callers and the target
    media: tuple[str, int] | None  # where the far end's RTP comes from (its SDP answer)
    answered_by: str | None  # host:port of the Contact of the far end's 200 OK


def wire_calls(wire: WireAnalysis, target: tuple[str, int]) -> list[WireCall]:
    """Every call the capture shows placed to `target`, in the order their INVITEs arrived
    (what a proxy in front, e.g. a cluster's Kamailio, relays on is left out)."""
    found = []
    for sip_call_id, dialog in wire.dialogs.items():
        leg = tuple(m for m in dialog if target in (m.src, m.dst))
        invite = next((m for m in leg if _ladder_step(m) == "INVITE" and m.dst == target), None)
        if invite is None:
            continue
        answer = next((m for m in leg if _ladder_step(m) == "200 INVITE" and m.src == target), None)
        sdp = parse_sdp_audio(answer.message.body) if answer is not None and answer.message.body else None
        found.append(WireCall(sip_call_id, invite.ts_ns, leg, (sdp.address, sdp.port) if sdp else None,
                              _contact_address(answer.message.headers.get("contact")) if answer else None))
    return sorted(found, key=lambda c: c.invited_ns)


def answered_by(calls: Sequence[WireCall]) -> dict[str, int]:
    """How many of the calls each far end (the Contact of its 200 OK) answered."""
    return dict(sorted(Counter(c.answered_by for c in calls if c.answered_by).items()))


def sampled_calls(wire: WireAnalysis, target: tuple[str, int], *, sampled: Callable[[tuple[str, int]], bool],
                  limit: int | None = None, bye_from_target: bool = True, prompt: str | None = None,
                  prompt_pcm: np.ndarray | None = None, packets: int = 0) -> dict:
    """Judge, from the capture alone, the calls to `target` whose far-end media address is
    `sampled` (the first `limit` of them): a complete ladder with the BYE from the target (or
    from the caller), one stream from the far end without loss, and, given a prompt, the
    prompt heard in at least 95 % of the `packets` it takes."""
    calls = wire_calls(wire, target)
    next_use: dict[str, int] = {}  # a media address serves the next call from that call's INVITE on
    last: dict[tuple[str, int], WireCall] = {}
    for call in calls:
        if call.media in last:
            next_use[last[call.media].sip_call_id] = call.invited_ns
        last[call.media] = call
    sample = [c for c in calls if c.media is not None and sampled(c.media)][:limit]
    matcher = PromptMatcher({prompt: prompt_pcm}) if prompt else None
    failures, deviations, lost = [], [], 0
    for call in sample:
        problem, stream = _sampled_call(wire, call, next_use.get(call.sip_call_id), target, bye_from_target)
        if stream is not None:
            lost += stream.stats.lost
            ts = np.array([f.ts_ns for f in stream.packets], dtype=np.int64)
            deviations.append(np.abs(np.diff(ts) / 1e6 - 20.0))
            if matcher is not None and problem is None:
                heard_packets = sum(1 for p in label_packets(stream, matcher=matcher)
                                    if p.kind == "prompt" and p.prompt == prompt)
                if heard_packets < 0.95 * packets:
                    problem = f"{prompt} heard in {heard_packets} packets of the {packets} it takes"
        if problem is not None:
            failures.append(f"{call.sip_call_id}: {problem}")
    dev = np.concatenate(deviations) if deviations else np.zeros(1)
    return {"calls": len(sample), "verified": len(sample) - len(failures),
            "failures": failures[:5], "rtp_lost": lost,
            "interval_deviation_ms_p99": round(float(np.percentile(dev, 99)), 3),
            "interval_deviation_ms_max": round(float(dev.max()), 3)}


def _sampled_call(wire: WireAnalysis, call: WireCall, until_ns: int | None, target: tuple[str, int],
                  bye_from_target: bool):
    """(problem or None, the far end's RTP stream to the caller or None) for one sampled call
    whose media address serves the next call from `until_ns` on."""
    seen = {_ladder_step(m) for m in call.messages}
    missing = [step for step in ("INVITE", "200 INVITE", "ACK", "BYE", "200 BYE") if step not in seen]
    if missing:
        return f"not on the wire: {', '.join(missing)}", None
    bye = next(m for m in call.messages if _ladder_step(m) == "BYE")
    if (bye.src == target) != bye_from_target:
        return f"the BYE came from {'the caller' if bye_from_target else 'the far end'}", None
    end = until_ns or float("inf")
    streams = [s for s in wire.streams(src=call.media) if call.invited_ns <= s.start_ts_ns < end]
    if len(streams) != 1:
        return f"{len(streams)} RTP streams from the far end's {call.media[0]}:{call.media[1]}", None
    stream = streams[0]
    if stream.stats.lost or stream.stats.sequence_errors:
        return f"{stream.stats.lost} RTP packets lost, {stream.stats.sequence_errors} sequence errors", stream
    return None, stream


def _ladder_step(msg) -> str:
    m = msg.message
    return m.method if hasattr(m, "method") else f"{m.status} {m.cseq[1]}"


def _contact_address(contact: str | None) -> str | None:
    """host:port of a Contact header's URI (None when it has none or cannot be read)."""
    try:
        host, port = SipUri.parse(uri_of(contact)).address
    except (UriError, TypeError, AttributeError):
        return None
    return f"{host}:{port}"


# ---- helpers --------------------------------------------------------------------------------
def _median_tone(pcm) -> float | None:
    """The median tone frequency of the 20 ms frames of `pcm` that hold one, or None."""
    freqs = [f for i in range(0, len(pcm) - 160, 160) if (f := tone_frequency(pcm[i:i + 160])) is not None]
    return float(np.median(freqs)) if freqs else None


def _in_order(needle: str, haystack: str) -> bool:
    """Whether the characters of `needle` appear in `haystack` in order."""
    it = iter(haystack)
    return all(ch in it for ch in needle)


def _check_registry() -> None:
    """Every field of Expect is an expectation or an option of one (a field without a judge
    would be accepted in a profile and never checked)."""
    covered = set(_REGISTRY) | {o for entry in _REGISTRY.values() for o in entry.options}
    loose = [f.name for f in fields(Expect) if f.name not in covered]
    if loose:
        raise TypeError(f"Expect fields without a judge: {loose}")


_check_registry()
