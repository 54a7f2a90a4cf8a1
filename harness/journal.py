"""The stub's journal: what it did and what the handler saw, one JSON line per entry.

Entries are the typed ones of `journal_entries`; `journal_view.JournalView` reads them back.

Each entry is serialised once, when it is noted, so serving a page is joining ready lines,
never walking live objects. The newest entries are kept while they fit in `max_bytes` (the
oldest go first); every entry has an index, counted from the first ever noted, so a reader
pages on with `since` and sees how many were dropped. With a `path`, each line is also
appended to that file as it is noted (`sip-harness serve` keeps its journal on disk).

Bad SIP is not journaled per datagram: `MalformedTally` counts it per reason and source.
"""
from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter, deque
from pathlib import Path

from .journal_entries import Entry

log = logging.getLogger(__name__)
DEFAULT_MAX_BYTES = 32 * 1024 * 1024


class Journal:
    """Entries as JSON lines; the newest kept within `max_bytes`, all appended to `path`."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES, path: Path | None = None):
        self.max_bytes = max_bytes
        self.path = path
        self._lines: deque[bytes] = deque()
        self._bytes = 0
        self.total = 0  # entries ever noted
        self.first = 0  # index of the oldest entry kept
        self.write_error: str | None = None
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644) \
            if path is not None else None

    def note(self, entry: Entry) -> dict:
        """Add one entry (stamped with the wall-clock time); its JSON form."""
        data = entry.to_json(time=time.time())
        line = json.dumps(data, default=str).encode()
        self._lines.append(line)
        self._bytes += len(line) + 1
        self.total += 1
        while self._bytes > self.max_bytes and len(self._lines) > 1:
            self._bytes -= len(self._lines.popleft()) + 1
            self.first += 1
        if self._fd is not None:
            self._append(line + b"\n")
        return data

    def _append(self, data: bytes) -> None:
        try:
            os.write(self._fd, data)
        except OSError as exc:  # a full disk: the journal stays in memory, the file stops
            self.write_error = f"{self.path}: {exc}"
            log.error("journal file no longer written: %s", self.write_error)
            os.close(self._fd)
            self._fd = None

    @property
    def kept_bytes(self) -> int:
        return self._bytes

    def page(self, since: int = 0, limit: int | None = None) -> tuple[list[bytes], int]:
        """The lines of entries `since` on (from the oldest kept when those are gone), at most
        `limit`, and the index to ask for next. Safe to call from another thread."""
        lines, first = list(self._lines), self.first  # one atomic copy under the GIL
        start = max(since, first) - first
        chosen = lines[start:start + limit] if limit is not None else lines[start:]
        return chosen, first + start + len(chosen)

    def entries(self, since: int = 0) -> list[dict]:
        """The entries `since` on, as dicts."""
        return [json.loads(line) for line in self.page(since)[0]]

    def clear(self) -> None:
        """Forget what is kept (the file keeps it); indexes go on counting."""
        self._lines.clear()
        self._bytes = 0
        self.first = self.total

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


#: Distinct sources counted one by one; the rest are counted together.
MAX_SOURCES = 1000
OTHER_SOURCES = "other"


class MalformedTally:
    """Bad SIP counted per reason (the parse error's kind) and per source host."""

    def __init__(self):
        self.total = 0
        self.answered = 0
        self.by_reason: Counter[str] = Counter()
        self.by_source: Counter[str] = Counter()

    def count(self, kind: str, source_host: str, answered: bool) -> bool:
        """Count one bad message; True when it is the first of its reason."""
        self.total += 1
        self.answered += answered
        first = kind not in self.by_reason
        self.by_reason[kind] += 1
        key = source_host if source_host in self.by_source or len(self.by_source) < MAX_SOURCES \
            else OTHER_SOURCES
        self.by_source[key] += 1
        return first

    def to_json(self) -> dict:
        return {"total": self.total, "answered": self.answered,
                "by_reason": dict(self.by_reason.most_common()),
                "by_source": dict(self.by_source.most_common())}
