"""The stub's journal as typed queries: invocations with their responses, the legs, and the
problems a run hit (the root causes a user needs to see: handler failures, responses the
service rejected, failed actions, media and call placement failures).

Reads the JSON form of the journal (`Stub.journal_json()`, `journal.json` in a run folder,
`GET /_harness/journal`), so it serves embedded, served and finished runs alike.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar

from .journal_entries import (CallArrived, CallPlaced, Entry, HandlerInvoked, HandlerResponded,
                              InternalError, MediaFailed, PlaceFailed, RecordingStopped,
                              SipRejected, parse_entry)

INVALID_LAMBDA_RESPONSE = "INVALID_LAMBDA_RESPONSE"
ACTION_FAILED = "ACTION_FAILED"


def event_error(event: dict) -> str | None:
    """'ErrorType: ErrorMessage' of an ACTION_FAILED (in its ActionData) or an
    INVALID_LAMBDA_RESPONSE (at the top) invocation event; None for the others."""
    source = (event.get("ActionData") or {}) if event.get("InvocationEventType") == ACTION_FAILED else event
    if "ErrorType" not in source:
        return None
    return f"{source['ErrorType']}: {source.get('ErrorMessage', '')}"


@dataclass(frozen=True)
class HandlerResponse:
    """What the handler returned for one invocation (after its retries)."""

    time: float
    response: object
    failed: bool
    attempts: int
    errors: tuple[dict, ...]
    duration_ms: float
    invalid_json: str | None

    @property
    def actions(self) -> list:
        """The response's Actions (empty when there are none or it is not an object)."""
        actions = self.response.get("Actions") if isinstance(self.response, dict) else None
        return actions if isinstance(actions, list) else []


@dataclass(frozen=True)
class Invocation:
    """One invocation of the handler: the event it got and what it answered."""

    time: float
    transaction_id: str
    sequence: int
    event_type: str
    event: dict
    ignored: bool
    response: HandlerResponse | None

    @property
    def action_data(self) -> dict:
        return self.event.get("ActionData") or {}

    @property
    def action_type(self) -> str | None:
        """The Type of its ActionData (PlayAudio, CallUpdateRequest, Hangup, ...)."""
        return self.action_data.get("Type")

    @property
    def arguments(self) -> dict | None:
        """The Arguments of a CALL_UPDATE_REQUESTED or NEW_OUTBOUND_CALL."""
        return (self.action_data.get("Parameters") or {}).get("Arguments")

    @property
    def received_digits(self) -> str | None:
        """The ReceivedDigits its ActionData reports (GetDigits, ReceiveDigits)."""
        return self.action_data.get("ReceivedDigits")

    @property
    def ends_transaction(self) -> bool:
        """A HANGUP after which no leg is connected: the transaction's last invocation."""
        participants = (self.event.get("CallDetails") or {}).get("Participants") or []
        return self.event_type == "HANGUP" and all(p.get("Status") == "Disconnected"
                                                   for p in participants)

    @property
    def error(self) -> str | None:
        """'ErrorType: ErrorMessage' of an ACTION_FAILED or INVALID_LAMBDA_RESPONSE event."""
        return event_error(self.event)


@dataclass(frozen=True)
class CallLeg:
    """A SIP dialog of a transaction: a call that arrived (inbound) or one the stub placed."""

    transaction_id: str
    call_id: str
    sip_call_id: str
    direction: str  # "inbound" or "outbound"
    to: str
    rtp_port: int


@dataclass(frozen=True)
class Problem:
    """Something that went wrong, in the user's own terms: `summary` is one line, `detail`
    what goes with it (a traceback), `count` how many times the same thing happened."""

    time: float
    kind: str  # handler_error, invalid_response, action_failed, media_failed, ...
    summary: str
    transaction_id: str | None = None
    error_type: str | None = None
    detail: str = ""
    count: int = 1

    def to_json(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        """The summary, with how often it happened."""
        return self.summary + (f" (×{self.count})" if self.count > 1 else "")


E = TypeVar("E", bound=Entry)


@dataclass
class JournalView:
    """Queries over journal entries (the dicts of `Stub.journal_json()`), read into their
    typed form (`journal_entries`); entries of a kind this version does not know are skipped."""

    entries: Sequence[dict] = field(default_factory=list)

    def __post_init__(self):
        self.typed: list[Entry] = [e for e in map(parse_entry, self.entries) if e is not None]

    @classmethod
    def read(cls, path: str | Path) -> "JournalView":
        """The journal of a file: `journal.json` (a list) or `journal.jsonl` (a line each)."""
        text = Path(path).read_text()
        if text.lstrip().startswith("["):
            return cls(json.loads(text))
        return cls([json.loads(line) for line in text.splitlines() if line.strip()])

    def of(self, *types: type[E], transaction_id: str | None = None) -> list[E]:
        """The entries of these types in order (of one transaction when given)."""
        return [e for e in self.typed if isinstance(e, types)
                and (transaction_id is None or e.transaction_id == transaction_id)]

    def invocations(self, event_type: str | None = None,
                    transaction_id: str | None = None) -> list[Invocation]:
        """The handler's invocations in order, each with its response."""
        responses = {(r.transaction_id, r.sequence): r for r in self.of(HandlerResponded)}
        out = []
        for e in self.of(HandlerInvoked, transaction_id=transaction_id):
            if event_type is not None and e.event_type != event_type:
                continue
            r = responses.get((e.transaction_id, e.sequence))
            response = None if r is None else HandlerResponse(
                r.time, r.response, r.failed, r.attempts, tuple(r.errors), r.duration_ms,
                r.invalid_json)
            out.append(Invocation(e.time, e.transaction_id, e.sequence, e.event_type, e.event,
                                  e.ignore_response, response))
        return out

    def event_types(self, transaction_id: str | None = None) -> list[str]:
        """The InvocationEventTypes the handler got, in order."""
        return [i.event_type for i in self.invocations(transaction_id=transaction_id)]

    def legs(self, transaction_id: str | None = None) -> list[CallLeg]:
        """Every SIP dialog the stub took part in, in the order they began."""
        return [CallLeg(e.transaction_id, e.call_id, e.sip_call_id,
                        "inbound" if isinstance(e, CallArrived) else "outbound",
                        e.to if isinstance(e, CallArrived) else e.target, e.rtp_port)
                for e in self.of(CallArrived, CallPlaced, transaction_id=transaction_id)]

    def leg(self, sip_call_id: str) -> CallLeg | None:
        """The dialog with this SIP Call-ID (None: not one of the stub's)."""
        return next((leg for leg in self.legs() if leg.sip_call_id == sip_call_id), None)

    def rtp_port(self, sip_call_id: str) -> int | None:
        """The stub's RTP port on the dialog with this SIP Call-ID."""
        leg = self.leg(sip_call_id)
        return leg.rtp_port if leg is not None else None

    def arrivals(self, transaction_id: str | None = None) -> list[CallArrived]:
        """The calls that arrived (INVITEs routed to an SMA), in order."""
        return self.of(CallArrived, transaction_id=transaction_id)

    def transactions(self) -> list[str]:
        """TransactionIds in the order they first appear."""
        return list(dict.fromkeys(e.transaction_id for e in self.typed if e.transaction_id))

    def transaction_of(self, sip_call_id: str) -> str | None:
        """The TransactionId of the dialog with this SIP Call-ID (None: not the stub's)."""
        leg = self.leg(sip_call_id)
        return leg.transaction_id if leg is not None else None

    def recordings(self) -> list[Path]:
        """The files the stub's recordings were written to, in order."""
        return [Path(e.path) for e in self.of(RecordingStopped)]

    def problems(self) -> list[Problem]:
        """What went wrong, in time order; the same thing happening again is counted."""
        return _merge(self._problems())

    def _problems(self) -> Iterable[Problem]:
        invocations = self.invocations()
        by_key = {(i.transaction_id, i.sequence): i for i in invocations}
        previous: dict[str | None, Invocation] = {}
        media: dict[str | None, MediaFailed] = {}  # a media failure waits for its ACTION_FAILED
        for entry in self.typed:
            tx = entry.transaction_id
            if isinstance(entry, HandlerInvoked):
                inv = by_key.get((tx, entry.sequence))
                if inv is not None:
                    yield from _invocation_problems(inv, previous.get(tx), media.pop(tx, None)
                                                    if inv.event_type == ACTION_FAILED else None)
                    previous[tx] = inv
            elif isinstance(entry, HandlerResponded):
                yield from _response_problems(entry, by_key.get((tx, entry.sequence)))
            elif isinstance(entry, MediaFailed):
                if tx in media:
                    yield _media_problem(media[tx])
                media[tx] = entry
            elif isinstance(entry, PlaceFailed):
                yield Problem(entry.time, entry.kind, f"the stub could not place {entry.call_id}: "
                              f"{entry.reason}", tx)
            elif isinstance(entry, InternalError):
                during = f" running {entry.command}" if entry.command else ""
                yield Problem(entry.time, entry.kind,
                              f"internal error in the stub{during}: {entry.error}", tx)
            elif isinstance(entry, SipRejected):
                yield Problem(entry.time, entry.kind, f"the stub refused a call with SIP "
                              f"{entry.status}: {entry.reason}", tx)
        for entry in media.values():
            yield _media_problem(entry)


def _media_problem(entry: MediaFailed) -> Problem:
    return Problem(entry.time, entry.kind, f"media failed on leg {entry.call_id}: {entry.reason}",
                   entry.transaction_id)


def _describe(inv: Invocation | None) -> str:
    return f"{inv.event_type} (Sequence {inv.sequence})" if inv is not None else "an invocation"


def _invocation_problems(inv: Invocation, previous: Invocation | None,
                         media: MediaFailed | None) -> Iterable[Problem]:
    """The problem an invocation reports; an ACTION_FAILED says what the stub saw (`media`)."""
    if inv.event_type == INVALID_LAMBDA_RESPONSE:
        yield Problem(inv.time, "invalid_response",
                      f"INVALID_LAMBDA_RESPONSE: the handler's response to {_describe(previous)} "
                      f"was rejected: {inv.error}", inv.transaction_id, inv.event.get("ErrorType"))
    elif inv.event_type == ACTION_FAILED:
        action = inv.action_data.get("Type", "an action")
        seen = f" ({media.reason})" if media else ""
        yield Problem(inv.time, "action_failed", f"ACTION_FAILED: {action} failed: {inv.error}{seen}",
                      inv.transaction_id, inv.action_data.get("ErrorType"))


def _response_problems(entry: HandlerResponded, inv: Invocation | None) -> Iterable[Problem]:
    tx = entry.transaction_id
    if entry.failed:
        errors = entry.errors or [{}]
        distinct = list(dict.fromkeys(f"{e.get('errorType', 'Error')}: {e.get('errorMessage', '')}"
                                      for e in errors))
        attempts = entry.attempts or len(errors)
        trace = errors[-1].get("stackTrace") or []
        yield Problem(entry.time, "handler_error",
                      f"the handler failed on {_describe(inv)} after {attempts} attempt"
                      f"{'s' if attempts != 1 else ''}: {'; '.join(distinct)}", tx,
                      errors[-1].get("errorType"), "\n".join(trace) if isinstance(trace, list) else str(trace))
    elif entry.invalid_json is not None:
        yield Problem(entry.time, "handler_error",
                      f"the handler's response to {_describe(inv)} is not JSON: {entry.invalid_json}",
                      tx, "InvalidJson")


def _merge(problems: Iterable[Problem]) -> list[Problem]:
    """One Problem per distinct (kind, summary), at its first time, with its count."""
    merged: dict[tuple[str, str], Problem] = {}
    for p in problems:
        key = (p.kind, p.summary)
        if key in merged:
            first = merged[key]
            merged[key] = Problem(first.time, first.kind, first.summary, first.transaction_id,
                                  first.error_type, first.detail, first.count + 1)
        else:
            merged[key] = p
    return sorted(merged.values(), key=lambda p: p.time)
