"""The stub's journal as typed queries: invocations with their responses, the legs, and the
problems a run hit (the root causes a user needs to see: handler failures, responses the
service rejected, failed actions, media and call placement failures).

Reads the JSON form of the journal (`Stub.journal_json()`, `journal.json` in a run folder,
`GET /_harness/journal`), so it serves embedded, served and finished runs alike.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

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


@dataclass
class JournalView:
    """Queries over journal entries (the dicts of `Stub.journal_json()`)."""

    entries: Sequence[dict] = field(default_factory=list)

    def of_kind(self, *kinds: str, transaction_id: str | None = None) -> list[dict]:
        """The raw entries of these kinds (of one transaction when given)."""
        return [e for e in self.entries if e["kind"] in kinds
                and (transaction_id is None or e.get("transaction_id") == transaction_id)]

    def invocations(self, event_type: str | None = None,
                    transaction_id: str | None = None) -> list[Invocation]:
        """The handler's invocations in order, each with its response."""
        responses = {(e["transaction_id"], e["sequence"]): e for e in self.of_kind("response")}
        out = []
        for e in self.of_kind("invocation", transaction_id=transaction_id):
            kind = e["event"].get("InvocationEventType")
            if event_type is not None and kind != event_type:
                continue
            r = responses.get((e["transaction_id"], e["sequence"]))
            response = None if r is None else HandlerResponse(
                r["time"], r.get("response"), bool(r.get("failed")), r.get("attempts", 0),
                tuple(r.get("errors") or ()), r.get("duration_ms", 0.0), r.get("invalid_json"))
            out.append(Invocation(e["time"], e["transaction_id"], e["sequence"], kind, e["event"],
                                  bool(e.get("ignore_response")), response))
        return out

    def event_types(self, transaction_id: str | None = None) -> list[str]:
        """The InvocationEventTypes the handler got, in order."""
        return [i.event_type for i in self.invocations(transaction_id=transaction_id)]

    def legs(self, transaction_id: str | None = None) -> list[CallLeg]:
        """Every SIP dialog the stub took part in, in the order they began."""
        return [CallLeg(e["transaction_id"], e["call_id"], e["sip_call_id"],
                        "inbound" if e["kind"] == "call_arrived" else "outbound",
                        e.get("to") or e.get("target", ""), e.get("rtp_port", 0))
                for e in self.of_kind("call_arrived", "call_placed", transaction_id=transaction_id)]

    def transactions(self) -> list[str]:
        """TransactionIds in the order they first appear."""
        return list(dict.fromkeys(e["transaction_id"] for e in self.entries
                                  if e.get("transaction_id")))

    def transaction_of(self, sip_call_id: str) -> str | None:
        """The TransactionId of the dialog with this SIP Call-ID (None: not the stub's)."""
        return next((leg.transaction_id for leg in self.legs() if leg.sip_call_id == sip_call_id), None)

    def problems(self) -> list[Problem]:
        """What went wrong, in time order; the same thing happening again is counted."""
        return _merge(self._problems())

    def _problems(self) -> Iterable[Problem]:
        invocations = self.invocations()
        by_key = {(i.transaction_id, i.sequence): i for i in invocations}
        previous: dict[str, Invocation] = {}
        media: dict[str | None, dict] = {}  # a media failure waits for the ACTION_FAILED it causes
        for entry in self.entries:
            kind, tx = entry["kind"], entry.get("transaction_id")
            if kind == "invocation":
                inv = by_key.get((tx, entry["sequence"]))
                if inv is not None:
                    yield from _invocation_problems(inv, previous.get(tx), media.pop(tx, None)
                                                    if inv.event_type == ACTION_FAILED else None)
                    previous[tx] = inv
            elif kind == "response":
                inv = by_key.get((tx, entry["sequence"]))
                yield from _response_problems(entry, inv)
            elif kind == "media_failed":
                if tx in media:
                    yield _media_problem(media[tx])
                media[tx] = entry
            elif kind == "place_failed":
                yield Problem(entry["time"], kind, f"the stub could not place {entry.get('call_id')}: "
                              f"{entry.get('reason')}", tx)
            elif kind == "internal_error":
                during = f" running {entry['command']}" if entry.get("command") else ""
                yield Problem(entry["time"], kind, f"internal error in the stub{during}: {entry.get('error')}", tx)
            elif kind == "sip_rejected":
                yield Problem(entry["time"], kind, f"the stub refused a call with SIP {entry.get('status')}: "
                              f"{entry.get('reason')}", tx)
        for entry in media.values():
            yield _media_problem(entry)


def _media_problem(entry: dict) -> Problem:
    return Problem(entry["time"], "media_failed", f"media failed on leg {entry.get('call_id')}: "
                   f"{entry.get('reason')}", entry.get("transaction_id"))


def _describe(inv: Invocation | None) -> str:
    return f"{inv.event_type} (Sequence {inv.sequence})" if inv is not None else "an invocation"


def _invocation_problems(inv: Invocation, previous: Invocation | None,
                         media: dict | None) -> Iterable[Problem]:
    """The problem an invocation reports; an ACTION_FAILED says what the stub saw (`media`)."""
    if inv.event_type == INVALID_LAMBDA_RESPONSE:
        yield Problem(inv.time, "invalid_response",
                      f"INVALID_LAMBDA_RESPONSE: the handler's response to {_describe(previous)} "
                      f"was rejected: {inv.error}", inv.transaction_id, inv.event.get("ErrorType"))
    elif inv.event_type == ACTION_FAILED:
        action = inv.action_data.get("Type", "an action")
        seen = f" ({media.get('reason')})" if media else ""
        yield Problem(inv.time, "action_failed", f"ACTION_FAILED: {action} failed: {inv.error}{seen}",
                      inv.transaction_id, inv.action_data.get("ErrorType"))


def _response_problems(entry: dict, inv: Invocation | None) -> Iterable[Problem]:
    tx = entry.get("transaction_id")
    if entry.get("failed"):
        errors = entry.get("errors") or [{}]
        distinct = list(dict.fromkeys(f"{e.get('errorType', 'Error')}: {e.get('errorMessage', '')}"
                                      for e in errors))
        attempts = entry.get("attempts", len(errors))
        trace = errors[-1].get("stackTrace") or []
        yield Problem(entry["time"], "handler_error",
                      f"the handler failed on {_describe(inv)} after {attempts} attempt"
                      f"{'s' if attempts != 1 else ''}: {'; '.join(distinct)}", tx,
                      errors[-1].get("errorType"), "\n".join(trace) if isinstance(trace, list) else str(trace))
    elif entry.get("invalid_json") is not None:
        yield Problem(entry["time"], "handler_error",
                      f"the handler's response to {_describe(inv)} is not JSON: {entry['invalid_json']}",
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
