"""The profile language: what a `sip_profiles/*.yaml` file may say, as typed dataclasses.

A profile names the stub (SMA, handler and its function configuration, local AWS services,
bucket folder, SIP rules), the SIP endpoints the callers use, the steps of the scenario and
what must be observed (`expect:`: its keys, their shapes and how each is judged are in
`run/verify.py`). `load_profile` reads one file strictly (see `strict.py`), then checks what
only the file system can tell (handler and seed files, the runtime's interpreter).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import yaml

from ..run.verify import Expect
from ..sma.actions import ACTIONS, DEFAULT_INTERRUPTIBLE
from ..lambdas.lambda_env import TRACE_LAYER, layer_folder, reserved_keys
from ..lambdas.runtimes import RuntimeUnavailable, language_of, resolve, runtime_problem
from .strict import Invalid, ProfileError, load, problem

CallState = Literal["CALLING", "EARLY", "CONNECTING", "CONFIRMED", "DISCONNECTED"]


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
class TableSeed:
    """A DynamoDB table: `key` is its partition key, then its optional sort key, each with
    its type (`{caller: S}`); `indexes` its global secondary indexes by name, each keyed the
    same way (all attributes projected); items are plain values, inline or from a YAML/JSON
    list."""

    name: str
    key: dict[str, Literal["S", "N", "B"]]
    items: list[dict[str, Any]] = field(default_factory=list)
    items_file: str | None = None
    indexes: dict[str, dict[str, Literal["S", "N", "B"]]] = field(default_factory=dict)

    def validate(self) -> str | Invalid | None:
        for path, key in [(("key",), self.key)] + [(("indexes", n), k) for n, k in self.indexes.items()]:
            if not 1 <= len(key) <= 2:
                return Invalid(path, "give the partition key and at most a sort key, "
                                     "e.g. {caller: S} or {caller: S, started: N}")
        types: dict[str, str] = {}
        for path, key in [(("key",), self.key)] + [(("indexes", n), k) for n, k in self.indexes.items()]:
            for attribute, kind in key.items():
                if types.setdefault(attribute, kind) != kind:
                    return Invalid(path, f"{attribute!r} is {types[attribute]} elsewhere in the table")
        for i, item in enumerate(self.items):
            missing = key_missing(item, self.key)
            if missing:
                return Invalid(("items", i), missing)
        return None


@dataclass
class ObjectSeed:
    """One S3 object: its key and a file (relative to the profile) or a text body."""

    key: str
    file: str | None = None
    body: str | None = None

    def validate(self) -> str | None:
        if (self.file is None) == (self.body is None):
            return "give exactly one of file or body"
        return None


@dataclass
class CredentialsSpec:
    """Digest credentials (a Voice Connector's termination credentials)."""

    username: str
    password: str
    realm: str = "sip-harness"


@dataclass
class TlsSpec:
    """SIP over TLS on the stub. Without `certificate`, the run makes a throwaway CA and a
    certificate for the stub's address (in the run folder) and the callers trust that CA;
    with one, `ca_file` is the CA the callers verify it with (none: not verified)."""

    certificate: str | None = None
    private_key: str | None = None
    ca_file: str | None = None
    port: int = 0

    def validate(self) -> str | None:
        if (self.certificate is None) != (self.private_key is None):
            return "give both certificate and private_key, or neither"
        return None


@dataclass
class BucketSeed:
    name: str
    objects: list[ObjectSeed] = field(default_factory=list)


@dataclass
class ParameterSeed:
    """One SSM parameter."""

    name: str
    value: str
    type: Literal["String", "StringList", "SecureString"] = "String"


@dataclass
class AwsSeed:
    """What the local AWS services hold when the run starts."""

    dynamodb: list[TableSeed] = field(default_factory=list)
    s3: list[BucketSeed] = field(default_factory=list)
    ssm: list[ParameterSeed] = field(default_factory=list)


@dataclass
class AwsSpec:
    """Local AWS services for the handler's own SDK calls (moto, one server per run).

    `services` names what the handler uses (each must be one moto emulates; moto serves them
    all on one endpoint); `seed` is inline, or a YAML/JSON file with the same keys.
    """

    services: list[str] = field(default_factory=list)
    seed: str | AwsSeed | None = None

    def validate(self) -> Invalid | None:
        from moto.backends import list_of_moto_modules
        known = set(list_of_moto_modules())
        for i, name in enumerate(self.services):
            if name.replace("-", "") in ("chime", "chimesdkvoice"):
                return Invalid(("services", i), f"{name} is the stub's own API: handlers reach it "
                                                "without listing it here")
            if name not in known:
                return Invalid(("services", i), f"{name!r} is not a service moto emulates")
        return None


@dataclass
class StubSipSpec:
    """The stub's SIP side as a Voice Connector with encryption would have it."""

    tls: TlsSpec | None = None
    srtp: Literal["optional", "required", "off"] = "optional"
    credentials: CredentialsSpec | None = None  # INVITEs must answer a digest challenge


@dataclass
class StubSpec:
    """The emulated SIP media application and its handler, with the handler's function
    configuration (runtime, memory, timeout, environment) and local AWS services."""

    handler: str
    sip_media_application_id: str = "5f0e8c2a-6d1b-4c55-9a3e-2b7f1e0d9c41"
    name: str = "sip-harness-sma"
    aws_account_id: str = "123456789012"
    aws_region: str = "us-east-1"
    runtime: str | None = None
    memory_size_mb: int = 128
    layers: list[str] = field(default_factory=list)  # Lambda layer folders; "sip-harness-trace" is ours
    environment: dict[str, str] = field(default_factory=dict)
    handler_env: dict[str, str] | None = None  # the old name of `environment`
    handler_timeout_ms: int = 5000
    handler_retries: int = 1
    bucket_dir: str = "bucket"
    interruptible: list[str] = field(default_factory=lambda: sorted(DEFAULT_INTERRUPTIBLE))
    sip_rules: list[SipRuleSpec] = field(default_factory=lambda: [SipRuleSpec(to_phone_number="*")])
    aws: AwsSpec | None = None
    sip: StubSipSpec = field(default_factory=StubSipSpec)

    def validate(self) -> str | Invalid | None:
        unknown = [a for a in self.interruptible if a not in ACTIONS]
        if unknown:
            return f"interruptible: unknown action {unknown[0]!r}"
        if self.handler_env is not None:  # the alias: folded into `environment`
            if self.environment:
                return Invalid(("handler_env",), "give environment (handler_env is its old name), "
                                                 "not both")
            self.environment, self.handler_env = self.handler_env, None
        reserved = reserved_keys(self.environment)
        if reserved:
            return Invalid(("environment", reserved[0]),
                           f"{reserved[0]} is reserved: Lambda sets it for every function")
        runtime = runtime_problem(self.runtime, self.handler)
        if runtime:
            return Invalid(("runtime",), runtime)
        if not 128 <= self.memory_size_mb <= 10240:
            return Invalid(("memory_size_mb",), "Lambda allows 128 to 10240 MB")
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

    transport: Literal["udp", "tcp", "tls"] = "udp"
    codecs: list[Literal["PCMU", "PCMA"]] = field(default_factory=lambda: ["PCMU"])
    dtmf: Literal["rfc2833", "info"] = "rfc2833"
    srtp: bool = False  # offer and require SDES-keyed SRTP (AES_CM_128_HMAC_SHA1_80)
    credentials: CredentialsSpec | None = None  # answered to digest challenges


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
        given = self._given()
        if len(given) != 1:
            return f"a step has exactly one key, got {given or 'none'}"
        return None

    def _given(self) -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]

    @property
    def kind(self) -> str:
        return self._given()[0]


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

    def validate(self) -> str | Invalid | None:
        if self.stub.sip.tls is None and any(e.transport == "tls" for e in self.endpoints.values()):
            return "endpoints: a tls endpoint needs stub.sip.tls"
        names = {s.call.name for s in self.steps if s.call} | {c.name for c in self.callees}
        for step in self.steps:
            if step.call and step.call.endpoint not in self.endpoints:
                return f"steps: endpoint {step.call.endpoint!r} is not defined under endpoints"
            target = getattr(getattr(step, step.kind), "call", None)
            if step.kind != "call" and isinstance(target, str) and target not in names:
                return f"steps: {step.kind} refers to call {target!r}, which no call step names"
        if self.expect.dynamodb and self.stub.aws is None:
            return Invalid(("expect", "dynamodb"), "expecting DynamoDB items needs local AWS "
                                                   "services: add stub.aws")
        return None


def key_missing(item: dict, key: dict[str, str]) -> str | None:
    """Why a seed item cannot go into a table with `key`, or None."""
    for name, kind in key.items():
        if name not in item:
            return f"the item has no {name!r}, the table's {'partition' if name == next(iter(key)) else 'sort'} key"
        value = item[name]
        ok = isinstance(value, str) if kind in ("S", "B") else \
            isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok:
            return f"{name!r} is a key of type {kind}, got {value!r}"
    return None


HANDLER_SUFFIXES = (".py", ".js", ".cjs", ".mjs")


def handler_target(base: Path, handler: str) -> Path | None:
    """The handler's file, relative to `base` (the profile's folder), or None for a
    `module:function` or a Lambda-Invoke URL."""
    target = handler.partition(":")[0]
    if language_of(handler) is not None and (target.endswith(HANDLER_SUFFIXES) or "/" in target):
        return (base / target).resolve()
    return None


def handler_path(base: Path, handler: str) -> str:
    """A handler given as a file path, relative to the profile's folder, made absolute."""
    path = handler_target(base, handler)
    if path is None:
        return handler
    _, sep, func = handler.partition(":")
    return str(path) + (sep + func if sep else "")


def handler_problem(profile: Profile) -> ProfileError | None:
    """What only this machine can tell about the handler: its file, its runtime's interpreter,
    its layers' folders."""
    stub, base = profile.stub, profile.path.parent
    path = handler_target(base, stub.handler)
    if path is not None and not path.is_file():
        return problem(stub, ("handler",), f"no such handler file: {path}")
    try:
        resolve(stub.runtime, handler_path(base, stub.handler))
    except RuntimeUnavailable as exc:
        return problem(stub, ("runtime",) if stub.runtime else ("handler",), str(exc))
    for i, layer in enumerate(stub.layers):
        if not layer_folder(base, layer).is_dir():
            return problem(stub, ("layers", i), f"no such layer folder: {layer_folder(base, layer)} "
                                                f"(a folder with python/ or nodejs/node_modules/, "
                                                f"or {TRACE_LAYER!r})")
    return None


def _read_seeds(profile: Profile) -> None:
    """The seed files of the local AWS services, read here (so the run uses what was checked)."""
    stub, base = profile.stub, profile.path.parent
    aws = stub.aws
    if aws is None:
        return
    if isinstance(aws.seed, str):
        seed_file = base / aws.seed
        try:
            aws.seed = load(AwsSeed, seed_file.read_text(), str(seed_file))
        except OSError as exc:
            raise problem(aws, ("seed",), f"cannot read the seed file: {exc}") from None
        except ProfileError as exc:
            raise problem(aws, ("seed",), f"the seed file is invalid: {exc}") from None
        base = seed_file.parent
    for table in (aws.seed.dynamodb if aws.seed else []):
        if table.items_file is not None:
            table.items = table.items + _items_from(table, base / table.items_file)
            table.items_file = None
    for bucket in (aws.seed.s3 if aws.seed else []):
        for obj in bucket.objects:
            if obj.file is not None:
                path = (base / obj.file).resolve()
                if not path.is_file():
                    raise problem(obj, ("file",), f"no such file: {path}")
                obj.file = str(path)


def _items_from(table: TableSeed, path: Path) -> list[dict]:
    """A table's items from a YAML or JSON list; each item's fault names its line there."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise problem(table, ("items_file",), f"cannot read the items file: {exc}") from None
    try:
        items = load(list[dict[str, Any]], text, str(path))
        node = yaml.compose(text)
    except ProfileError as exc:
        raise problem(table, ("items_file",), f"the items file is invalid: {exc}") from None
    for i, item in enumerate(items):
        missing = key_missing(item, table.key)
        if missing:
            inner = ProfileError(str(path), node.value[i].start_mark, f"[{i}]", missing)
            raise problem(table, ("items_file",), f"the items file is invalid: {inner}")
    return items


def load_profile(path: Path, check_handler: bool = True) -> Profile:
    """Read and validate one profile file; raise ProfileError with file:line:column.

    `check_handler=False` leaves the handler's file and runtime to `checks.check_profile`
    (`run` then makes a profile whose handler cannot run here an ERROR of its own, and
    `validate` reports it with the profile's other findings)."""
    profile = load(Profile, path.read_text(), str(path))
    profile.path = path
    _read_seeds(profile)
    if check_handler and (found := handler_problem(profile)) is not None:
        raise found
    return profile
