"""The journal's entries, typed: one frozen dataclass per `kind` the stub notes.

An entry's JSON form is `{"time", "kind", "transaction_id", <its fields>}`: a field's JSON
name is its Python name without a trailing underscore (`from_` is "from"), an optional field
(default None) that is None is left out, and a nested dataclass is an object. The JSON Schema
of a journal (`harness/report/journal.schema.json`) is generated from these classes, so
adding a kind is adding one class here (then `python -m harness.journal_entries --write`).

`parse_entry` reads one JSON entry back into its class (None for a kind this version does
not know), which is how `journal_view.JournalView` reads a journal.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from .netem import ImpairmentRecord

SCHEMA_PATH = Path(__file__).resolve().parent / "report" / "journal.schema.json"
#: Every entry class by its kind.
ENTRY_TYPES: dict[str, type["Entry"]] = {}


@dataclass(frozen=True, kw_only=True)
class Entry:
    """What every entry has: when it was noted (wall clock, seconds) and its TransactionId
    (None for what concerns no transaction)."""

    kind: ClassVar[str] = ""
    transaction_id: str | None = None
    time: float = 0.0

    def __init_subclass__(cls, kind: str = "", **kwargs):
        super().__init_subclass__(**kwargs)
        if kind:
            cls.kind = kind
            ENTRY_TYPES[kind] = cls

    def to_json(self, time: float | None = None) -> dict:
        """The JSON form, stamped with `time` when given."""
        out = {"time": self.time if time is None else time, "kind": self.kind,
               "transaction_id": self.transaction_id}
        for f in _own_fields(type(self)):
            value = getattr(self, f.name)
            if value is None and f.default is None:
                continue
            out[_json_name(f.name)] = _plain(value)
        return out

    @classmethod
    def from_json(cls, data: dict) -> "Entry":
        """The entry of `data` (its kind's class); KeyError names a required field it lacks."""
        hints = _hints(cls)
        values = {}
        for f in _own_fields(cls):
            name = _json_name(f.name)
            if name in data:
                values[f.name] = _typed(hints[f.name], data[name])
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise KeyError(f"{cls.kind} entry without its {name!r}")
        return cls(time=data.get("time", 0.0), transaction_id=data.get("transaction_id"), **values)


def parse_entry(data: dict) -> Entry | None:
    """The typed entry of one JSON entry, or None for a kind this version does not know."""
    cls = ENTRY_TYPES.get(data.get("kind"))
    return cls.from_json(data) if cls is not None else None


# ---- calls and their SIP dialogs ---------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class CallArrived(Entry, kind="call_arrived"):
    """An INVITE matched a SIP rule: its dialog, the SMA leg (LEG-A) and the stub's RTP port."""

    sip_call_id: str
    call_id: str
    sip_media_application_id: str
    to: str
    from_: str
    rtp_port: int
    transport: str = "udp"
    srtp: bool = False


@dataclass(frozen=True, kw_only=True)
class CallPlaced(Entry, kind="call_placed"):
    """The stub sent the INVITE of a leg it places (CallAndBridge, CreateSipMediaApplicationCall)."""

    call_id: str
    sip_call_id: str
    target: str
    rtp_port: int


@dataclass(frozen=True, kw_only=True)
class CallCreated(Entry, kind="call_created"):
    """CreateSipMediaApplicationCall was accepted: the transaction and the LEG-A it places."""

    call_id: str
    to: str
    from_: str
    arguments: dict = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class PlaceFailed(Entry, kind="place_failed"):
    """A leg the stub places could not be set up (no route, no media ports)."""

    call_id: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class Answered(Entry, kind="answered"):
    """A leg answered: the stub answered an inbound leg, or a placed leg's far end did."""

    call_id: str
    sip_call_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class SipConfirmed(Entry, kind="sip_confirmed"):
    """The ACK of an inbound dialog's 200 OK arrived."""

    sip_call_id: str


@dataclass(frozen=True, kw_only=True)
class SipEnded(Entry, kind="sip_ended"):
    """A dialog is over: `by` "local" or "remote", `reason` (BYE, CANCEL, a timer), the
    final `status` when it ended without answering."""

    sip_call_id: str
    by: str
    reason: str
    status: int = 0


@dataclass(frozen=True, kw_only=True)
class SipRejected(Entry, kind="sip_rejected"):
    """The stub refused an INVITE with a SIP error `status`."""

    sip_call_id: str
    status: int
    reason: str


@dataclass(frozen=True, kw_only=True)
class SipChallenged(Entry, kind="sip_challenged"):
    """An INVITE without valid digest credentials got a challenge."""

    sip_call_id: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class SipMalformed(Entry, kind="sip_malformed"):
    """The first datagram of a reason that did not parse as SIP (the rest are counted)."""

    source: list
    reason: str
    example: str
    answered: bool


@dataclass(frozen=True, kw_only=True)
class SipMalformedSummary(Entry, kind="sip_malformed_summary"):
    """At stop: how many bad SIP messages came, by reason and by source host."""

    total: int
    answered: int
    by_reason: dict
    by_source: dict


@dataclass(frozen=True, kw_only=True)
class Held(Entry, kind="held"):
    """The far end put the leg on hold (a re-INVITE with sendonly or inactive)."""

    call_id: str


@dataclass(frozen=True, kw_only=True)
class Resumed(Entry, kind="resumed"):
    """The far end took the leg off hold."""

    call_id: str


@dataclass(frozen=True, kw_only=True)
class Hangup(Entry, kind="hangup"):
    """The engine ended a leg (BYE, or a final response of `sip_code` before an answer)."""

    call_id: str
    sip_code: int


@dataclass(frozen=True, kw_only=True)
class TransactionEnded(Entry, kind="transaction_ended"):
    """Every leg of the transaction is gone and no invocation is outstanding."""


@dataclass(frozen=True, kw_only=True)
class Draining(Entry, kind="draining"):
    """The stub stopped taking calls and ended the `calls` that were up."""

    calls: int


# ---- the handler and the API -------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class UpdateRequested(Entry, kind="update_requested"):
    """UpdateSipMediaApplicationCall was accepted with these Arguments."""

    arguments: dict


@dataclass(frozen=True, kw_only=True)
class HandlerInvoked(Entry, kind="invocation"):
    """The handler was invoked with `event` (the service's JSON); `ignore_response` for the
    informational events whose actions the service does not run."""

    sequence: int
    event: dict
    ignore_response: bool = False

    @property
    def event_type(self) -> str:
        return self.event.get("InvocationEventType", "")


@dataclass(frozen=True, kw_only=True)
class HandlerResponded(Entry, kind="response"):
    """What the handler answered invocation `sequence` (after `attempts`): its `response`, or
    `failed` with each attempt's `errors`; `invalid_json` when it could not be serialised."""

    sequence: int
    response: object = None
    failed: bool = False
    attempts: int = 0
    errors: list = field(default_factory=list)
    duration_ms: float = 0.0
    invalid_json: str | None = None
    requests: list = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class ApiRequest(Entry, kind="api_request"):
    """One request to the chime-sdk-voice API (health checks and control routes left out)."""

    method: str
    path: str
    status: int
    duration_ms: float
    operation: str | None = None
    sip_media_application_id: str | None = None
    remote: str | None = None


# ---- media ------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class MediaStarted(Entry, kind="media_started"):
    """A leg began to send `media`: "audio" (bucket, key, repeat), "silence" (duration_ms),
    "digits" (digits) or "speech" (text, voice); `token` ties it to its action."""

    call_id: str
    token: int
    media: str
    bucket: str | None = None
    key: str | None = None
    repeat: int | None = None
    duration_ms: int | None = None
    digits: str | None = None
    text: str | None = None
    voice: str | None = None

    @property
    def label(self) -> str:
        """A short label: the object's key, 'silence 500 ms', 'digits 12#', 'speech: ...'."""
        if self.media == "audio":
            return str(self.key)
        if self.media == "silence":
            return f"silence {self.duration_ms} ms"
        if self.media == "digits":
            return f"digits {self.digits}"
        if self.media == "speech":
            text = str(self.text)
            return f"speech: {text if len(text) <= 30 else text[:29] + '…'}"
        return self.media


@dataclass(frozen=True, kw_only=True)
class MediaStopped(Entry, kind="media_stopped"):
    """What a leg played was stopped (barge-in, an interruption); `token` of what it was."""

    call_id: str
    token: int | None = None


@dataclass(frozen=True, kw_only=True)
class MediaFailed(Entry, kind="media_failed"):
    """Media could not start or go on (a missing object, espeak-ng failed, a full disk)."""

    call_id: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class DtmfReceived(Entry, kind="dtmf_received"):
    """A digit from the far end: RFC 4733, SIP INFO or in-band (`source`)."""

    call_id: str
    digit: str
    duration_ms: int
    source: str


@dataclass(frozen=True, kw_only=True)
class Bridged(Entry, kind="bridged"):
    """The media of two legs were connected both ways."""

    call_id_a: str
    call_id_b: str


@dataclass(frozen=True, kw_only=True)
class RecordingStarted(Entry, kind="recording_started"):
    """A recording of a leg opened into s3://bucket/key (`track`: INCOMING, OUTGOING, BOTH)."""

    call_id: str
    bucket: str
    key: str
    track: str


@dataclass(frozen=True, kw_only=True)
class RecordingStopped(Entry, kind="recording_stopped"):
    """A recording was written to the local file `path`."""

    call_id: str
    path: str


@dataclass(frozen=True, kw_only=True)
class RecordingPaused(Entry, kind="recording_paused"):
    """PauseCallRecording: the call recording of a leg holds silence until it resumes."""

    call_id: str


@dataclass(frozen=True, kw_only=True)
class RecordingResumed(Entry, kind="recording_resumed"):
    """ResumeCallRecording: the call recording of a leg goes on."""

    call_id: str


@dataclass(frozen=True, kw_only=True)
class Impairment(Entry, kind="impairment"):
    """At stop: one datagram the network impairment dropped, delayed, duplicated or reordered."""

    packet: ImpairmentRecord


# ---- faults -----------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class InternalError(Entry, kind="internal_error"):
    """A fault in the stub itself: running an engine `command`, invoking for `sequence`, or
    setting a call up."""

    error: str
    command: str | None = None
    sequence: int | None = None


# ---- JSON form and schema ---------------------------------------------------------------------
def _json_name(name: str) -> str:
    return name.rstrip("_")


@functools.cache
def _own_fields(cls: type) -> tuple[dataclasses.Field, ...]:
    return tuple(f for f in dataclasses.fields(cls) if f.name not in ("transaction_id", "time"))


@functools.cache
def _hints(cls: type) -> dict[str, object]:
    return typing.get_type_hints(cls)


def _plain(value: object) -> object:
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    return value


def _typed(hint: object, value: object) -> object:
    """`value` (JSON) as `hint` says: a nested dataclass is built, anything else kept."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    target = args[0] if isinstance(hint, types.UnionType) and len(args) == 1 else hint
    if dataclasses.is_dataclass(target) and isinstance(value, dict):
        names = {f.name for f in dataclasses.fields(target)}
        return target(**{k: v for k, v in value.items() if k in names})
    return value


_JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean", dict: "object",
               list: "array"}


def _type_schema(hint: object) -> dict:
    if isinstance(hint, types.UnionType):
        parts = [_type_schema(a) for a in typing.get_args(hint)]
        if all(set(p) == {"type"} for p in parts):
            return {"type": [p["type"] for p in parts]}
        return {"anyOf": parts}
    if hint is type(None):
        return {"type": "null"}
    if hint is object:
        return {}
    if dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint)
        return {"type": "object", "additionalProperties": False,
                "required": [f.name for f in dataclasses.fields(hint)],
                "properties": {f.name: _type_schema(hints[f.name]) for f in dataclasses.fields(hint)}}
    if hint is float:
        return {"type": "number"}
    return {"type": _JSON_TYPES[typing.get_origin(hint) or hint]}


def _entry_schema(cls: type[Entry]) -> dict:
    hints = _hints(cls)
    properties = {"time": {"type": "number", "description": "when it was noted (Unix time, s)"},
                  "kind": {"const": cls.kind},
                  "transaction_id": {"type": ["string", "null"]}}
    required = ["time", "kind", "transaction_id"]
    for f in _own_fields(cls):
        name = _json_name(f.name)
        properties[name] = _type_schema(hints[f.name])
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            required.append(name)
    return {"description": " ".join((cls.__doc__ or "").split()), "type": "object",
            "additionalProperties": False, "required": required, "properties": properties}


def json_schema() -> dict:
    """The JSON Schema of a journal (a list of entries; `$defs/entry` is one JSON line)."""
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://sip-harness/journal.schema.json",
            "title": "sip-harness journal",
            "description": "What the stub did and what the handler saw: journal.json in a run "
                           "folder (a list), journal.jsonl of `serve` (one entry a line), "
                           "GET /_harness/journal. Generated from harness/journal_entries.py.",
            "type": "array", "items": {"$ref": "#/$defs/entry"},
            "$defs": {"entry": {"oneOf": [{"$ref": f"#/$defs/{k}"} for k in ENTRY_TYPES]},
                      **{kind: _entry_schema(cls) for kind, cls in ENTRY_TYPES.items()}}}


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2) + "\n"


def main(argv: list[str]) -> int:
    if "--write" in argv:
        SCHEMA_PATH.write_text(schema_text())
    else:
        sys.stdout.write(schema_text())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
