"""A profile against the real service (`sip-harness run --target aws`): no stub of ours.

The calls go to a real number through a Voice Connector (or any SIP host that reaches the
SMA) over UDP, TCP or TLS; `update` and `create_call` steps call the real chime-sdk-voice API
with the usual AWS credential chain; the capture proves what was heard. What only the
emulator's journal shows (the handler's events) comes from a trace of the real handler
(`sip_harness.trace` lines in a file, e.g. exported from CloudWatch Logs) when one is given,
and is reported as not observable otherwise.

`AwsTarget` has the interface the runner drives a `Stub` or `RemoteStub` through.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

from .fidelity import MARK, TraceError, read_trace
from .journal_entries import HandlerInvoked, HandlerResponded
from .stub import StubConfig

TRACE_WAIT_S = 10.0


class AwsTargetError(RuntimeError):
    """The target is not usable as given (a missing setting, no trace entry for a call)."""


@dataclass
class AwsSettings:
    """Where the real service is and how to reach it.

    sip_host: the Voice Connector's outbound host name or address (`host` or `host:port`);
        the port defaults to 5061 for TLS and 5060 otherwise.
    number: the phone number the calls dial (the SMA's number); None keeps the profile's.
    sip_media_application_id: the SMA that updates and created calls address.
    endpoint_url: another API endpoint than the region's (a stand-in, a VPC endpoint).
    trace: a file of trace lines of the real handler, read as the run goes.
    """

    region: str
    sip_media_application_id: str
    sip_host: str
    number: str | None = None
    transport: str | None = None
    endpoint_url: str | None = None
    ca_file: Path | None = None
    trace: Path | None = None

    @property
    def host(self) -> str:
        return self.sip_host.rpartition(":")[0] if ":" in self.sip_host else self.sip_host

    def port(self, transport: str) -> int:
        if ":" in self.sip_host:
            return int(self.sip_host.rpartition(":")[2])
        return 5061 if transport == "tls" else 5060


class AwsTarget:
    """The real service as the runner's target: the profile's local view (bucket folder for
    prompt recognition) in `config`, no journal of its own, a trace when given."""

    journal_source = "trace"

    def __init__(self, settings: AwsSettings, config: StubConfig):
        self.settings = settings
        self.config = dataclasses.replace(config, host=settings.host, tls=None)
        self._claimed: set[str] = set()
        self._started = time.time()

    # ---- the runner's target interface ------------------------------------------------------
    def start(self) -> "AwsTarget":
        self._started = time.time()
        return self

    def stop(self) -> None:
        """Nothing to release: the service keeps running."""

    @property
    def sip_port(self) -> int:
        return self.settings.port(self.settings.transport or "udp")

    @property
    def tls_port(self) -> int | None:
        return self.settings.port("tls") if (self.settings.transport == "tls") else None

    api_port = 0

    @property
    def api_url(self) -> str | None:
        return self.settings.endpoint_url

    @property
    def observes_journal(self) -> bool:
        return self.settings.trace is not None

    def sip_uri(self, user: str, transport: str = "udp") -> str:
        transport = self.settings.transport or transport
        number = self.settings.number or user
        suffix = f";transport={transport}" if transport != "udp" else ""
        return f"sip:{number}@{self.settings.host}:{self.settings.port(transport)}{suffix}"

    def add_route(self, number: str, uri: str) -> None:
        raise AwsTargetError("callees need the emulator's routes; against AWS the SMA dials real "
                             "numbers: run this profile against the emulator")

    def resources(self) -> dict[str, int]:
        return {}  # the service's own resources are not observable

    def journal_json(self) -> list[dict]:
        """The trace's invocations as journal entries (empty without a trace)."""
        entries = []
        for record in self._trace():
            event, at = record["event"], record.get("time", 0.0)
            tx = (event.get("CallDetails") or {}).get("TransactionId")
            sequence = event.get("Sequence")
            entries.append(HandlerInvoked(time=at, transaction_id=tx, sequence=sequence,
                                          event=event).to_json())
            entries.append(HandlerResponded(
                time=at, transaction_id=tx, sequence=sequence, response=record.get("response"),
                failed="error" in record,
                errors=[record["error"]] if "error" in record else []).to_json())
        return entries

    def transaction_of(self, placed_at: float, timeout: float = TRACE_WAIT_S) -> str:
        """The TransactionId of the call placed at `placed_at`: the first NEW_INBOUND_CALL of
        the trace at or after it not yet claimed by another call (waits for the trace)."""
        if self.settings.trace is None:
            raise AwsTargetError("the TransactionId of an inbound call is not observable without a "
                                 "trace: give --trace (sip_harness.trace lines) or transaction_id in the step")
        deadline = time.monotonic() + timeout
        while True:
            for record in self._trace():
                event = record["event"]
                tx = (event.get("CallDetails") or {}).get("TransactionId")
                if (event.get("InvocationEventType") == "NEW_INBOUND_CALL" and tx not in self._claimed
                        and record.get("time", 0) >= placed_at - 1.0):
                    self._claimed.add(tx)
                    return tx
            if time.monotonic() > deadline:
                raise AwsTargetError(f"no NEW_INBOUND_CALL in {self.settings.trace} for the call "
                                     f"placed at {placed_at:.3f} within {timeout:.0f} s")
            time.sleep(0.1)

    def _trace(self) -> list[dict]:
        path = self.settings.trace
        if path is None or not Path(path).is_file():
            return []
        try:
            return [r for r in read_trace(path) if r.get(MARK) and r.get("time", 0) >= self._started - 1.0]
        except TraceError:
            return []
