"""The `sip-harness` command: run, report, validate, serve, calls, call, analyze, load and fidelity (see
`DESCRIPTION`, which `--help` prints)."""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .profiles.schema import Profile, load_profile
from .profiles.strict import ProfileError, ProfileErrors, errors_of
from .serve import CONTROL_TOKEN_ENV, CREDENTIALS_ENV

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(ValueError):
    """A command-line value that cannot be used (a credentials or token file)."""


def find_profiles(paths: list[str]) -> list[Path]:
    """YAML files named directly or found (not recursively) in the folders named."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += sorted(p for p in path.glob("*.yaml"))
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"no such profile or folder: {raw}")
    return found


def _load_each(paths: list[str]) -> list[tuple[Path, Profile | None, list[ProfileError]]]:
    """Every profile file named, loaded, with every fault of each (all files are read)."""
    out = []
    for path in find_profiles(paths):
        try:
            out.append((path, load_profile(path, check_handler=False), []))
        except ProfileError as exc:
            out.append((path, None, errors_of(exc)))
    return out


def _load_all(paths: list[str], keyword: str | None) -> list[Profile]:
    """The profiles named; ProfileErrors with the faults of every file when one has any."""
    loaded = _load_each(paths)
    faults = [e for _, _, errors in loaded for e in errors]
    if faults:
        raise ProfileErrors(faults)
    profiles = [profile for _, profile, _ in loaded]
    if keyword:
        profiles = [p for p in profiles if keyword.lower() in f"{p.name} {p.path.stem}".lower()]
    return profiles


def _remote_access(args):
    """How `run --stub` authenticates: the control token (environment or file) and the
    first key of --credentials for SigV4."""
    from .remote import RemoteAccess, RemoteStubError, control_token
    try:
        token = control_token(args.control_token_file)
    except RemoteStubError as exc:
        raise UsageError(f"--control-token-file: {exc}") from None
    key = None
    if getattr(args, "credentials", None):
        key_id, (secret, _) = next(iter(_credentials(args.credentials[:1], "").items()))
        key = (key_id, secret)
    return RemoteAccess(token, key)


def _default_credentials() -> list[str]:
    return [os.environ[CREDENTIALS_ENV]] if os.environ.get(CREDENTIALS_ENV) else []


def _credentials(values: list[str], default_account: str) -> dict[str, tuple[str, str]]:
    from .api.auth import CredentialsError, parse_credentials
    try:
        return parse_credentials(values, default_account)
    except CredentialsError as exc:
        raise UsageError(str(exc)) from None


def cmd_run(args) -> int:
    from .parallel import parse_shard, run_parallel, shard
    from .report import write_junit
    from .report.run_report import write_run_report
    from .report.summary import result_lines
    from .run.profile import run_profiles
    profiles = _load_all(args.paths, args.k)
    if args.shard:
        try:
            profiles = shard(profiles, *parse_shard(args.shard))
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if not profiles:
        print("no profile selected", file=sys.stderr)
        return EXIT_USAGE
    out = Path(args.out or f"artifacts/run-{time.strftime('%Y%m%d-%H%M%S')}").resolve()
    aws = _aws_settings(args) if args.target == "aws" else None
    if args.target == "aws" and args.stub:
        print("sip-harness: --stub and --target aws exclude each other", file=sys.stderr)
        return EXIT_USAGE
    access = _remote_access(args) if args.stub else None
    progress = lambda line: print(line, flush=True)  # noqa: E731
    if args.jobs > 1:
        try:
            results = run_parallel(profiles, out, args.jobs, progress, args.stub, access, aws)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    else:
        results = run_profiles(profiles, out, progress, stub_url=args.stub, access=access, aws=aws)
    print()
    for r in results:
        latency = f"{r.update_to_switch_ms:.1f} ms" if r.update_to_switch_ms is not None else "-"
        print(f"{r.verdict.upper():5} {r.profile}  update-to-switch {latency}  "
              f"artifacts {r.run_dir} (report.html)")
        for line in result_lines(r):
            print(f"      {line}")
    passed = sum(r.verdict == "pass" for r in results)
    junit = Path(args.junit) if args.junit else out / "junit.xml"
    partial = junit.with_name(f".{junit.name}.partial")
    try:  # whole or not at all: CI must not read half a file
        os.replace(write_junit(results, partial), junit)
        write_run_report(results, out)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        print(f"sip-harness: could not write {junit}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"\n{passed}/{len(results)} profiles passed; artifacts in {out} (JUnit: {junit})")
    return EXIT_OK if passed == len(results) else EXIT_FAILED


def cmd_report_merge(args) -> int:
    """Merge shards' run folders into one run report."""
    from .report.run_report import MergeError, merge_runs
    try:
        run, junit = merge_runs([Path(f) for f in args.folders], Path(args.out))
    except MergeError as exc:
        print(f"sip-harness report merge: {exc}", file=sys.stderr)
        return EXIT_USAGE
    import json
    counts = json.loads(run.read_text())["counts"]
    print(f"{counts['passed']}/{counts['profiles']} profiles passed in {len(args.folders)} "
          f"folders; {run} and {junit}")
    return EXIT_OK if counts["passed"] == counts["profiles"] else EXIT_FAILED


def _aws_settings(args):
    from .aws_target import AwsSettings
    missing = [flag for flag, value in (("--region", args.region), ("--sma-id", args.sma_id),
                                        ("--voice-connector", args.voice_connector)) if not value]
    if missing:
        raise SystemExit(f"sip-harness: --target aws needs {', '.join(missing)}")
    return AwsSettings(region=args.region, sip_media_application_id=args.sma_id,
                       sip_host=args.voice_connector, number=args.number, transport=args.transport,
                       endpoint_url=args.endpoint_url,
                       ca_file=Path(args.ca_file).resolve() if args.ca_file else None,
                       trace=Path(args.trace).resolve() if args.trace else None)


def cmd_validate(args) -> int:
    """Every fault of every file, each `file:line:col: field: message`, before anything runs."""
    from .profiles.checks import check_profile
    faults = 0
    for path, profile, errors in _load_each(args.paths):
        found = [str(e) for e in errors] + ([str(f) for f in check_profile(profile)] if profile else [])
        for line in found:
            print(line, file=sys.stderr)
        if profile is not None and not found:
            print(f"ok  {path}: {profile.name}")
        faults += len(found)
    if faults:
        print(f"sip-harness: {faults} problem{'s' if faults != 1 else ''} found", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def cmd_serve(args) -> int:
    """Serve one stub, or a cluster of them (--workers, --worker), in a new event loop."""
    import asyncio
    from .serve import ServeOptions, StartupError, parse_port_range, serve
    try:
        options = ServeOptions(Path(args.profile) if args.profile else None, args.host, args.sip_port,
                               args.api_port, parse_port_range(args.rtp_ports), Path(args.out),
                               args.log_format, args.transaction_artifacts, args.tls_port,
                               args.credentials, frozenset(args.allowed_host), args.control,
                               Path(args.control_token_file) if args.control_token_file else None,
                               tuple(Path(d) for d in args.profiles_dir), args.drain_seconds,
                               args.worker_index, args.workers, tuple(args.worker))
        os.environ.setdefault("PYTHONUNBUFFERED", "1")
        if options.workers or options.remote_workers:
            from .cluster.serve_cluster import serve_cluster
            asyncio.run(serve_cluster(options))
        else:
            asyncio.run(serve(options))
    except StartupError as exc:
        print(f"sip-harness serve: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def cmd_calls(args) -> int:
    """The calls up now on a served stub, with their TransactionIds."""
    import json
    from .remote import RemoteStubError, control_request
    try:
        calls = control_request(args.stub, "/_harness/calls", access=_remote_access(args))
    except RemoteStubError as exc:
        print(f"sip-harness: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print(json.dumps(calls, indent=2))
        return EXIT_OK
    if not calls:
        print("no call is up")
    for call in calls:
        where = f" (session {call['session']})" if call["session"] else ""
        print(f"TransactionId {call['transaction_id']}  SMA {call['sip_media_application_id']}{where}")
        for leg in call["legs"]:
            print(f"    {leg['ParticipantTag']} {leg['Direction']:8} from {leg['From']} to {leg['To']}  "
                  f"{leg.get('Status', 'not answered')}  CallId {leg['CallId']}  SIP Call-ID {leg['SipCallId']}")
    return EXIT_OK


def cmd_call(args) -> int:
    """One troubleshooting call: place it, capture it, hang up, print what the wire shows."""
    from .caller import Caller, CallerError
    from .wire.audio import load_prompts
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
                     bpf=f"host {host}"), Caller(
                transport=args.transport, workdir=out / "caller", srtp=args.srtp, ca_file=args.ca_file,
                credentials=[{"username": args.username, "password": args.password}] if args.username
                else None) as caller:
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
    print(render_analysis(analyze_pcap(str(pcap), caller.message_logs()), prompts))
    print(f"final status {status}; capture, recording and logs in {out}")
    return EXIT_OK


def _srtp_keys(values: list[str]) -> dict[tuple[str, int], object]:
    """`HOST:PORT=KEY` (KEY: the base64 inline key of an AES_CM_128_HMAC_SHA1_80 a=crypto)."""
    from .sip.sdes import AES_CM_128_HMAC_SHA1_80, SdesCrypto, SdesError
    keys = {}
    for value in values:
        address, _, key = value.partition("=")
        host, _, port = address.rpartition(":")
        try:
            keys[(host, int(port))] = SdesCrypto.parse(f"1 {AES_CM_128_HMAC_SHA1_80} inline:{key}")
        except (ValueError, SdesError) as exc:
            raise SystemExit(f"sip-harness: --srtp-key {value!r}: {exc} (give HOST:PORT=BASE64KEY)")
    return keys


def cmd_analyze(args) -> int:
    """The text report of a capture; its page (--html) and facts (--json) when asked."""
    from .report import Options, Selection, write_capture_report
    from .wire.audio import load_prompts
    from .wire.analysis import analyze_pcap
    from .wire.pcap import PcapError
    from .wire.report_text import render_analysis
    from .wire.words import RecognitionError, Recognizer
    try:
        analysis = analyze_pcap(args.pcap, [Path(p) for p in args.message_log],
                                _srtp_keys(args.srtp_key))
    except (OSError, PcapError) as exc:
        print(f"sip-harness: {args.pcap}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for warning in analysis.warnings:
        print(f"sip-harness: {args.pcap}: warning: {warning}", file=sys.stderr)
    try:
        selection = Selection(args.call_id, _instant(args.since, analysis.start_ns),
                              _instant(args.until, analysis.start_ns))
    except ValueError as exc:
        print(f"sip-harness: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.call_id is not None and args.call_id not in analysis.dialogs:
        print(f"sip-harness: {args.pcap}: no dialog with Call-ID {args.call_id!r}", file=sys.stderr)
        return EXIT_USAGE
    prompts = load_prompts(Path(args.bucket)) if args.bucket else None
    print(render_analysis(analysis, prompts))
    if analysis.logged_sip:
        print(f"\n{analysis.logged_sip} SIP messages come from message logs, not the capture (SIP over TLS)")
    for flow in analysis.srtp:
        print(("ok   " if flow.ok else "FAIL ") + flow.describe())
    recognizer = Recognizer()
    try:
        for phrase in args.said:
            recognizer.check_words(phrase)
    except RecognitionError as exc:
        print(f"sip-harness: --said {exc}", file=sys.stderr)
        return EXIT_USAGE
    document = write_capture_report(
        analysis, Path(args.html) if args.html else None, Path(args.json) if args.json else None,
        selection, Options(prompts=prompts or {}, said=args.said, transcribe=not args.no_words,
                           recognizer=recognizer))
    print(_quality_text(document))
    if args.said or not args.no_words:
        print("\n" + _words_text(document))
    for path in (args.html, args.json):
        if path:
            print(f"wrote {path}")
    return EXIT_FAILED if any(f.failed for f in analysis.srtp) else EXIT_OK


def cmd_load(args) -> int:
    """Load mode: many calls from SIPp and pjsua2 into an embedded stub (or one already served,
    --to), a sample verified on the wire; progress on stderr, the JSON summary on stdout."""
    import json
    from .run.load import LoadError, LoadSpec, run_load
    from .wire.capture import CaptureError
    target = _host_port(args.to, "--to") if args.to else None
    if args.api and not target:
        raise UsageError("--api names the API of the stub --to places the calls into: give --to")
    spec = LoadSpec(sipp_calls=args.calls, pjsua2_calls=args.pjsua2, rate=args.rate, ramp_s=args.ramp,
                    concurrent=args.concurrent, prompt=args.prompt, repeat=args.repeat,
                    sample=args.sample, max_seconds=args.max_seconds, echo=not args.no_echo,
                    realtime=args.realtime, bucket_dir=Path(args.bucket) if args.bucket else None,
                    out_dir=Path(args.out) if args.out else None, target=target, api_url=args.api,
                    number=args.number, hold_ms=args.hold_ms,
                    scenario=Path(args.scenario) if args.scenario else None)
    if args.handler:
        if target:
            raise UsageError("--handler is for the embedded stub: the served one runs its own")
        spec.handler = args.handler
    try:
        result = run_load(spec, progress=lambda line: print(line, file=sys.stderr, flush=True))
    except LoadError as exc:
        print(f"sip-harness load: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except CaptureError as exc:
        print(f"sip-harness load: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(json.dumps(result.summary, indent=2))
    return EXIT_OK if result.summary["passed"] else EXIT_FAILED


def _host_port(text: str, flag: str) -> tuple[str, int]:
    """HOST:PORT (an IPv6 host in brackets)."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"{flag} {text!r}: give HOST:PORT")
    return host.strip("[]"), int(port)


def cmd_fidelity_compare(args) -> int:
    """Run the profile's call flow on the emulator and diff its invocations with the trace."""
    import json
    from .fidelity import TraceError, compare, journal_records, read_trace, report_json
    from .run.profile import ProfileRun
    try:
        trace = read_trace(Path(args.trace))
    except (OSError, TraceError) as exc:
        print(f"sip-harness: {exc}", file=sys.stderr)
        return EXIT_USAGE
    profile = load_profile(Path(args.profile))
    out = Path(args.out or f"artifacts/fidelity-{time.strftime('%Y%m%d-%H%M%S')}").resolve()
    print(f"running {profile.name!r} on the emulator ...", flush=True)
    result = ProfileRun(profile, out, progress=lambda line: None).execute()
    journal_path = Path(result.run_dir) / "journal.json"
    if not journal_path.is_file():
        print(f"sip-harness: the emulator run failed: {result.error}", file=sys.stderr)
        return EXIT_FAILED
    emulator = journal_records(json.loads(journal_path.read_text()))
    differences = compare(trace, emulator, args.window_ms)
    report = Path(result.run_dir) / "fidelity-report.json"
    report.write_text(json.dumps(report_json(args.trace, args.profile, differences), indent=2, default=str))
    print(f"trace: {len(trace)} invocations; emulator: {len(emulator)} invocations")
    for difference in differences:
        print(f"DIFF {difference.describe()}")
    print(f"{len(differences)} difference(s); report {report}" + (
        " - please send it with the trace as a fidelity report" if differences else ""))
    return EXIT_FAILED if differences else EXIT_OK


def cmd_fidelity_layer(args) -> int:
    """Zip the Lambda layer that carries `sip_harness.trace` (python/sip_harness/...)."""
    import zipfile
    root = Path(__file__).resolve().parent / "trace_layer"
    out = Path(args.out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(root.rglob("*.py")):
            zf.write(path, path.relative_to(root).as_posix())
    print(f"{out}: a Lambda layer with sip_harness.trace (add it to your function, then "
          f"`from sip_harness.trace import traced`)")
    return EXIT_OK


def _instant(value: str | None, start_ns: int) -> int | None:
    """A --since/--until value: seconds after the capture's first frame, or an ISO 8601 time
    (UTC unless it names its zone); ns since the epoch."""
    if value is None:
        return None
    try:
        return start_ns + round(float(value) * 1e9)
    except ValueError:
        pass
    from datetime import datetime, timezone
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{value!r} is neither seconds into the capture nor an ISO 8601 time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return round(when.timestamp() * 1e9)


def _quality_text(document: dict) -> str:
    """Per stream: the E-model MOS and R-factor with their main inputs, and RTCP's view."""
    lines = ["Quality (ITU-T G.107 E-model) and RTCP"]
    for s in document["streams"]:
        head = f"#{s['index'] + 1} {s['src']} -> {s['dst']}  SSRC {s['ssrc']}"
        q = s["quality"]
        if q is None:
            lines.append(f"{head}  no estimate: {s['quality_note']}")
        else:
            i = q["inputs"]
            lines.append(f"{head}  MOS {q['mos']:.2f}  R {q['r_factor']:.1f}  (loss {i['Ppl']} % from the "
                         f"{i['loss_source']}, BurstR {i['BurstR']}, delay {i['T_ms']} ms)")
        reports = s["rtcp"]["reception_reports"]
        if reports:
            rtt = [r["rtt_ms"] for r in reports if r["rtt_ms"] is not None]
            last = reports[-1]
            lines.append(f"    RTCP: {len(reports)} reports, last {last['fraction_lost_percent']:.1f} % lost lately, "
                         f"{last['cumulative_lost']} in all, jitter {last['jitter_ms']} ms"
                         + (f", RTT {min(rtt):.1f}-{max(rtt):.1f} ms" if rtt else ""))
    if not document["streams"]:
        lines.append("(no RTP streams)")
    return "\n".join(lines)


def _words_text(document: dict) -> str:
    """What the recogniser heard per stream: the phrases looked for, and its free decoding."""
    lines = ["Words heard (pocketsphinx)"]
    for s in document["streams"]:
        audio = s["audio"]
        if not audio or not (audio["words"] or audio["said"]):
            continue
        lines.append(f"#{s['index'] + 1} {s['src']} -> {s['dst']}  SSRC {s['ssrc']}")
        for p in audio["said"]:
            found = "heard" if p["found"] else p.get("error") or "not heard"
            at = f" at {p['start']:+.3f} s" if p["found"] else ""
            lines.append(f"    said {p['phrase']!r}: {found}{at}")
        for w in audio["words"]:
            lines.append(f"    {w['start']:+10.3f} s  {w['text'] or '(nothing recognised)'}")
    if len(lines) == 1:
        lines.append("(no speech)")
    return "\n".join(lines)


DESCRIPTION = """\
SIP test harness with media emulation for Amazon Chime SDK SIP media applications: run,
report, validate, serve, calls, call, analyze, load and fidelity (each command has its own
--help).

exit codes: 0 every profile passed; 1 a profile failed or erred; 2 bad usage or an invalid
profile (the message names file, line and field)."""


class _Defaults(argparse.ArgumentDefaultsHelpFormatter):
    """Help that shows each option's default, when it has one."""

    def _get_help_string(self, action):
        if action.default in (None, False) or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def version() -> str:
    """The installed package's version."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed
    try:
        return installed("sip-harness")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    """The command line of `sip-harness` (also used to check the compose file's commands)."""
    from .serve_log import FORMATS
    parser = argparse.ArgumentParser(prog="sip-harness", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = parser.add_subparsers(dest="command", required=True, title="commands", metavar="COMMAND")

    def command(name: str, text: str, func) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=text, description=text, formatter_class=_Defaults)
        if func is not None:
            p.set_defaults(func=func)
        return p

    run = command("run", "run profiles against the embedded stub (or a served one with --stub, or "
                         "the real service with --target aws)", cmd_run)
    run.add_argument("paths", nargs="*", default=["sip_profiles"], help="profile files or folders")
    run.add_argument("-k", help="only profiles whose name or file name contains this")
    run.add_argument("--out", help="artifact folder (default: artifacts/run-<time>)")
    run.add_argument("--junit", metavar="FILE", help="JUnit XML file (default: OUT/junit.xml)")
    run.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                     help="run N profiles at once, each in a process of its own (1 to 8)")
    run.add_argument("--shard", metavar="K/N",
                     help="run only the K-th of N stable shares of the profiles (by file name), "
                          "for a suite spread over N machines; `report merge` joins the shards")
    run.add_argument("--stub", metavar="URL",
                     help="run against `sip-harness serve` at URL (its API base) instead of an embedded stub")
    run.add_argument("--control-token-file", metavar="FILE",
                     help=f"the served stub's control token (or ${CONTROL_TOKEN_ENV})")
    run.add_argument("--credentials", action="append", metavar="FILE|KEY:SECRET",
                     default=_default_credentials(),
                     help="the key that signs requests to a `serve --credentials` stub: the first "
                          f"of an AWS shared-credentials file (default ${CREDENTIALS_ENV}), or "
                          "KEY:SECRET")
    run.add_argument("--target", choices=("emulator", "aws"), default="emulator",
                     help="aws: call the real service (no stub); credentials from the usual AWS chain")
    run.add_argument("--region", help="aws: the SMA's region")
    run.add_argument("--sma-id", help="aws: the SIP media application id")
    run.add_argument("--voice-connector", metavar="HOST[:PORT]",
                     help="aws: the Voice Connector host the calls go to (port: 5061 tls, 5060 else)")
    run.add_argument("--number", help="aws: the phone number the calls dial (default: the profile's)")
    run.add_argument("--transport", choices=("udp", "tcp", "tls"),
                     help="aws: the SIP transport (default: the profile's endpoints')")
    run.add_argument("--endpoint-url", help="aws: another API endpoint than the region's")
    run.add_argument("--ca-file", help="aws: the CA bundle the Voice Connector's certificate is checked with")
    run.add_argument("--trace", help="aws: a file of sip_harness.trace lines of the real handler "
                                     "(makes the handler's events observable)")
    report = command("report", "work with run reports", None)
    report_sub = report.add_subparsers(dest="report_command", required=True)
    merge = report_sub.add_parser("merge", help="merge the run folders of several shards into one "
                                                "run report (run.json and junit.xml)",
                                  formatter_class=_Defaults)
    merge.add_argument("folders", nargs="+", help="run folders (`run --out`), e.g. one per shard")
    merge.add_argument("--out", required=True, help="folder for the merged run.json and junit.xml")
    merge.set_defaults(func=cmd_report_merge)
    validate = command("validate", "check profiles, their handlers and files without running them",
                       cmd_validate)
    validate.add_argument("paths", nargs="*", default=["sip_profiles"], help="profile files or folders")
    serve = command("serve", "run the stub and its API as a long-running shared service", cmd_serve)
    serve.add_argument("--profile", help="the profile whose stub section (SMA, handler, bucket) to "
                                         "serve (default: none: only remote runs' sessions answer)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--sip-port", type=int, default=5060, help="SIP port (UDP and TCP)")
    serve.add_argument("--api-port", type=int, default=8080, help="chime-sdk-voice API port")
    serve.add_argument("--rtp-ports", default="20000-20400", help="RTP port range, LOW-HIGH")
    serve.add_argument("--tls-port", type=int, default=5061,
                       help="SIP over TLS port when the profile has stub.sip.tls")
    serve.add_argument("--credentials", action="append", metavar="FILE|KEY:SECRET[:ACCOUNT]",
                       default=_default_credentials(),
                       help="the API then requires SigV4 signed with one of these keys: an AWS "
                            f"shared-credentials file (default ${CREDENTIALS_ENV}; keeps secrets "
                            "out of the process list), or KEY:SECRET[:ACCOUNT]; repeatable")
    serve.add_argument("--out", default="artifacts/serve",
                       help="journal.jsonl, handler logs, a folder per transaction")
    serve.add_argument("--log-format", choices=FORMATS, default="text",
                       help="stdout: one line per call, API request and invocation, as text or JSON")
    serve.add_argument("--transaction-artifacts", action=argparse.BooleanOptionalAction, default=True,
                       help="file each transaction (capture slice, journal, report) under OUT/transactions")
    serve.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                       help="a host name clients may use in Host (IP literals and localhost "
                            "always may); repeatable")
    serve.add_argument("--control", action="store_true",
                       help="serve the /_harness/ control routes (remote runs, sessions), behind a token")
    serve.add_argument("--control-token-file", metavar="FILE",
                       help=f"where a new control token is written (default OUT/control-token; "
                            f"${CONTROL_TOKEN_ENV} gives one instead)")
    serve.add_argument("--profiles-dir", action="append", default=[], metavar="DIR",
                       help="a folder sessions and /_harness/configure may load profiles from "
                            "(default: the folder of --profile); repeatable")
    serve.add_argument("--drain-seconds", type=float, default=10.0,
                       help="on SIGTERM/SIGINT, how long to wait for calls to end")
    serve.add_argument("--workers", type=int, default=0, metavar="N",
                       help="serve with N stub processes (on 127.0.0.2, .3, ...) behind Kamailio "
                            "(SIP, hashed on Call-ID) and one API front on --host")
    serve.add_argument("--worker", action="append", default=[], metavar="HOST:SIP_PORT:API_PORT",
                       help="a worker of the cluster on another machine (`serve --worker-index K` "
                            "there); repeatable, in index order")
    serve.add_argument("--worker-index", type=int, default=None, metavar="K",
                       help="this stub is worker K of a cluster: its TransactionIds name it")
    calls = command("calls", "list the calls up now on a served stub, with their TransactionIds", cmd_calls)
    calls.add_argument("--stub", metavar="URL", default="http://127.0.0.1:8080",
                       help="the served stub's API base URL")
    calls.add_argument("--control-token-file", metavar="FILE",
                       help=f"the served stub's control token (or ${CONTROL_TOKEN_ENV})")
    calls.add_argument("--json", action="store_true", help="print JSON")
    call = command("call", "one troubleshooting call to any SIP URI, captured and analysed", cmd_call)
    call.add_argument("uri", help="e.g. sip:+14345550101@127.0.0.1:5060")
    call.add_argument("--duration", type=float, default=5.0, help="seconds to stay on the call")
    call.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for an answer")
    call.add_argument("--dtmf", help="digits to send (RFC 4733) once answered")
    call.add_argument("--play", help="a WAV file to send")
    call.add_argument("--header", action="append", default=[], metavar="NAME:VALUE")
    call.add_argument("--transport", choices=("udp", "tcp", "tls"), default="udp")
    call.add_argument("--srtp", action="store_true", help="offer and require SDES-keyed SRTP")
    call.add_argument("--ca-file", help="for tls: verify the far end's certificate with this CA (PEM)")
    call.add_argument("--username", help="digest user name (termination credentials)")
    call.add_argument("--password", default="", help="digest password")
    call.add_argument("--iface", help="capture interface (default: lo for 127.x, else any)")
    call.add_argument("--bucket", help="a folder of WAV prompts to recognise in the audio")
    call.add_argument("--out", help="artifact folder (default: artifacts/call-<time>)")
    analyze = command("analyze", "read any capture: calls, SIP ladder, RTP streams, RTCP and MOS, "
                                 "audio and the words heard", cmd_analyze)
    analyze.add_argument("pcap", metavar="CAPTURE", help="a pcap or pcapng file")
    analyze.add_argument("--html", metavar="FILE", help="write the report page (self-contained)")
    analyze.add_argument("--json", metavar="FILE", help="write the facts as JSON (capture.schema.json)")
    analyze.add_argument("--call-id", metavar="ID", help="only the dialog with this Call-ID")
    analyze.add_argument("--since", metavar="T", help="only calls and streams active from T on "
                         "(seconds after the first frame, or an ISO 8601 time)")
    analyze.add_argument("--until", metavar="T", help="only calls and streams active until T")
    analyze.add_argument("--said", action="append", default=[], metavar="PHRASE",
                         help="look for this phrase in every stream's speech (repeatable)")
    analyze.add_argument("--no-words", action="store_true",
                         help="skip the free decoding of speech (the words listed per stream)")
    analyze.add_argument("--bucket", help="a folder of WAV prompts to recognise in the audio")
    analyze.add_argument("--message-log", action="append", default=[], metavar="FILE",
                         help="a caller's SIP message log (caller-N.messages.jsonl): SIP over TLS")
    analyze.add_argument("--srtp-key", action="append", default=[], metavar="HOST:PORT=KEY",
                         help="decrypt the SRTP from HOST:PORT with this SDES inline key")
    load = command("load", "many calls from SIPp and pjsua2 into an embedded stub, or into one "
                           "already served (--to), a sample verified on the wire (JSON summary "
                           "on stdout)", cmd_load)
    load.add_argument("--calls", type=int, default=100, help="calls SIPp places (0: none)")
    load.add_argument("--pjsua2", type=int, default=0, help="calls pjsua2 workers place")
    load.add_argument("--rate", type=float, default=10.0, help="new calls per second, per source")
    load.add_argument("--ramp", type=int, default=0, help="seconds SIPp takes to climb to --rate")
    load.add_argument("--concurrent", type=int, help="at most this many calls up, per source")
    load.add_argument("--to", metavar="HOST:PORT",
                      help="place the calls into the stub (or cluster, `serve --workers N`) served "
                           "there instead of an embedded one; its own handler answers them")
    load.add_argument("--api", metavar="URL", help="with --to: the served stub's API, which must "
                                                   "answer /ready before the first call")
    load.add_argument("--number", default="+14345550101", help="the number the calls are placed to")
    load.add_argument("--hold-ms", type=int, metavar="MS",
                      help="the callers hang up after this long (default: they wait for the stub's BYE)")
    load.add_argument("--prompt", default="tone-1000hz.wav",
                      help="the handler's prompt, a key under BUCKET/prompts (the default one is "
                           "written into OUT when no --bucket is given; with --to, checked only "
                           "with --bucket)")
    load.add_argument("--repeat", type=int, default=1, help="times the prompt plays before the hangup")
    load.add_argument("--sample", type=int, default=8,
                      help="calls verified on the wire (0: no capture); embedded: the RTP port "
                           "pairs captured")
    load.add_argument("--max-seconds", type=float, default=120.0, help="stop after this long")
    load.add_argument("--no-echo", action="store_true", help="SIPp sends no RTP back")
    load.add_argument("--realtime", action="store_true", help="the stub's thread under SCHED_FIFO (root)")
    load.add_argument("--bucket", help="the bucket folder the prompt is in (BUCKET/prompts/PROMPT)")
    load.add_argument("--handler", help="a handler that plays $BENCH_PROMPT $BENCH_REPEAT times and "
                                        "hangs up (default: the bundled play_hangup.py)")
    load.add_argument("--scenario", help="SIPp's scenario: a caller that waits for the stub's BYE "
                                         "(default: the bundled uac_until_bye.xml; with --hold-ms, "
                                         "SIPp's own uac)")
    load.add_argument("--out", help="artifact folder (default: a new temporary one)")
    fidelity = command("fidelity", "compare traces of the real service with the emulator", None)
    fsub = fidelity.add_subparsers(dest="fidelity_command", required=True)
    fcompare = fsub.add_parser("compare", help="run PROFILE on the emulator and diff it with TRACE",
                               formatter_class=_Defaults)
    fcompare.add_argument("trace", help="a trace file (sip_harness.trace lines, a CloudWatch export)")
    fcompare.add_argument("profile", help="the profile whose call flow the trace recorded")
    fcompare.add_argument("--out", help="artifact folder (default: artifacts/fidelity-<time>)")
    fcompare.add_argument("--window-ms", type=float, default=1000.0,
                          help="gaps between invocations may differ by this much (plus half the gap)")
    fcompare.set_defaults(func=cmd_fidelity_compare)
    flayer = fsub.add_parser("layer", help="zip the Lambda layer with sip_harness.trace",
                             formatter_class=_Defaults)
    flayer.add_argument("out", nargs="?", default="build/sip-harness-trace-layer.zip")
    flayer.set_defaults(func=cmd_fidelity_layer)
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
