"""The pytest API of sip-harness: everything a test of your own needs, from this one module.

Fixtures (registered by the plugin, no import needed): `sma_stub` (an `SmaStub` serving the
handler or profile named by `@pytest.mark.sma(...)`), `sip_caller` (a pjsua2 `Caller`),
`wire_capture` (a `WireCapture` of the stub's ports, started before the test), `sma_api` (a
boto3-compatible chime-sdk-voice client bound to the stub) and `sip_artifacts` (the test's
artifact folder). Outside fixtures, `sma_stub_for(...)` starts a stub the same way.

Example::

    import boto3, pytest

    @pytest.mark.sma(handler="handlers/my_handler.py", bucket="prompts")
    def test_update_switches_the_prompt(sma_stub, sip_caller, wire_capture):
        call = sip_caller.call(sma_stub.sip_uri("+14345550101"))
        call.wait_for("CONFIRMED", timeout=10)
        client = boto3.client("chime-sdk-voice", endpoint_url=sma_stub.api_url, **sma_stub.credentials)
        client.update_sip_media_application_call(SipMediaApplicationId=sma_stub.sma_id,
            TransactionId=sma_stub.wait_transaction(call), Arguments={"action": "switch"})
        call.wait_for("DISCONNECTED", timeout=15)
        assert wire_capture.prompts(call) == ["welcome.wav", "goodbye.wav"]
        assert sma_stub.journal().event_types()[-1] == "HANGUP"

The submodules are the project's own test helpers, not part of this API: `autoanswer` (a SIP
user agent that answers, without the SMA), `lossy_channel` (an in-memory datagram path with
seeded loss) and `captures` (synthetic pcaps, tshark's stream table).
"""
from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from ..caller import Call, Caller, CallerError
from ..journal_view import CallLeg, HandlerResponse, Invocation, JournalView, Problem
from ..wire.analysis import WireAnalysis

__all__ = ["SmaStub", "WireCapture", "sma_stub_for", "stub_config_for", "JournalView",
           "Invocation", "HandlerResponse", "CallLeg", "Problem", "WireAnalysis", "Call",
           "Caller", "CallerError", "DEFAULT_SMA_ID"]

DEFAULT_SMA_ID = "5f0e8c2a-6d1b-4c55-9a3e-2b7f1e0d9c41"
REGION = "us-east-1"


def stub_config_for(handler: str | Path | None = None, *, profile: str | Path | None = None,
                    bucket: str | Path | None = None, run_dir: str | Path,
                    sma_id: str = DEFAULT_SMA_ID, numbers: Sequence[str] = ("*",),
                    timeout_ms: int = 5000, retries: int = 1,
                    environment: Mapping[str, str] | None = None, runtime: str | None = None,
                    base: str | Path | None = None):
    """The stub settings for `handler` (a .py/.js file, `module:function` or an http(s)
    Lambda Invoke URL) or for a `profile`'s stub section (its handler, bucket, SIP rules),
    with `handler` and `bucket` overriding the profile's. Relative paths are taken from
    `base` (default: the working folder; the `sma` marker uses the test file's folder).

    `bucket` is the folder standing for S3 (`<bucket>/<BucketName>/<Key>`); `numbers` are the
    called numbers routed to the SMA ("*": any); `environment` and `runtime` (`python3.12`,
    `nodejs20.x`, ...; default: the newest of the handler's language here) are the function's
    configuration; `run_dir` receives the handler's log, the recordings and what the handler
    writes to "S3".
    """
    import dataclasses
    from ..profiles.schema import handler_path, load_profile
    from ..run.setup import handler_config, stub_config
    run_dir, base = Path(run_dir), Path(base or Path.cwd())
    if handler is not None:
        handler = handler_path(base, str(handler))
    if bucket is not None:
        bucket = base / bucket
    if profile is not None:
        config = stub_config(load_profile(base / profile), run_dir)
        if handler is not None:
            config.applications[0] = dataclasses.replace(config.applications[0], handler=handler)
        if bucket is not None:
            config = dataclasses.replace(config, bucket_dir=Path(bucket).resolve())
        return config
    if handler is None:
        raise ValueError("name a handler or a profile")
    if bucket is None:
        bucket = run_dir / "bucket"
        bucket.mkdir(parents=True, exist_ok=True)
    return handler_config(handler, Path(bucket), run_dir, sma_id=sma_id, numbers=numbers,
                          environment=environment, runtime=runtime, timeout_s=timeout_ms / 1000,
                          retries=retries)


class SmaStub:
    """A running stub: its addresses, its API, its journal. Wraps the embedded `Stub` (or a
    session on a served one); `.stub` is the object underneath."""

    #: keyword arguments for boto3.client/botocore create_client (the stub checks no signature)
    credentials = {"region_name": REGION, "aws_access_key_id": "sip-harness",
                   "aws_secret_access_key": "sip-harness"}

    def __init__(self, stub):
        self.stub = stub

    @property
    def config(self):
        return self.stub.config

    @property
    def sma_id(self) -> str:
        """The SipMediaApplicationId of the (first) SMA served."""
        return self.stub.config.applications[0].sip_media_application_id

    @property
    def host(self) -> str:
        return self.stub.config.host

    @property
    def sip_port(self) -> int:
        return self.stub.sip_port

    @property
    def api_port(self) -> int:
        return self.stub.api_port

    @property
    def api_url(self) -> str:
        """The endpoint URL for boto3, the AWS CLI or any HTTP client."""
        return self.stub.api_url

    def sip_uri(self, number: str, transport: str = "udp") -> str:
        """The SIP URI that calls `number` on the stub."""
        return self.stub.sip_uri(number, transport)

    def api_client(self):
        """A chime-sdk-voice client (botocore, the same interface as boto3's) bound to the stub."""
        from ..run.setup import api_client
        return api_client(self.stub, REGION)

    def add_route(self, number: str, uri: str) -> None:
        """Send the legs the SMA places to `number` ("*": any) to the SIP URI `uri`."""
        self.stub.add_route(number, uri)

    def journal(self) -> JournalView:
        """What the stub did and what the handler saw, as typed queries."""
        return JournalView(self.stub.journal_json())

    def problems(self) -> list[Problem]:
        """What went wrong so far (handler failures, rejected responses, failed actions...)."""
        return self.journal().problems()

    def wait_transaction(self, call: Call, timeout: float = 10.0) -> str:
        """The TransactionId of `call` (placed by `sip_caller`, or received by a listener),
        once the stub has it."""
        deadline = time.monotonic() + timeout
        while True:
            tx = call.call_id and self.journal().transaction_of(call.call_id)
            if tx:
                return tx
            if time.monotonic() > deadline:
                raise CallerError(f"the stub has no transaction for {call!r} after {timeout:g} s")
            time.sleep(0.05)

    def resources(self) -> dict[str, int]:
        """Open dialogs, media sessions, transactions, tasks, handler workers."""
        return self.stub.resources()


class WireCapture:
    """A capture of a stub's SIP, API and RTP ports into `path` (needs CAP_NET_RAW)."""

    def __init__(self, stub: SmaStub, path: str | Path):
        from ..run.setup import stub_filter
        from ..wire.capture import Capture
        cfg = stub.config
        self.stub, self.path = stub, Path(path)
        self._capture = Capture(str(self.path), iface="lo", bpf=stub_filter(
            cfg.host, stub.sip_port, stub.api_port, cfg.rtp_port_range))
        self._analysis: WireAnalysis | None = None
        self.stats = None

    def start(self) -> "WireCapture":
        self._capture.start()
        return self

    @property
    def running(self) -> bool:
        return self.stats is None and self._capture._thread is not None

    def stop(self):
        """Stop capturing (after the last packets settle); the counts. Idempotent."""
        if self.running:
            self.stats = self._capture.stop()
        return self.stats

    def analysis(self) -> WireAnalysis:
        """The capture analysed: SIP ladder and dialogs, HTTP requests, RTP streams (stops it)."""
        from ..wire.analysis import analyze_pcap
        if self._analysis is None:
            from ..run.setup import SETTLE_S
            time.sleep(SETTLE_S)  # the last BYE/200 and RTP reach the socket
            self.stop()
            self._analysis = analyze_pcap(str(self.path))
        return self._analysis

    def prompts(self, call: Call) -> list[str]:
        """The prompts (WAV file names in the stub's bucket) the stub played to `call`, in
        order, as the capture shows them."""
        from ..wire.audio import load_prompts, prompts_played
        leg = self.stub.journal().leg(call.call_id)
        if leg is None:
            raise CallerError(f"the stub has no leg for {call!r}")
        streams = self.analysis().streams(src=(self.stub.host, leg.rtp_port))
        prompts = load_prompts(self.stub.config.bucket_dir)
        return [p for s in streams for p in prompts_played(s, prompts)]


@contextlib.contextmanager
def sma_stub_for(handler: str | Path | None = None, *, profile: str | Path | None = None,
                 run_dir: str | Path, **settings) -> Iterator[SmaStub]:
    """Start an embedded stub for `handler` or `profile` (see `stub_config_for` for the
    settings), stopped when the block ends."""
    from ..stub import Stub
    config = stub_config_for(handler, profile=profile, run_dir=run_dir, **settings)
    with Stub(config) as stub:
        yield SmaStub(stub)
