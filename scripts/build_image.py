"""Builds the sip-harness image: `make image` and `make image-base` call this.

    python3 scripts/build_image.py image [--base IMAGE] [--tag NAME] [--network host]
    python3 scripts/build_image.py wheelhouse
    python3 scripts/build_image.py base [--tag NAME]

`image` fills the wheelhouse and the SDK folder, then builds the Dockerfile on `--base`. The
wheelhouse (`build/wheelhouse`) holds wheels of the project's dependencies for the image's
Python (CPython 3.11 on Debian bookworm, this machine's architecture), downloaded by pip on this
machine: the image installs from it with `--no-index`, so the build needs no index of its own
(networks where only the host reaches one, or where containers do not trust its certificates).
The SDK folder (`build/lambda-sdks`) holds the AWS SDKs the Lambda runtimes bundle (pure Python
and JavaScript), installed on this machine by `python -m harness.lambdas.bundled_sdks`.

`base` makes a Debian bookworm image without any image registry: debootstrap builds a root
file system from Debian's packages and `docker import` makes it an image. It keeps an image
of that name that already exists (`--force` builds it again).
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WHEELHOUSE = ROOT / "build" / "wheelhouse"
SDKS = ROOT / "build" / "lambda-sdks"
DEFAULT_BASE = "python:3.11-slim-bookworm"
LOCAL_BASE = "sip-harness-base:bookworm"
DEFAULT_TAG = "sip-harness"
#: The image's interpreter and C library (Debian bookworm: glibc 2.36).
IMAGE_PYTHON, IMAGE_GLIBC_MINOR = "3.11", 36


class BuildError(RuntimeError):
    """A step failed; the message says which and why."""


def requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """What the image installs besides the project: its build backend and its dependencies."""
    data = tomllib.loads(pyproject.read_text())
    return data["build-system"]["requires"] + data["project"]["dependencies"]


def wheel_platforms(machine: str = platform.machine()) -> list[str]:
    """pip's platform tags for wheels that run on the image's glibc, newest first."""
    return [f"manylinux_2_{minor}_{machine}" for minor in range(IMAGE_GLIBC_MINOR, 4, -1)] + \
        [f"manylinux2014_{machine}"]


def run(cmd: list[str], what: str, **kw) -> None:
    """Run one step, and say how long it took."""
    print(f"build_image: {what} ...", flush=True)
    start = time.monotonic()
    try:
        subprocess.run(cmd, check=True, **kw)
    except FileNotFoundError:
        raise BuildError(f"{what}: {cmd[0]!r} is not installed") from None
    except subprocess.CalledProcessError as exc:
        raise BuildError(f"{what} failed (exit {exc.returncode})") from None
    print(f"build_image: {what}: {time.monotonic() - start:.1f} s", flush=True)


def build_wheelhouse(out: Path = WHEELHOUSE) -> Path:
    """Download wheels of every requirement (and theirs) for the image's Python into `out`."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(out),
           "--only-binary=:all:", "--implementation", "cp", "--python-version", IMAGE_PYTHON,
           "--abi", "cp" + IMAGE_PYTHON.replace(".", "")]
    for tag in wheel_platforms():
        cmd += ["--platform", tag]
    run(cmd + requirements(), f"the wheelhouse ({out})")
    return out


def image_exists(name: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", name], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def build_base(tag: str = LOCAL_BASE, force: bool = False, suite: str = "bookworm",
               mirror: str | None = os.environ.get("DEBIAN_MIRROR")) -> bool:
    """Make `tag` from `debootstrap --variant=minbase`; False when it already existed."""
    if image_exists(tag) and not force:
        print(f"{tag}: exists, kept", flush=True)
        return False
    with tempfile.TemporaryDirectory(prefix="sip-harness-base-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        run(["debootstrap", "--variant=minbase", suite, str(rootfs)] + ([mirror] if mirror else []),
            f"debootstrap {suite}", stdout=subprocess.DEVNULL)
        for deb in (rootfs / "var/cache/apt/archives").glob("*.deb"):
            deb.unlink()
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        try:
            run(["docker", "import", "-", tag], f"docker import {tag}", stdin=tar.stdout)
        finally:
            tar.stdout.close()
            tar.wait()
    return True


def build_sdks(out: Path = SDKS) -> Path:
    """The bundled AWS SDKs in `out` (kept when already installed from the same manifests)."""
    run([sys.executable, "-m", "harness.lambdas.bundled_sdks"], f"the Lambda runtimes' SDKs ({out})",
        cwd=ROOT, env={**os.environ, "SIP_HARNESS_SDK_DIR": str(out)})
    return out


def build_image(base: str = DEFAULT_BASE, tag: str = DEFAULT_TAG, network: str | None = None) -> None:
    """The wheelhouse and the SDKs, then the image `tag` on `base` from this checkout."""
    build_wheelhouse()
    build_sdks()
    cmd = ["docker", "build", "--build-arg", f"BASE_IMAGE={base}", "--tag", tag]
    if network:
        cmd += ["--network", network]
    run(cmd + [str(ROOT)], f"docker build {tag} on {base}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    image = sub.add_parser("image", help="the wheelhouse, then the image")
    image.add_argument("--base", default=DEFAULT_BASE, help=f"base image (default {DEFAULT_BASE})")
    image.add_argument("--tag", default=DEFAULT_TAG, help=f"image name (default {DEFAULT_TAG})")
    image.add_argument("--network", help="network of the build's RUN steps (e.g. host)")
    sub.add_parser("wheelhouse", help=f"only the wheelhouse ({WHEELHOUSE.relative_to(ROOT)})")
    base = sub.add_parser("base", help="a Debian bookworm base image made with debootstrap")
    base.add_argument("--tag", default=LOCAL_BASE, help=f"image name (default {LOCAL_BASE})")
    base.add_argument("--force", action="store_true", help="build it again even if it exists")
    args = parser.parse_args(argv)
    try:
        if args.step == "image":
            build_image(args.base, args.tag, args.network)
        elif args.step == "wheelhouse":
            build_wheelhouse()
        else:
            build_base(args.tag, args.force)
    except BuildError as exc:
        print(f"build_image: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
