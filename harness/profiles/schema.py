"""The profile language: what a `sip_profiles/*.yaml` file may say, as typed dataclasses.

A profile names the stub (SMA, handler, bucket folder, SIP rules), the SIP endpoints the
callers use, the steps of the scenario and what must be observed. `load_profile` reads one
file strictly (see `strict.py`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..sma.actions import KNOWN_ACTIONS
from ..sma.model import DEFAULT_INTERRUPTIBLE
from .strict import load

CallState = Literal["CALLING", "EARLY", "CONNECTING", "CONFIRMED", "DISCONNECTED"]
EVENT_TYPES = ("NEW_INBOUND_CALL", "NEW_OUTBOUND_CALL", "RINGING", "CALL_ANSWERED",
               "ACTION_SUCCESSFUL", "ACTION_FAILED", "ACTION_INTERRUPTED", "HANGUP",
               "INVALID_LAMBDA_RESPONSE", "DIGITS_RECEIVED", "CALL_UPDATE_REQUESTED")


@dataclass
class SipRuleSpec:
    """A SIP rule: `to_phone_number` ("*" matches any) or `request_uri_hostname`."""

    to_phone_number: str | None = None
    request_uri_hostname: str | None = None
    priority: int = 1

    def validate(self) -> str | None:
        if (self.to_phone_number is None) == (self.request_uri_hostname is None):
            return "give exactly one of to_phone_number or request_uri_hostname"
        return None


@dataclass
class StubSpec:
    """The emulated SIP media application and its handler."""

    handler: str
    sip_media_application_id: str = "5f0e8c2a-6d1b-4c55-9a3e-2b7f1e0d9c41"
    name: str = "sip-harness-sma"
    aws_account_id: str = "123456789012"
    aws_region: str = "us-east-1"
    handler_env: dict[str, str] = field(default_factory=dict)
    handler_timeout_ms: int = 5000
    handler_retries: int = 1
    bucket_dir: str = "bucket"
    interruptible: list[str] = field(default_factory=lambda: sorted(DEFAULT_INTERRUPTIBLE))
    sip_rules: list[SipRuleSpec] = field(default_factory=lambda: [SipRuleSpec(to_phone_number="*")])

    def validate(self) -> str | None:
        unknown = [a for a in self.interruptible if a not in KNOWN_ACTIONS]
        if unknown:
            return f"interruptible: unknown action {unknown[0]!r}"
        return None


@dataclass
class ImpairmentSpec:
    """Seeded impairment of one direction of SIP or RTP at the stub's network edge."""

    loss: float = 0.0
    burst_loss: list[float] | None = None  # Gilbert-Elliott [p_enter, p_stay]
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    reorder: float = 0.0
    duplicate: float = 0.0
    drop_match: str | None = None  # a regex the start of a datagram must match to be dropped
    drop_nth: int = 1
    drop_count: int = 1

    def validate(self) -> str | None:
        for name in ("loss", "reorder", "duplicate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                return f"{name} is a probability between 0 and 1"
        if self.burst_loss is not None and len(self.burst_loss) != 2:
            return "burst_loss is [p_enter, p_stay]"
        return None


@dataclass
class DirectionsSpec:
    outgoing: ImpairmentSpec | None = None
    incoming: ImpairmentSpec | None = None


@dataclass
class NetworkSpec:
    """Impairment at the stub's edge (outgoing before the wire, incoming after it)."""

    seed: int = 0
    sip: DirectionsSpec | None = None
    rtp: DirectionsSpec | None = None


@dataclass
class EndpointSpec:
    """SIP settings of a user agent, named and reusable across steps."""

    transport: Literal["udp", "tcp"] = "udp"
    codecs: list[Literal["PCMU", "PCMA"]] = field(default_factory=lambda: ["PCMU"])
    dtmf: Literal["rfc2833", "info"] = "rfc2833"


@dataclass
class CalleeSpec:
    """A pjsua2 user agent that answers the legs the SMA places to `number`."""

    number: str
    name: str = "b"
    answer: bool = True
    ring_ms: int = 0  # how long it rings (180 Ringing) before it answers
    play: str | None = None  # a WAV (relative to the profile) it sends once answered
    endpoint: str = "default"


@dataclass
class CallStep:
    to: str
    from_: str = "+14255550199"
    name: str = "a"
    endpoint: str = "default"
    headers: dict[str, str] = field(default_factory=dict)
    play: str | None = None  # a WAV (relative to the profile) the caller sends, looped


@dataclass
class CreateCallStep:
    """CreateSipMediaApplicationCall; the call reaches the callee that has number `to`."""

    to: str
    from_: str = "+14255550199"
    arguments: dict[str, str] = field(default_factory=dict)
    sip_headers: dict[str, str] = field(default_factory=dict)


@dataclass
class WaitStep:
    state: CallState
    call: str = "a"
    timeout_ms: int = 10000


@dataclass
class UpdateStep:
    """UpdateSipMediaApplicationCall for a call's transaction (or an explicit id)."""

    arguments: dict[str, str] = field(default_factory=dict)
    call: str = "a"
    transaction_id: str | None = None
    sip_media_application_id: str | None = None
    expect_status: int = 202
    expect_error: str | None = None


@dataclass
class DtmfStep:
    digits: str
    call: str = "a"


@dataclass
class HangupStep:
    call: str = "a"


@dataclass
class Step:
    """One step: exactly one of its keys."""

    call: CallStep | None = None
    wait: WaitStep | None = None
    sleep_ms: int | None = None
    update: UpdateStep | None = None
    send_dtmf: DtmfStep | None = None
    hangup: HangupStep | None = None
    create_call: CreateCallStep | None = None

    def validate(self) -> str | None:
        given = [k for k, v in vars(self).items() if v is not None]
        if len(given) != 1:
            return f"a step has exactly one key, got {given or 'none'}"
        return None

    @property
    def kind(self) -> str:
        return next(k for k, v in vars(self).items() if v is not None)


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
    #: phrases the caller heard, in order: recognised in the stub's speech on the wire
    said: list[str] | None = None
    said_call: str | None = None  # whose stream `said` is read from (default: the first call)

    def validate(self) -> str | None:
        bad = [e for e in self.events or [] if e not in EVENT_TYPES]
        if bad:
            return f"events: unknown InvocationEventType {bad[0]!r}"
        empty = [p for p in self.said or [] if not p.strip()]
        return "said: a phrase has no words" if empty else None


@dataclass
class Profile:
    name: str
    stub: StubSpec
    steps: list[Step]
    description: str = ""
    endpoints: dict[str, EndpointSpec] = field(default_factory=lambda: {"default": EndpointSpec()})
    expect: Expect = field(default_factory=Expect)
    callees: list[CalleeSpec] = field(default_factory=list)
    network: NetworkSpec | None = None
    path: Path | None = field(default=None, init=False)

    def validate(self) -> str | None:
        names = {s.call.name for s in self.steps if s.call} | {c.name for c in self.callees}
        for step in self.steps:
            if step.call and step.call.endpoint not in self.endpoints:
                return f"steps: endpoint {step.call.endpoint!r} is not defined under endpoints"
            target = getattr(getattr(step, step.kind), "call", None)
            if step.kind != "call" and isinstance(target, str) and target not in names:
                return f"steps: {step.kind} refers to call {target!r}, which no call step names"
        return None


def load_profile(path: Path) -> Profile:
    """Read and validate one profile file; raise ProfileError with file:line:column."""
    profile = load(Profile, path.read_text(), str(path))
    profile.path = path
    return profile
