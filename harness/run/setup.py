"""What a run needs before its first call: the stub's settings (from a profile, or from a
handler alone), the run's RTP ports (a block of this process's lane: the stub's half and the
callers' half), an API client bound to the target, and the capture of the run's traffic."""
from __future__ import annotations

import contextlib
import itertools
import random
import socket
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import botocore.session
from botocore.config import Config

from ..aws_target import AwsTarget
from ..lanes import LANES, lane
from ..local_aws import LocalAwsConfig
from ..netem import NetworkImpairment
from ..profiles.schema import AwsSeed, Profile, StubSpec, handler_path
from ..lambdas.lambda_env import layer_folder
from ..sma.model import SipMediaApplication, SipRule, rule_id
from ..stub import StubConfig, Termination, TlsSettings
from ..wire.capture import Capture

RTP_PORTS_PER_RUN = 400
#: The runs' RTP ports lie below the kernel's ephemeral ports (32768+), so that no other
#: process's socket falls into a capture filter, and above pjsua2's and SIPp's media ports.
RTP_BASE, RTP_BASE_LIMIT = 10000, 32400
#: after the last step, the time the last BYE/200 and RTP take to reach the capture
SETTLE_S = 0.3


_BLOCKS_PER_LANE = (RTP_BASE_LIMIT - RTP_BASE) // RTP_PORTS_PER_RUN // LANES
_turns = itertools.count(random.randrange(_BLOCKS_PER_LANE))


def rtp_block() -> int:
    """The first port of a run's block of RTP_PORTS_PER_RUN ports, in a lane of its own for
    each pytest-xdist worker. A process takes its lane's blocks in turn, from a random one:
    runs it has going at once (a module's service beside a test's stub) get different
    blocks, and runs in separate processes of one lane seldom meet."""
    return RTP_BASE + RTP_PORTS_PER_RUN * (lane() + LANES * (next(_turns) % _BLOCKS_PER_LANE))


@dataclass(frozen=True)
class RtpPorts:
    """A run's RTP ports, (low, high) each: the stub's and the callers' halves of one block,
    so that no other run's media reaches either (never pjsua2's shared default)."""

    stub: tuple[int, int]
    callers: tuple[int, int]

    @classmethod
    def for_run(cls) -> "RtpPorts":
        low, half = rtp_block(), RTP_PORTS_PER_RUN // 2
        return cls((low, low + half), (low + half, low + 2 * half))

    @property
    def whole(self) -> tuple[int, int]:
        """The block (against AWS there is no stub: the callers take all of it)."""
        return self.stub[0], self.callers[1]


def free_rtp_range(size: int, attempts: int = 50) -> tuple[int, int]:
    """(low, high) of `size` ports (inclusive) whose first ports are free: in a block of this
    lane when it fits in one, else anywhere below the ephemeral ports (a load too large for
    one block runs alone on the machine)."""
    for _ in range(attempts):
        low = rtp_block() if size <= RTP_PORTS_PER_RUN else random.randrange(RTP_BASE, RTP_BASE_LIMIT - size, 2)
        if all(udp_free(port) for port in range(low, low + 8)):
            return low, low + size - 1
    raise OSError(f"no free range of {size} RTP ports")


def udp_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether no socket holds UDP `port` of `host`."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def stub_config(profile: Profile, run_dir: Path, rtp: tuple[int, int] | None = None) -> StubConfig:
    """The stub's configuration for a profile, on 127.0.0.1 with free ports; its RTP ports
    `rtp` (default: the stub's half of a block of this lane)."""
    spec, base = profile.stub, profile.path.parent
    sma = SipMediaApplication(spec.sip_media_application_id, handler_path(base, spec.handler),
                              name=spec.name, aws_account_id=spec.aws_account_id,
                              aws_region=spec.aws_region, environment=dict(spec.environment),
                              runtime=spec.runtime, memory_mb=spec.memory_size_mb,
                              layers=tuple(str(layer_folder(base, l)) for l in spec.layers),
                              interruptible=frozenset(spec.interruptible))
    rules = [SipRule(rule_id(f"{sma.sip_media_application_id}/{i + 1}"),
                     "ToPhoneNumber" if r.to_phone_number is not None else "RequestUriHostname",
                     r.to_phone_number if r.to_phone_number is not None else r.request_uri_hostname,
                     [(r.priority, sma.sip_media_application_id)])
             for i, r in enumerate(spec.sip_rules)]
    impairment = None
    if profile.network is not None:
        plain = asdict(profile.network)
        for kind in ("sip", "rtp"):
            plain[kind] = {d: {k: v for k, v in o.items() if v is not None}
                           for d, o in (plain[kind] or {}).items() if o is not None}
        impairment = NetworkImpairment.from_dict(plain)
    creds = spec.sip.credentials
    return StubConfig([sma], rules, (base / spec.bucket_dir).resolve(), run_dir=run_dir,
                      handler_timeout_s=spec.handler_timeout_ms / 1000,
                      handler_retries=spec.handler_retries,
                      rtp_port_range=rtp or RtpPorts.for_run().stub, impairment=impairment,
                      aws=local_aws_config(spec),
                      tls=tls_settings(spec.sip.tls, base, run_dir), srtp=spec.sip.srtp,
                      termination=Termination(creds.username, creds.password, creds.realm) if creds else None)


def handler_config(handler: str, bucket_dir: Path, run_dir: Path, *, sma_id: str,
                   name: str | None = None, numbers: Sequence[str] = ("*",),
                   environment: Mapping[str, str] | None = None, runtime: str | None = None,
                   timeout_s: float = 5.0, retries: int = 1,
                   rtp: tuple[int, int] | None = None, **settings) -> StubConfig:
    """The stub's configuration for one handler without a profile (`harness.testing`, load
    mode): the SMA `sma_id` serving the called `numbers` ("*": any), named after the
    handler's file unless `name` is given; `settings` are further StubConfig fields."""
    sma = SipMediaApplication(sma_id, handler, name=name or Path(handler.partition(":")[0]).stem or "handler",
                              environment=dict(environment or {}), runtime=runtime)
    rules = [SipRule(rule_id(f"{sma_id}/{i + 1}"), "ToPhoneNumber", number, [(1, sma_id)])
             for i, number in enumerate(numbers)]
    return StubConfig([sma], rules, Path(bucket_dir).resolve(), run_dir=run_dir,
                      handler_timeout_s=timeout_s, handler_retries=retries,
                      rtp_port_range=rtp or RtpPorts.for_run().whole, **settings)


def tls_settings(spec, base: Path, run_dir: Path, host: str = "127.0.0.1") -> TlsSettings | None:
    """The stub's TLS files: the profile's, or a certificate for `host` issued by a throwaway
    CA (trustme) into `run_dir/tls/`, whose `ca.pem` the callers then trust."""
    if spec is None:
        return None
    if spec.certificate is not None:
        return TlsSettings((base / spec.certificate).resolve(), (base / spec.private_key).resolve(),
                           spec.port, (base / spec.ca_file).resolve() if spec.ca_file else None)
    import trustme
    folder = run_dir / "tls"
    folder.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="sip-harness throwaway CA")
    ca.issue_cert(host, "localhost").private_key_and_cert_chain_pem.write_to_path(str(folder / "stub.pem"))
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    return TlsSettings(folder / "stub.pem", folder / "stub.pem", spec.port, folder / "ca.pem")


def local_aws_config(spec: StubSpec) -> LocalAwsConfig | None:
    """The local AWS services a profile's stub asks for, with its seed as plain JSON."""
    if spec.aws is None:
        return None
    seed = spec.aws.seed or AwsSeed()
    return LocalAwsConfig(spec.aws_region, {
        "dynamodb": [{"name": t.name, "key": list(t.key.items()), "items": t.items,
                      "indexes": {n: list(k.items()) for n, k in t.indexes.items()}}
                     for t in seed.dynamodb],
        "s3": [{"name": b.name, "objects": [asdict(o) for o in b.objects]} for b in seed.s3],
        "ssm": [asdict(p) for p in seed.ssm]})


def api_client(stub, region: str, key: tuple[str, str] | None = None):
    """A botocore chime-sdk-voice client bound to the stub, as users make one, signing with
    `key` (access key id, secret) when given; against AWS, with the usual credential chain
    (environment, profile, role) and the region's endpoint unless another is given."""
    session = botocore.session.get_session()
    config = Config(retries={"max_attempts": 1})
    key_id, secret = key or ("sip-harness", "sip-harness")
    if isinstance(stub, AwsTarget):
        return session.create_client("chime-sdk-voice", region_name=stub.settings.region,
                                     endpoint_url=stub.api_url, config=config)
    return session.create_client(
        "chime-sdk-voice", region_name=region, endpoint_url=stub.api_url,
        aws_access_key_id=key_id, aws_secret_access_key=secret, config=config)


def stub_filter(host: str, sip_port: int, api_port: int, rtp: tuple[int, int] | None,
                tls_port: int | None = None) -> str:
    """The BPF filter of a stub's traffic: SIP, its API, SIP over TLS and its RTP ports."""
    ports = f"port {sip_port} or tcp port {api_port}"
    if tls_port:
        ports += f" or tcp port {tls_port}"
    if rtp:
        ports += f" or udp portrange {rtp[0]}-{rtp[1]}"
    return f"host {host} and ({ports})"


def target_capture(path: Path, target, callers: tuple[int, int]) -> Capture:
    """The capture of a run's traffic with its target: the stub's ports on `lo`; against AWS,
    the service's SIP and the callers' RTP ports on the interface they leave by."""
    cfg = target.config
    if isinstance(target, AwsTarget):
        bpf = (f"(host {cfg.host} and port {target.tls_port or target.sip_port}) or "
               f"udp portrange {callers[0]}-{callers[1]}")
        return Capture(str(path), iface="lo" if cfg.host.startswith("127.") else "any", bpf=bpf)
    return Capture(str(path), iface="lo", bpf=stub_filter(cfg.host, target.sip_port, target.api_port,
                                                          cfg.rtp_port_range, getattr(target, "tls_port", None)))


@contextlib.contextmanager
def capturing(capture: Capture) -> Iterator[Capture]:
    """Run `capture` for the block; it stops once the last packets settled, whatever happens."""
    capture.start()
    try:
        yield capture
    finally:
        time.sleep(SETTLE_S)
        capture.stop()
