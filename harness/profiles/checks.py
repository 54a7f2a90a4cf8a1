"""What a profile needs from the machine, checked before anything runs: the handler file and
its runtime, the bucket folder, every file and prompt the profile names, and a callee for
every number the run places a call to where that is static (`create_call` steps, and the
CallAndBridge endpoints written as literals in a Python handler).

Each finding is a `ProfileError` at the line at fault (of the profile, or of the handler
file for a CallAndBridge number). `blocks_run` findings make `sip-harness run` report the
profile as an ERROR without starting it; the others only `validate` reports (the run would
show their effect, and a profile may mean it: a callee that does not answer is named with
`answer: false`).
"""
from __future__ import annotations

import ast
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from ..run.verify import named_prompts
from .schema import HANDLER_SUFFIXES, Profile, handler_problem, handler_target
from .strict import ProfileError, problem


@dataclass(frozen=True)
class Finding:
    error: ProfileError
    blocks_run: bool = True

    def __str__(self) -> str:
        return str(self.error)


def check_profile(profile: Profile) -> list[Finding]:
    """Every finding for a loaded profile, in file order."""
    base = profile.path.parent
    found = [*_handler(profile, base), *_files(profile, base), *_routes(profile, base)]
    return sorted(found, key=lambda f: (f.error.filename != str(profile.path), f.error.line,
                                        f.error.column))


def preflight(profile: Profile) -> list[str]:
    """The findings that keep the profile from running, as messages."""
    return [str(f) for f in check_profile(profile) if f.blocks_run]


def _handler(profile: Profile, base: Path) -> list[Finding]:
    stub = profile.stub
    spec = stub.handler
    found = handler_problem(profile)
    if found is not None:
        return [Finding(found)]
    if spec.startswith(("http://", "https://")):
        return []
    path = handler_target(base, spec)
    if path is None:  # module:function, imported from the working folder or the installed packages
        module = spec.partition(":")[0]
        if not module or importlib.util.find_spec(module.split(".")[0]) is None:
            return [Finding(problem(stub, ("handler",), f"no module named {module.split('.')[0]!r}: a "
                                    "handler is a .py or .js/.cjs/.mjs file (relative to the profile), "
                                    "module:function, or an http(s):// Lambda Invoke URL"))]
        return []
    if path.suffix not in HANDLER_SUFFIXES:
        return [Finding(problem(stub, ("handler",), f"no runtime runs {path.suffix or 'a file without suffix'}"
                                f" handlers: give a .py or .js/.cjs/.mjs file"))]
    if path.suffix != ".py":
        return []
    function = spec.partition(":")[2]
    try:
        tree = ast.parse(path.read_bytes(), str(path))
    except SyntaxError as exc:
        return [Finding(ProfileError(str(path), _Mark(exc.lineno or 1, (exc.offset or 1) - 1), "",
                                     f"the handler does not compile: {exc.msg}"))]
    names = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    names |= {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets
              if isinstance(t, ast.Name)}
    names |= {a.asname or a.name for n in tree.body if isinstance(n, ast.ImportFrom) for a in n.names}
    wanted = [function] if function else ["lambda_handler", "handler"]
    if not names & set(wanted):
        return [Finding(problem(stub, ("handler",), f"{path.name} defines no function "
                                f"{' or '.join(wanted)}"))]
    return []


def _files(profile: Profile, base: Path) -> list[Finding]:
    stub = profile.stub
    bucket = (base / stub.bucket_dir).resolve()
    found: list[Finding] = []
    if not bucket.is_dir():
        found.append(Finding(problem(stub, ("bucket_dir",), f"no such folder: {bucket}")))
    for i, step in enumerate(profile.steps):
        if step.call and step.call.play and not (base / step.call.play).is_file():
            found.append(Finding(problem(step.call, ("play",), f"no such file: {(base / step.call.play).resolve()}")))
    for callee in profile.callees:
        if callee.play and not (base / callee.play).is_file():
            found.append(Finding(problem(callee, ("play",), f"no such file: {(base / callee.play).resolve()}")))
    if not bucket.is_dir():
        return found
    prompts = {p.name for p in bucket.rglob("*.wav")}
    for at, name in named_prompts(profile.expect):
        if name not in prompts:
            found.append(Finding(problem(profile.expect, at, f"no prompt {name!r} (a WAV file) under {bucket}"),
                                 blocks_run=False))
    return found


def _routes(profile: Profile, base: Path) -> list[Finding]:
    """A callee for each create_call target (the API refuses a number without a route) and for
    each literal CallAndBridge endpoint of a Python handler."""
    numbers = {c.number for c in profile.callees}
    found = [Finding(problem(step.create_call, ("to",), f"no callee answers {step.create_call.to}: "
                             "CreateSipMediaApplicationCall needs one (add it under callees)"))
             for step in profile.steps if step.create_call and step.create_call.to not in numbers]
    path = handler_target(base, profile.stub.handler)
    if path is None or path.suffix != ".py" or not path.is_file():
        return found
    try:
        tree = ast.parse(path.read_bytes(), str(path))
    except SyntaxError:
        return found  # said by _handler
    for uri in _bridge_endpoints(tree):
        if uri.value not in numbers:
            found.append(Finding(ProfileError(
                str(path), _Mark(uri.lineno, uri.col_offset), "CallAndBridge.Endpoints.Uri",
                f"no callee answers {uri.value} in {profile.path.name}: add it under callees "
                f"(`answer: false` for one that must not answer)"), blocks_run=False))
    return found


class _Mark:
    """A yaml.Mark-like position (0-based) for a place in a handler file."""

    def __init__(self, lineno: int, col_offset: int):
        self.line, self.column = lineno - 1, col_offset


def _bridge_endpoints(tree: ast.AST) -> list[ast.Constant]:
    """The literal `Uri` strings of CallAndBridge actions written as dict literals."""
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Dict) or _get(node, "Type") is None:
            continue
        kind = _get(node, "Type")
        if not (isinstance(kind, ast.Constant) and kind.value == "CallAndBridge"):
            continue
        params = _get(node, "Parameters")
        endpoints = _get(params, "Endpoints") if isinstance(params, ast.Dict) else None
        for endpoint in endpoints.elts if isinstance(endpoints, (ast.List, ast.Tuple)) else []:
            uri = _get(endpoint, "Uri") if isinstance(endpoint, ast.Dict) else None
            if isinstance(uri, ast.Constant) and isinstance(uri.value, str):
                out.append(uri)
    return out


def _get(node: ast.Dict, key: str) -> ast.AST | None:
    return next((v for k, v in zip(node.keys, node.values)
                 if isinstance(k, ast.Constant) and k.value == key), None)
