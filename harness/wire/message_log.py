"""SIP messages from a user agent's own message log, for the calls whose SIP a capture cannot
read (SIP over TLS). Each line of the log is one JSON object: `time` (seconds since the
epoch), `direction` (TX or RX), `transport`, `src`, `dst` ([host, port]) and `message`
(the SIP text), as the caller's workers write it (`harness.caller.worker.MessageLog`).

The messages become `SipOnWire` entries placed in the capture's frame order by their time:
a logged message's `number` is that of the last capture frame at or before it, so RTP
announced in its SDP is looked for after it, as for a captured message.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from harness.sip.message import SipParseError, parse_message
from harness.wire.sip_ladder import SipOnWire

#: The transport name of a logged message (its ladder says where it came from).
LOGGED = " (log)"


def read_message_logs(paths: Iterable[Path]) -> list[dict]:
    """Every entry of the logs named, in time order; unreadable lines are skipped."""
    entries = []
    for path in paths:
        for line in Path(path).read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(entry, dict) and {"time", "src", "dst", "message"} <= entry.keys():
                entries.append(entry)
    return sorted(entries, key=lambda e: e["time"])


def logged_messages(entries: list[dict], frame_numbers: np.ndarray, frame_ts_ns: np.ndarray
                    ) -> list[SipOnWire]:
    """The log's SIP messages as `SipOnWire`, numbered into the capture whose frames have
    `frame_numbers` at `frame_ts_ns` (sorted by time)."""
    found = []
    for entry in entries:
        try:
            message = parse_message(entry["message"].encode())
        except SipParseError:
            continue
        ts_ns = int(entry["time"] * 1e9)
        at = int(np.searchsorted(frame_ts_ns, ts_ns, side="right")) - 1
        number = int(frame_numbers[at]) if at >= 0 else 0
        found.append(SipOnWire(number, ts_ns, tuple(entry["src"]), tuple(entry["dst"]),
                               str(entry.get("transport", "TLS")).lower() + LOGGED, message, number))
    return found
