"""The `sip-harness` command: run, validate and analyze.

Exit codes: 0 every profile passed; 1 a profile failed or erred; 2 bad usage or an invalid
profile (the message names file, line and field).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .profiles.schema import Profile, load_profile
from .profiles.strict import ProfileError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(ValueError):
    """A command-line value that cannot be used (a credentials or token file)."""


def find_profiles(paths: list[str]) -> list[Path]:
    """YAML files named directly or found (not recursively) in the folders named."""
    found: list[Path] = []
    for raw in paths or ["sip_profiles"]:
        path = Path(raw)
        if path.is_dir():
            found += sorted(p for p in path.glob("*.yaml"))
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"no such profile or folder: {raw}")
    return found


def _load_all(paths: list[str], keyword: str | None) -> list[Profile]:
    profiles = [load_profile(p) for p in find_profiles(paths)]
    if keyword:
        profiles = [p for p in profiles if keyword.lower() in f"{p.name} {p.path.stem}".lower()]
    return profiles


def _remote_access(args):
    """How `run --stub` authenticates: the control token (environment or file) and the
    first key of --credentials for SigV4."""
    from .remote import RemoteAccess
    token = os.environ.get(CONTROL_TOKEN_ENV)
    if not token and args.control_token_file:
        try:
            token = Path(args.control_token_file).read_text().strip()
        except OSError as exc:
            raise UsageError(f"--control-token-file: {exc}") from None
    key = None
    if args.credentials:
        key_id, (secret, _) = next(iter(_credentials(args.credentials, "").items()))
        key = (key_id, secret)
    return RemoteAccess(token, key)


def _credentials(path: str, default_account: str) -> dict[str, tuple[str, str]]:
    from .api.auth import CredentialsError, load_credentials
    try:
        return load_credentials(Path(path), default_account)
    except CredentialsError as exc:
        raise UsageError(str(exc)) from None


def cmd_run(args) -> int:
    from .report import write_junit
    from .runner import run_profiles
    profiles = _load_all(args.paths, args.k)
    if not profiles:
        print("no profile selected", file=sys.stderr)
        return EXIT_USAGE
    out = Path(args.out or f"artifacts/run-{time.strftime('%Y%m%d-%H%M%S')}").resolve()
    access = _remote_access(args) if args.stub else None
    results = run_profiles(profiles, out, progress=lambda line: print(line, flush=True),
                           stub_url=args.stub, access=access)
    print()
    for r in results:
        latency = f"{r.update_to_switch_ms:.1f} ms" if r.update_to_switch_ms is not None else "-"
        print(f"{r.verdict.upper():5} {r.profile}  update-to-switch {latency}  "
              f"artifacts {r.run_dir} (report.html)")
        for check in r.checks:
            print(f"      {'ok  ' if check.passed else 'FAIL'} {check.name}: {check.detail}")
        if r.error:
            print(f"      error: {r.error}")
    passed = sum(r.verdict == "pass" for r in results)
    junit = Path(args.junit) if args.junit else out / "junit.xml"
    partial = junit.with_name(f".{junit.name}.partial")
    try:  # whole or not at all: CI must not read half a file
        os.replace(write_junit(results, partial), junit)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        print(f"sip-harness: could not write {junit}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"\n{passed}/{len(results)} profiles passed; artifacts in {out} (JUnit: {junit})")
    return EXIT_OK if passed == len(results) else EXIT_FAILED


def cmd_validate(args) -> int:
    profiles = _load_all(args.paths, None)
    for p in profiles:
        print(f"ok  {p.path}: {p.name}")
    return EXIT_OK


CONTROL_TOKEN_ENV = "SIP_HARNESS_CONTROL_TOKEN"
CREDENTIALS_ENV = "SIP_HARNESS_CREDENTIALS"


def _control_token(args, out: Path) -> tuple[str, Path | None]:
    """The control token: from the environment, else a new one written (mode 0600) to
    --control-token-file (default OUT/control-token), whose path is returned."""
    import os
    import secrets
    if os.environ.get(CONTROL_TOKEN_ENV):
        return os.environ[CONTROL_TOKEN_ENV], None
    path = Path(args.control_token_file or out / "control-token")
    token = secrets.token_urlsafe(32)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token, path


def cmd_serve(args) -> int:
    import asyncio
    import dataclasses
    import signal
    from .api.server import ApiSettings
    from .control import ControlSettings
    from .runner import stub_config
    from .stub import Stub
    profile = load_profile(Path(args.profile))
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    low, _, high = args.rtp_ports.partition("-")
    api = ApiSettings(allowed_hosts=frozenset(args.allowed_host))
    if args.credentials:
        api = dataclasses.replace(api, credentials=_credentials(
            args.credentials, profile.stub.aws_account_id))
    control, token_file = None, None
    if args.control:
        token, token_file = _control_token(args, out)
        folders = tuple(Path(d) for d in args.profiles_dir) or (Path(args.profile).parent,)
        control = ControlSettings(token, folders)
    config = dataclasses.replace(stub_config(profile, out), host=args.host, sip_port=args.sip_port,
                                 api_port=args.api_port, rtp_port_range=(int(low), int(high)),
                                 api=api, control=control, journal_path=out / "journal.jsonl")

    def configurator(path: Path):
        return stub_config(load_profile(path), out)

    async def serve() -> None:
        stub = Stub(config, configurator)
        await stub.start_async()
        print(f"sip-harness serve: SIP udp {config.host}:{stub.sip_port}, API {stub.api_url}"
              f"{' (SigV4)' if api.credentials else ''}, RTP {args.rtp_ports}, "
              f"SMA {profile.stub.sip_media_application_id}, journal {config.journal_path}",
              flush=True)
        if control is not None:
            print(f"sip-harness serve: control routes on /_harness/ (token "
                  f"{f'in {token_file}' if token_file else f'from ${CONTROL_TOKEN_ENV}'}; "
                  f"profiles from {', '.join(map(str, control.profile_dirs))})", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        stop.clear()  # a second signal ends the drain early
        started = loop.time()
        drain = asyncio.ensure_future(stub.drain(args.drain_seconds))
        await asyncio.wait([drain, asyncio.ensure_future(stop.wait())],
                           return_when=asyncio.FIRST_COMPLETED)
        calls = drain.result() if drain.done() else "?"
        drain.cancel()
        await stub.stop_async()
        print(f"sip-harness serve: drained {calls} calls in {loop.time() - started:.1f} s; "
              f"journal in {config.journal_path}", flush=True)

    asyncio.run(serve())
    return EXIT_OK


def cmd_call(args) -> int:
    """One troubleshooting call: place it, capture it, hang up, print what the wire shows."""
    from .caller import Caller, CallerError
    from .runner import load_prompts
    from .wire.analysis import analyze_pcap
    from .wire.capture import Capture, CaptureError
    from .wire.report_text import render_analysis
    from .sip.uri import SipUri, UriError
    try:
        host = SipUri.parse(args.uri).host
    except UriError as exc:
        print(f"sip-harness: {exc}", file=sys.stderr)
        return EXIT_USAGE
    out = Path(args.out or f"artifacts/call-{time.strftime('%Y%m%d-%H%M%S')}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    pcap = out / "capture.pcap"
    try:
        with Capture(pcap, iface=args.iface or ("lo" if host.startswith("127.") else "any"),
                     bpf=f"host {host}"), Caller(transport=args.transport, workdir=out / "caller") as caller:
            call = caller.call(args.uri, headers=dict(h.split(":", 1) for h in args.header),
                               record_to=out / "heard.wav", play=Path(args.play) if args.play else None)
            print(f"calling {args.uri} ...", flush=True)
            call.wait_for("CONFIRMED", timeout=args.timeout)
            print(f"answered ({call.call_id}); holding {args.duration} s", flush=True)
            if args.dtmf:
                time.sleep(0.5)
                call.send_dtmf(args.dtmf)
            deadline = time.monotonic() + args.duration
            while call.state != "DISCONNECTED" and time.monotonic() < deadline:
                time.sleep(0.1)
            if call.state != "DISCONNECTED":
                call.hangup()
            call.wait_for("DISCONNECTED", timeout=10)
            status = call.last_status
            time.sleep(0.3)
    except (CallerError, CaptureError) as exc:
        print(f"sip-harness: {exc}", file=sys.stderr)
        return EXIT_FAILED
    prompts = load_prompts(Path(args.bucket)) if args.bucket else None
    print(render_analysis(analyze_pcap(str(pcap)), prompts))
    print(f"final status {status}; capture, recording and logs in {out}")
    return EXIT_OK


def cmd_analyze(args) -> int:
    from .runner import load_prompts
    from .wire.analysis import analyze_pcap
    from .wire.pcap import PcapError
    from .wire.report_text import render_analysis
    try:
        analysis = analyze_pcap(args.pcap)
    except (OSError, PcapError) as exc:
        print(f"sip-harness: {args.pcap}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    prompts = load_prompts(Path(args.bucket)) if args.bucket else None
    print(render_analysis(analysis, prompts))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The command line of `sip-harness` (also used to check the compose file's commands)."""
    parser = argparse.ArgumentParser(prog="sip-harness", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run profiles against the embedded stub")
    run.add_argument("paths", nargs="*", help="profile files or folders (default: sip_profiles)")
    run.add_argument("-k", help="only profiles whose name or file name contains this")
    run.add_argument("--out", help="artifact folder (default: artifacts/run-<time>)")
    run.add_argument("--junit", metavar="FILE", help="JUnit XML file (default: OUT/junit.xml)")
    run.add_argument("--stub", metavar="URL",
                     help="run against `sip-harness serve` at URL (its API base) instead of an embedded stub")
    run.add_argument("--control-token-file", metavar="FILE",
                     help=f"the served stub's control token (or ${CONTROL_TOKEN_ENV})")
    run.add_argument("--credentials", metavar="FILE", default=os.environ.get(CREDENTIALS_ENV),
                     help="AWS shared-credentials file whose first key signs requests to a "
                          "`serve --credentials` stub")
    run.set_defaults(func=cmd_run)
    validate = sub.add_parser("validate", help="check profiles without running them")
    validate.add_argument("paths", nargs="*")
    validate.set_defaults(func=cmd_validate)
    serve = sub.add_parser("serve", help="run the stub and its API as a long-running service")
    serve.add_argument("--profile", default="sip_profiles/update_switches_prompt.yaml",
                       help="the profile whose stub section (SMA, handler, bucket) to serve")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--sip-port", type=int, default=5060)
    serve.add_argument("--api-port", type=int, default=8080)
    serve.add_argument("--rtp-ports", default="20000-20400", help="LOW-HIGH")
    serve.add_argument("--out", default="artifacts/serve",
                       help="folder for the journal (journal.jsonl), handler logs, recordings")
    serve.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                       help="a host name clients may use in Host (IP literals and localhost "
                            "always may); repeatable")
    serve.add_argument("--credentials", metavar="FILE", default=os.environ.get(CREDENTIALS_ENV),
                       help="AWS shared-credentials file: the API then requires SigV4 signed "
                            f"with one of its keys (default: ${CREDENTIALS_ENV})")
    serve.add_argument("--control", action="store_true",
                       help="serve the /_harness/ control routes (remote runs), behind a token")
    serve.add_argument("--control-token-file", metavar="FILE",
                       help=f"where a new control token is written (default OUT/control-token; "
                            f"${CONTROL_TOKEN_ENV} gives one instead)")
    serve.add_argument("--profiles-dir", action="append", default=[], metavar="DIR",
                       help="a folder /_harness/configure may load profiles from (default: "
                            "the folder of --profile); repeatable")
    serve.add_argument("--drain-seconds", type=float, default=10.0,
                       help="on SIGTERM/SIGINT, how long to wait for calls to end")
    serve.set_defaults(func=cmd_serve)
    call = sub.add_parser("call", help="one troubleshooting call to any SIP URI, captured and analysed")
    call.add_argument("uri", help="e.g. sip:+14345550101@127.0.0.1:5060")
    call.add_argument("--duration", type=float, default=5.0, help="seconds to stay on the call")
    call.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for an answer")
    call.add_argument("--dtmf", help="digits to send (RFC 4733) once answered")
    call.add_argument("--play", help="a WAV file to send")
    call.add_argument("--header", action="append", default=[], metavar="NAME:VALUE")
    call.add_argument("--transport", choices=("udp", "tcp"), default="udp")
    call.add_argument("--iface", help="capture interface (default: lo for 127.x, else any)")
    call.add_argument("--bucket", help="a folder of WAV prompts to recognise in the audio")
    call.add_argument("--out", help="artifact folder (default: artifacts/call-<time>)")
    call.set_defaults(func=cmd_call)
    analyze = sub.add_parser("analyze", help="read any capture: SIP ladder and RTP streams")
    analyze.add_argument("pcap")
    analyze.add_argument("--bucket", help="a folder of WAV prompts to recognise in the audio")
    analyze.set_defaults(func=cmd_analyze)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ProfileError, FileNotFoundError, UsageError) as exc:
        print(f"sip-harness: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
