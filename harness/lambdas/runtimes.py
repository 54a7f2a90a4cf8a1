"""Lambda runtimes by name: which interpreter runs a handler and which SDK it finds bundled.

A runtime name is what a function's configuration says (`python3.12`, `nodejs20.x`). Python
runtimes are honoured exactly: `python3.12` runs under a Python 3.12 interpreter of this
machine (`$SIP_HARNESS_PYTHON3_12`, pyenv's versions, `python3.12` on PATH), and when there
is none that is an error, never another version. Node.js runtimes all run under the
machine's one `node`; the name selects the SDK bundled with it (v2 for nodejs16.x, v3 from
nodejs18.x) and `AWS_EXECUTION_ENV`. A handler that names no runtime gets the newest Python
runtime this machine can run, or the newest Node.js runtime.
"""
from __future__ import annotations

import difflib
import functools
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .bundled_sdks import bundle_dir, installed

NODE_SUFFIXES = (".js", ".cjs", ".mjs")
_HERE = Path(__file__).parent


@dataclass(frozen=True)
class Runtime:
    """One runtime identifier and the SDK bundle Lambda ships with it."""

    name: str
    language: str  # "python" or "nodejs"
    version: tuple[int, ...]
    sdk: str  # a bundle of bundled_sdks

    @property
    def execution_env(self) -> str:
        return f"AWS_Lambda_{self.name}"


RUNTIMES = {r.name: r for r in (
    Runtime("python3.11", "python", (3, 11), "python"),
    Runtime("python3.12", "python", (3, 12), "python"),
    Runtime("python3.13", "python", (3, 13), "python"),
    Runtime("nodejs16.x", "nodejs", (16,), "nodejs-v2"),
    Runtime("nodejs18.x", "nodejs", (18,), "nodejs-v3"),
    Runtime("nodejs20.x", "nodejs", (20,), "nodejs-v3"),
    Runtime("nodejs22.x", "nodejs", (22,), "nodejs-v3"),
)}
DEFAULT_NODE = "nodejs22.x"


class RuntimeUnavailable(RuntimeError):
    """The named runtime cannot be honoured on this machine (the message says why and what
    to do)."""


def language_of(spec: str) -> str | None:
    """"python", "nodejs", or None for a Lambda-Invoke URL (whose runtime is its own)."""
    if spec.startswith(("http://", "https://")):
        return None
    return "nodejs" if spec.partition(":")[0].endswith(NODE_SUFFIXES) else "python"


def runtime_problem(name: str | None, spec: str) -> str | None:
    """Why `name` cannot run the handler `spec` (unknown name, other language), or None."""
    if name is None:
        return None
    runtime = RUNTIMES.get(name)
    if runtime is None:
        close = difflib.get_close_matches(name, RUNTIMES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown runtime {name!r}{hint}; sip-harness runs {', '.join(RUNTIMES)}"
    language = language_of(spec)
    if language is None:
        return "a Lambda-Invoke URL runs in its own runtime: leave runtime out"
    if runtime.language != language:
        kind = "Node.js" if language == "nodejs" else "Python"
        return f"runtime {name} cannot run {spec!r}, a {kind} handler"
    return None


@dataclass(frozen=True)
class ResolvedRuntime:
    """A runtime made concrete on this machine: the executable and the bundled SDK's folder."""

    runtime: Runtime
    executable: str
    executable_version: str
    sdk_path: Path
    sdk_installed: bool

    @property
    def name(self) -> str:
        return self.runtime.name

    def describe(self) -> str:
        """What the INIT_START line says about the interpreter that really runs."""
        sdk = "" if self.sdk_installed else f"; bundled SDK missing from {self.sdk_path}"
        return f"{self.executable} {self.executable_version}{sdk}"


def resolve(name: str | None, spec: str) -> ResolvedRuntime:
    """The runtime that runs `spec`: the one named, or the default for its language."""
    problem = runtime_problem(name, spec)
    if problem:
        raise RuntimeUnavailable(problem)
    language = language_of(spec)
    if name is None:
        name = DEFAULT_NODE if language == "nodejs" else _default_python()
    runtime = RUNTIMES[name]
    if language == "nodejs":
        node = shutil.which("node")
        if node is None:
            raise RuntimeUnavailable(f"{name}: node is not installed (Debian package nodejs; "
                                     "`make setup` installs it)")
        executable, version = node, _node_version(node)
    else:
        found = find_python(runtime.version)
        if found is None:
            raise RuntimeUnavailable(_no_python(runtime))
        executable, version = str(found), ".".join(map(str, runtime.version))
    return ResolvedRuntime(runtime, executable, version, bundle_dir(runtime.sdk),
                           installed(runtime.sdk))


def _default_python() -> str:
    for name in sorted((n for n, r in RUNTIMES.items() if r.language == "python"),
                       key=lambda n: RUNTIMES[n].version, reverse=True):
        if find_python(RUNTIMES[name].version) is not None:
            return name
    raise RuntimeUnavailable("no Python 3.11, 3.12 or 3.13 interpreter found for the handler")


def _no_python(runtime: Runtime) -> str:
    major, minor = runtime.version
    return (f"runtime {runtime.name} needs a Python {major}.{minor} interpreter and this machine "
            f"has none (looked at $SIP_HARNESS_PYTHON{major}_{minor}, pyenv's versions and "
            f"python{major}.{minor} on PATH); install one, set SIP_HARNESS_PYTHON{major}_{minor} "
            f"to it, or name another runtime")


@functools.lru_cache(maxsize=None)
def find_python(version: tuple[int, int]) -> Path | None:
    """A Python interpreter of exactly `version` (major, minor), or None."""
    major, minor = version
    override = os.environ.get(f"SIP_HARNESS_PYTHON{major}_{minor}")
    if override:
        return Path(override) if _is_python(Path(override), version) else None
    if sys.version_info[:2] == version:
        return Path(getattr(sys, "_base_executable", sys.executable))
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    patches = sorted((p for p in pyenv.glob(f"{major}.{minor}.*")
                      if re.fullmatch(rf"{major}\.{minor}\.\d+", p.name)),
                     key=lambda p: int(p.name.rsplit(".", 1)[1]), reverse=True)
    for folder in patches:
        exe = folder / "bin" / f"python{major}.{minor}"
        if exe.is_file() and os.access(exe, os.X_OK):
            return exe
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        exe = Path(folder) / f"python{major}.{minor}"
        if "shims" not in Path(folder).parts and exe.is_file() and os.access(exe, os.X_OK):
            return exe
    return None


def _is_python(path: Path, version: tuple[int, int]) -> bool:
    try:
        out = subprocess.run([str(path), "-S", "-c", "import sys; print(sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=10).stdout
    except OSError:
        return False
    return out.strip() == str(tuple(version))


@functools.lru_cache(maxsize=None)
def _node_version(node: str) -> str:
    try:
        return subprocess.run([node, "--version"], capture_output=True, text=True,
                              timeout=10).stdout.strip() or "unknown version"
    except OSError:
        return "unknown version"


PYTHON_WORKER = _HERE / "handler_worker.py"
NODE_WORKER = _HERE / "node_worker.js"
NODE_ESM_HOOKS = _HERE / "node_esm_hooks.mjs"
