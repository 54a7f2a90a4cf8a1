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
    layers: tuple[str, ...] = ()  # folders laid out as Lambda layers (python/, nodejs/node_modules/)
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
    status: str = "Connected"  # "Disconnected" once the leg has ended
    sip_headers: dict[str, str] = field(default_factory=dict)
    answered: bool = False

    def to_event(self) -> dict:
        """The leg in `CallDetails.Participants`. A leg that has not answered yet carries no
        `Status` (the service's NEW_INBOUND_CALL, NEW_OUTBOUND_CALL and RINGING events have
        none); an answered one is `Connected`; an ended one `Disconnected`."""
        out = {"CallId": self.call_id, "ParticipantTag": self.participant_tag, "To": self.to,
               "From": self.from_, "Direction": self.direction,
               "StartTimeInMilliseconds": str(self.start_time_ms)}
        if self.answered or self.status == "Disconnected":
            out["Status"] = self.status
        if self.sip_headers:
            out["SipHeaders"] = dict(self.sip_headers)
        return out


def new_id(owner: int | None = None) -> str:
    """A GUID as the service writes them; with `owner` (0-255), its last byte names the stub
    worker that holds it, so a cluster's API front finds the owner from the id alone."""
    guid = str(uuid.uuid4())
    return guid if owner is None else f"{guid[:-2]}{owner:02x}"


def owner_of(transaction_id: str) -> int | None:
    """The worker `new_id(owner)` named in an id, or None for an id not of that form."""
    try:
        return uuid.UUID(transaction_id).bytes[-1]
    except (ValueError, TypeError):
        return None


def rule_id(name: str) -> str:
    """A SIP rule id in the service's form (a GUID), the same for the same `name` every run."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"sip-harness:sip-rule:{name}"))
