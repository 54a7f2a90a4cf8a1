"""Fidelity against the real service: a trace of real invocations (`sip_harness.trace`)
compared, field by field, with the emulator's invocations for the same call flow.

Both sides become the same shape: per transaction (in order of its first invocation), its
invocations in order, each `{"time", "event", "response"}`. Ids (TransactionId, CallId, ...)
and phone numbers are replaced by placeholders numbered in order of first appearance, so
they are compared by the role they play, not their value; times are compared by presence and
type only, and the gaps between invocations within a timing window. Invocations are aligned
by their kind (InvocationEventType, and the ActionData Type of action results), so an order
change, a missing or an extra invocation each shows as itself, and fields are compared on
the invocations aligned. Every difference carries its JSON path.
"""
from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .journal_view import JournalView

MARK = "sip_harness_trace"
#: keys whose values are identifiers: compared by role (first, second, ... seen)
ID_KEYS = frozenset({"TransactionId", "CallId", "SipMediaApplicationId", "SipRuleId", "AwsAccountId",
                     "MeetingId", "AttendeeId", "JoinToken", "ExternalUserId", "VoiceConnectorId",
                     "request_id", "function"})
#: keys whose values are phone numbers or addresses (compared by role, like ids)
ADDRESS_KEYS = frozenset({"To", "From", "CallerIdNumber", "Uri"})
_TIME_KEY = re.compile(r"(Time|Timestamp|TimeInMilliseconds)$")
_E164 = re.compile(r"^\+[1-9]\d{5,14}$")
#: gaps between invocations may differ by this much (ms) plus TIMING_RATIO of the larger one
TIMING_WINDOW_MS = 1000.0
TIMING_RATIO = 0.5


class TraceError(ValueError):
    """A trace file without a single readable invocation."""


@dataclass(frozen=True)
class Difference:
    """One difference: where (a JSON path), what the trace has and what the emulator has."""

    path: str
    trace: object
    emulator: object
    note: str = ""

    def describe(self) -> str:
        text = f"{self.path}: trace {_show(self.trace)}, emulator {_show(self.emulator)}"
        return text + (f" ({self.note})" if self.note else "")

    def to_json(self) -> dict:
        return {"path": self.path, "trace": self.trace, "emulator": self.emulator, "note": self.note}


_MISSING = "<missing>"


def _show(value) -> str:
    if value is _MISSING:
        return "has none"
    return json.dumps(value, default=str)[:200]


# ---- reading both sides ------------------------------------------------------------------
def read_trace(path: Path) -> list[dict]:
    """The traced invocations in a file: JSON lines as `traced` writes them, lines of a
    CloudWatch Logs export or console copy with the JSON after a prefix, or the JSON output of
    `aws logs filter-log-events` (its `events[].message`)."""
    text = Path(path).read_text(errors="replace")
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        whole = None
    if isinstance(whole, dict) and isinstance(whole.get("events"), list):
        lines = [e.get("message", "") for e in whole["events"] if isinstance(e, dict)]
    else:
        lines = text.splitlines()
    records = [r for r in (_record(line) for line in lines) if r is not None]
    if not records:
        raise TraceError(f"{path}: no line with a {MARK} record")
    return sorted(records, key=lambda r: r.get("time", 0))


def _record(line: str) -> dict | None:
    if MARK not in line:
        return None
    start = line.find("{")
    try:
        record = json.loads(line[start:]) if start >= 0 else None
    except json.JSONDecodeError:
        return None
    if isinstance(record, dict) and isinstance(record.get("message"), str):
        return _record(record["message"])
    if not isinstance(record, dict) or not isinstance(record.get("event"), dict):
        return None
    return record


def journal_records(journal: Iterable[dict]) -> list[dict]:
    """The emulator's invocations from a stub journal, as trace records."""
    records = []
    for inv in JournalView(list(journal)).invocations():
        record = {MARK: 1, "time": inv.time, "event": inv.event}
        answer = inv.response
        if answer is not None and answer.failed:
            record["error"] = "; ".join(str(e) for e in answer.errors) or "handler failed"
        else:
            record["response"] = answer.response if answer is not None else None
        records.append(record)
    return records


def by_transaction(records: Iterable[dict]) -> list[list[dict]]:
    """Records grouped by their event's TransactionId, transactions in order of first record."""
    groups: dict[str, list[dict]] = {}
    for record in sorted(records, key=lambda r: r.get("time", 0)):
        tx = (record["event"].get("CallDetails") or {}).get("TransactionId", "")
        groups.setdefault(tx, []).append(record)
    return list(groups.values())


# ---- comparing ----------------------------------------------------------------------------
def kind(record: dict) -> str:
    """What an invocation is: its event type, with the action type of an action result."""
    event = record["event"]
    name = str(event.get("InvocationEventType"))
    action = (event.get("ActionData") or {}).get("Type")
    return f"{name} ({action})" if action and name.startswith("ACTION_") else name


def compare(trace: list[dict], emulator: list[dict], window_ms: float = TIMING_WINDOW_MS
            ) -> list[Difference]:
    """Every difference between a trace and the emulator's records of the same call flow."""
    differences: list[Difference] = []
    left, right = by_transaction(trace), by_transaction(emulator)
    for t in range(max(len(left), len(right))):
        path = f"$.transactions[{t}]"
        if t >= len(right):
            differences.append(Difference(path, [kind(r) for r in left[t]], _MISSING, "extra transaction in the trace"))
        elif t >= len(left):
            differences.append(Difference(path, _MISSING, [kind(r) for r in right[t]], "transaction missing from the trace"))
        else:
            differences += _compare_transaction(path, left[t], right[t], window_ms)
    return differences


def _compare_transaction(path: str, trace: list[dict], emulator: list[dict], window_ms: float
                         ) -> list[Difference]:
    found: list[Difference] = []
    kinds_t, kinds_e = [kind(r) for r in trace], [kind(r) for r in emulator]
    if kinds_t != kinds_e:
        note = "the same invocations in another order" if sorted(kinds_t) == sorted(kinds_e) else \
            "the invocations differ"
        found.append(Difference(f"{path}.order", kinds_t, kinds_e, note))
    ids_t, ids_e = _Roles(), _Roles()
    canon_t = [_canonical(r, ids_t) for r in trace]
    canon_e = [_canonical(r, ids_e) for r in emulator]
    matcher = difflib.SequenceMatcher(a=kinds_t, b=kinds_e, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            for i, j in zip(range(i1, i2), range(j1, j2)):
                where = f"{path}.invocations[{i}]"
                found += _diff(where, canon_t[i], canon_e[j])
                if i > i1 or (i and j and kinds_t[i - 1] == kinds_e[j - 1]):  # gaps of aligned pairs only
                    found += _timing(where, trace[i - 1], trace[i], emulator[j - 1], emulator[j], window_ms)
            continue
        for i in range(i1, i2):
            found.append(Difference(f"{path}.invocations[{i}]", kinds_t[i], _MISSING,
                                    "extra invocation in the trace"))
        for j in range(j1, j2):
            found.append(Difference(f"{path}.invocations[{i1}]", _MISSING, kinds_e[j],
                                    f"the emulator's invocation {j} is missing from the trace"))
    return found


def _timing(path: str, prev_t: dict, cur_t: dict, prev_e: dict, cur_e: dict, window_ms: float
            ) -> list[Difference]:
    gap_t = (cur_t.get("time", 0) - prev_t.get("time", 0)) * 1000
    gap_e = (cur_e.get("time", 0) - prev_e.get("time", 0)) * 1000
    allowed = window_ms + TIMING_RATIO * max(abs(gap_t), abs(gap_e))
    if abs(gap_t - gap_e) <= allowed:
        return []
    return [Difference(f"{path}.time", round(gap_t, 1), round(gap_e, 1),
                       f"ms after the previous invocation; more apart than the {allowed:.0f} ms window")]


class _Roles:
    """Values replaced by the role they play: `<CallId 1>`, `<number 2>`, in order of first sight."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, str], str] = {}

    def name(self, family: str, value: str) -> str:
        key = (family, value)
        if key not in self.seen:
            count = sum(1 for f, _ in self.seen if f == family) + 1
            self.seen[key] = f"<{family} {count}>"
        return self.seen[key]


def _canonical(record: dict, roles: _Roles) -> dict:
    """The parts of a record that are compared, with ids and numbers by role and times as types."""
    kept = {"event": record["event"]}
    if "error" in record:
        kept["error"] = "<handler error>"
    else:
        kept["response"] = record.get("response")
    return _walk(kept, roles, None)


def _walk(value, roles: _Roles, key: str | None):
    if isinstance(value, dict):
        return {k: _walk(v, roles, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, roles, key) for v in value]
    if key is not None and _TIME_KEY.search(key):
        return f"<time {type(value).__name__}>"
    if isinstance(value, str) and key in ID_KEYS:
        return roles.name(key, value)
    if isinstance(value, str) and (key in ADDRESS_KEYS or _E164.match(value)):
        return roles.name("number", value)
    return value


def _diff(path: str, a, b) -> list[Difference]:
    if isinstance(a, dict) and isinstance(b, dict):
        found = []
        for k in list(a) + [k for k in b if k not in a]:
            where = f"{path}.{k}" if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k) else f"{path}[{json.dumps(k)}]"
            if k not in b:
                found.append(Difference(where, a[k], _MISSING, "field missing from the emulator's"))
            elif k not in a:
                found.append(Difference(where, _MISSING, b[k], "field missing from the trace"))
            else:
                found += _diff(where, a[k], b[k])
        return found
    if isinstance(a, list) and isinstance(b, list):
        found = [d for i, (x, y) in enumerate(zip(a, b)) for d in _diff(f"{path}[{i}]", x, y)]
        if len(a) != len(b):
            found.append(Difference(f"{path}.length", len(a), len(b)))
        return found
    if a != b or type(a) is not type(b):
        return [Difference(path, a, b)]
    return []


def report_json(trace_path: str, profile_path: str, differences: list[Difference]) -> dict:
    """A fidelity report: what was compared and every difference (to send to the project)."""
    return {"schema": "sip-harness/fidelity-report/1", "trace": trace_path, "profile": profile_path,
            "differences": [d.to_json() for d in differences]}
