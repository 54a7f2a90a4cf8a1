"""The environment a handler process starts with: Lambda's variables and nothing else.

Lambda starts a function with its reserved variables (region, function name, memory,
runtime, log group, task root, the execution role's credentials), a few unreserved ones
(`LANG`, `TZ`, `PATH`, `NODE_PATH`/`PYTHONPATH`, where the function's layers come before the
bundled SDK as `/opt` does on Lambda) and the function configuration's
`Environment`. sip-harness builds exactly that from scratch, so the harness's own
`AWS_*` variables, `AWS_PROFILE` and `~/.aws` never reach a handler: the credentials are
local ones, `HOME` is a folder of the function's own, and every SDK is pointed at the local
services (`AWS_ENDPOINT_URL`) and at the stub's API (`AWS_ENDPOINT_URL_CHIME_SDK_VOICE`, and
`AWS_ENDPOINT_URL_CHIME` for the legacy client).
"""
from __future__ import annotations

import os
import secrets
import string
from dataclasses import dataclass, field
from pathlib import Path

from .runtimes import ResolvedRuntime

# Keys a function configuration may not set (Lambda refuses them).
RESERVED = frozenset({
    "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
})


@dataclass(frozen=True)
class RoleCredentials:
    """The temporary credentials of a function's execution role, as Lambda hands them over."""

    access_key_id: str
    secret_access_key: str
    session_token: str

    @classmethod
    def issue(cls) -> RoleCredentials:
        """Fresh random ones, for a stub whose API checks signatures: they sign its API calls
        and nothing else (they open no control route, and nobody else knows them)."""
        alphabet = string.ascii_uppercase + string.digits
        return cls("ASIA" + "".join(secrets.choice(alphabet) for _ in range(16)),
                   secrets.token_urlsafe(30), secrets.token_urlsafe(48))

    def variables(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.access_key_id,
                "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
                "AWS_SESSION_TOKEN": self.session_token}


#: what handlers get when the stub's API checks no signatures (moto accepts any)
LOCAL_CREDENTIALS = RoleCredentials("ASIASIPHARNESSLOCAL0", "sip-harness-local-secret-access-key",
                                    "sip-harness-local-session-token")


@dataclass(frozen=True)
class Endpoints:
    """Where the handler's SDK calls go: `aws` serves every service but the Chime ones (the
    local AWS services), `chime` is the stub's API."""

    aws: str | None = None
    chime: str | None = None

    def variables(self) -> dict[str, str]:
        out = {}
        if self.aws or self.chime:
            out["AWS_ENDPOINT_URL"] = self.aws or self.chime
        if self.chime:
            out["AWS_ENDPOINT_URL_CHIME_SDK_VOICE"] = self.chime
            out["AWS_ENDPOINT_URL_CHIME"] = self.chime
        return out


@dataclass(frozen=True)
class FunctionIdentity:
    """What the configuration of one function says about it."""

    name: str
    region: str
    memory_mb: int
    task_root: Path
    handler: str  # Lambda's handler string, e.g. "update_prompt.lambda_handler"
    environment: dict = field(default_factory=dict)
    layers: tuple[Path, ...] = ()  # what Lambda extracts into /opt, in order


def lambda_environment(runtime: ResolvedRuntime, fn: FunctionIdentity, endpoints: Endpoints,
                       home: Path, log_stream: str,
                       credentials: RoleCredentials = LOCAL_CREDENTIALS) -> dict[str, str]:
    """The complete environment of one worker process."""
    env = {
        "PATH": os.pathsep.join([str(Path(runtime.executable).parent), "/usr/local/bin",
                                 "/usr/bin", "/bin"]),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "HOME": str(home),
        **endpoints.variables(),
        **{k: str(v) for k, v in fn.environment.items()},
        "_HANDLER": fn.handler,
        "AWS_REGION": fn.region,
        "AWS_DEFAULT_REGION": fn.region,
        "AWS_EXECUTION_ENV": runtime.runtime.execution_env,
        "AWS_LAMBDA_FUNCTION_NAME": fn.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{fn.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
        "LAMBDA_TASK_ROOT": str(fn.task_root),
        "LAMBDA_RUNTIME_DIR": str(runtime.sdk_path),
        **credentials.variables(),
    }
    if runtime.runtime.language == "nodejs":  # both unreserved: a configuration may replace them
        env.setdefault("NODE_PATH", os.pathsep.join(
            [str(layer / "nodejs" / "node_modules") for layer in fn.layers]
            + [str(runtime.sdk_path), str(fn.task_root)]))
    else:
        version = "python%d.%d" % runtime.runtime.version
        env.setdefault("PYTHONPATH", os.pathsep.join(
            [str(p) for layer in fn.layers for p in (layer / "python" / "lib" / version / "site-packages",
                                                     layer / "python")]
            + [str(runtime.sdk_path)]))
    return env


#: The name a function configuration gives the project's own layer (`sip_harness.trace`).
TRACE_LAYER = "sip-harness-trace"


def layer_folder(base: Path, layer: str) -> Path:
    """A layer of a function configuration: a folder (relative to `base`) laid out as Lambda
    extracts a layer into /opt (`python/`, `nodejs/node_modules/`), or `TRACE_LAYER`."""
    if layer == TRACE_LAYER:
        return Path(__file__).resolve().parent.parent / "trace_layer"
    return (base / layer).resolve()


def reserved_keys(environment: dict) -> list[str]:
    """The keys of a configured environment that Lambda reserves for itself."""
    return sorted(k for k in environment if k in RESERVED)
