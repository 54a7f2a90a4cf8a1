"""The resources of the emulated service: SIP media applications, SIP rules and call legs."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field

DEFAULT_INTERRUPTIBLE = frozenset({"PlayAudio", "RecordAudio", "Pause"})


@dataclass
class SipMediaApplication:
    """One SMA: its id, account, region and the handler ("Lambda") it invokes, with the
    function's runtime (None: the default for the handler's language), memory and
    configured environment."""

    sip_media_application_id: str
    handler: str
    name: str = "sip-harness"
    aws_account_id: str = "123456789012"
    aws_region: str = "us-east-1"
    environment: dict[str, str] = field(default_factory=dict)
    runtime: str | None = None
    memory_mb: int = 128
    interruptible: frozenset[str] = DEFAULT_INTERRUPTIBLE
    bots: dict[str, dict] = field(default_factory=dict)  # BotAliasArn -> scripted IntentResult

    @property
    def arn(self) -> str:
        return (f"arn:aws:chime:{self.aws_region}:{self.aws_account_id}:"
                f"sma/{self.sip_media_application_id}")

    @property
    def lambda_arn(self) -> str:
        return (f"arn:aws:lambda:{self.aws_region}:{self.aws_account_id}:function:"
                f"{self.name}")


@dataclass
class SipRule:
    """Routes an inbound call to SMAs by the called number or the Request-URI host."""

    sip_rule_id: str
    trigger_type: str  # "ToPhoneNumber" or "RequestUriHostname"
    trigger_value: str
    targets: list[tuple[int, str]]  # (priority, SipMediaApplicationId), lowest priority first
    name: str = "sip-harness-rule"

    def matches(self, to_number: str, request_uri_host: str) -> bool:
        if self.trigger_type == "ToPhoneNumber":
            return self.trigger_value in ("*", to_number)
        return self.trigger_value.lower() == request_uri_host.lower()


@dataclass
class Leg:
    """One participant of a transaction as the events show it."""

    call_id: str
    participant_tag: str
    to: str
    from_: str
    direction: str
    start_time_ms: int
    status: str = "Connected"
    sip_headers: dict[str, str] = field(default_factory=dict)

    def to_event(self) -> dict:
        out = {"CallId": self.call_id, "ParticipantTag": self.participant_tag, "To": self.to,
               "From": self.from_, "Direction": self.direction,
               "StartTimeInMilliseconds": str(self.start_time_ms), "Status": self.status}
        if self.sip_headers:
            out["SipHeaders"] = dict(self.sip_headers)
        return out


def new_id() -> str:
    """A GUID as the service writes them."""
    return str(uuid.uuid4())
