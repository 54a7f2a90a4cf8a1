"""The AWS SDKs that Lambda's runtimes bundle, installed into a folder the project owns.

Lambda puts an SDK beside each runtime (`/var/runtime`): boto3 for Python, the JavaScript SDK
v2 (`aws-sdk`) for nodejs16.x and the v3 clients (`@aws-sdk/client-*`) for nodejs18.x and
later. sip-harness keeps the same three bundles under `sdk_root()` (the virtual
environment's `lambda-sdks/`, or `$SIP_HARNESS_SDK_DIR`), never in the user's tree. The
versions are pinned by the manifests in `harness/lambdas/sdks/` (pip requirements, npm
lockfiles); `python -m harness.lambdas.bundled_sdks` installs every bundle that is missing or out
of date and does nothing, quickly, when all are present.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

MANIFESTS = Path(__file__).with_name("sdks")
BUNDLES = ("python", "nodejs-v2", "nodejs-v3")
STAMP = ".sip-harness-manifest"


class SdkInstallError(RuntimeError):
    """A bundle could not be installed (the installer's own words follow)."""


def sdk_root() -> Path:
    """Where the bundles live: `$SIP_HARNESS_SDK_DIR`, else `<sys.prefix>/lambda-sdks`."""
    override = os.environ.get("SIP_HARNESS_SDK_DIR")
    return Path(override) if override else Path(sys.prefix) / "lambda-sdks"


def bundle_dir(bundle: str) -> Path:
    """The folder a runtime puts on its module path: site-packages style for Python,
    a `node_modules` for Node.js."""
    base = sdk_root() / bundle
    return base if bundle == "python" else base / "node_modules"


def _digest(bundle: str) -> str:
    files = sorted(p for p in (MANIFESTS / bundle).iterdir() if p.is_file())
    h = hashlib.sha256()
    for path in files:
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def installed(bundle: str) -> bool:
    """Whether `bundle` is installed from the current manifest."""
    try:
        return (sdk_root() / bundle / STAMP).read_text().strip() == _digest(bundle)
    except OSError:  # absent, or not readable by this user
        return False


def install(bundle: str) -> None:
    """Install one bundle into a fresh folder, then swap it in (a failed install leaves the
    previous one untouched)."""
    root = sdk_root()
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{bundle}-", dir=root))
    staging.chmod(0o755)  # mkdtemp's 0700 would hide the SDK from handlers run as other users
    try:
        manifest = MANIFESTS / bundle
        if bundle == "python":
            _run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                  "--disable-pip-version-check", "--target", str(staging),
                  "-r", str(manifest / "requirements.txt")])
        else:
            npm = shutil.which("npm")
            if npm is None:
                raise SdkInstallError("npm is not installed (Debian package npm; "
                                      "`bash scripts/setup-system.sh` installs it)")
            for name in ("package.json", "package-lock.json"):
                shutil.copy(manifest / name, staging / name)
            _run([npm, "ci", "--omit=dev", "--no-audit", "--no-fund", "--loglevel=error"],
                 cwd=staging)
        (staging / STAMP).write_text(_digest(bundle) + "\n")
        target = root / bundle
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _run(argv: list[str], cwd: Path | None = None) -> None:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SdkInstallError(f"{' '.join(argv[:4])} ... failed ({done.returncode}):\n"
                              f"{(done.stderr or done.stdout).strip()[-2000:]}")


def main() -> int:
    """Install what is missing; print one line per bundle."""
    for bundle in BUNDLES:
        if installed(bundle):
            print(f"lambda SDK {bundle}: present in {sdk_root() / bundle}")
            continue
        print(f"lambda SDK {bundle}: installing into {sdk_root() / bundle}", flush=True)
        try:
            install(bundle)
        except SdkInstallError as exc:
            print(f"lambda SDK {bundle}: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
