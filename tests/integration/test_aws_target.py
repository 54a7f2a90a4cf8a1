"""`sip-harness run --target aws` against `sip-harness serve` standing in for the service: SIP
over TLS with SRTP and termination credentials, the API with SigV4 checked, the handler's
events from a trace of the real handler (`sip_harness.trace`), and without one reported as
not observable. No traffic leaves 127.0.0.1."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import PROFILES, ROOT, SMA_ID, require_capture
from harness import cli
from harness.run.setup import RTP_PORTS_PER_RUN, rtp_block
from sip_harness.trace import TRACE_FILE_ENV
from webclient import wait_ready

ACCESS_KEY, SECRET = "AKIDSTANDIN0000001", "stand-in-secret"
TLS_PROFILE = PROFILES / "update_switches_prompt_tls_srtp.yaml"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory):
    """`serve` with TLS on, SigV4 on and the bundled handler behind `traced`."""
    require_capture()
    folder = tmp_path_factory.mktemp("stand-in")
    trace = folder / "trace.jsonl"
    spec = yaml.safe_load(TLS_PROFILE.read_text())
    spec["stub"].update(handler=str(ROOT / "tests/data/handlers/traced_update_prompt.py"),
                        bucket_dir=str(PROFILES / "bucket"), handler_env={TRACE_FILE_ENV: str(trace)},
                        layers=["sip-harness-trace"])
    profile = folder / "service.yaml"
    profile.write_text(yaml.safe_dump(spec))
    ports = {"sip": _free_port(), "tls": _free_port(), "api": _free_port()}
    low = rtp_block()
    out = folder / "serve"
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "serve", "--profile", str(profile), "--host", "127.0.0.1",
         "--sip-port", str(ports["sip"]), "--tls-port", str(ports["tls"]), "--api-port", str(ports["api"]),
         "--rtp-ports", f"{low}-{low + RTP_PORTS_PER_RUN}", "--credentials", f"{ACCESS_KEY}:{SECRET}",
         "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    try:
        wait_ready(ports["api"], proc)
    except AssertionError:
        proc.kill()
        raise
    yield {"ports": ports, "trace": trace, "ca": out / "tls" / "ca.pem", "rtp_low": low}
    proc.terminate()
    proc.wait(15)


def _aws_args(stand_in, out: Path, *extra: str) -> list[str]:
    return ["--target", "aws", "--region", "us-east-1", "--sma-id", SMA_ID,
            "--voice-connector", f"127.0.0.1:{stand_in['ports']['tls']}", "--transport", "tls",
            "--number", "+14345550101", "--ca-file", str(stand_in["ca"]),
            "--endpoint-url", f"http://127.0.0.1:{stand_in['ports']['api']}", "--out", str(out), *extra]


@pytest.fixture
def aws_credentials(monkeypatch):
    """The usual AWS chain, here from the environment: the stand-in's access key."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


def _report(out: Path) -> dict:
    return json.loads(next(out.glob("*/report.json")).read_text())


def test_run_target_aws_against_a_tls_sigv4_stand_in(stand_in, aws_credentials, tmp_path, capsys):
    code = cli.main(["run", str(TLS_PROFILE), *_aws_args(stand_in, tmp_path, "--trace", str(stand_in["trace"]))])
    out = capsys.readouterr().out
    assert code == 0, out
    checks = {c["name"]: c for c in _report(tmp_path)["checks"]}
    assert checks["update response"]["passed"]  # SigV4-signed with the chain's credentials
    assert checks["handler events"]["detail"] == "as expected"  # seen through the trace
    assert checks["switch"]["passed"] and checks["switch"]["measured"]["latency_ms"] is not None
    assert checks["SRTP"]["passed"] and "message logs" in checks["SIP over TLS"]["detail"]
    assert checks["BYE"]["detail"] == "first BYE sent by the stub"
    assert not any(c["measured"].get("observable") is False for c in checks.values())


def test_without_a_trace_the_handler_side_is_not_observable(stand_in, aws_credentials, tmp_path, capsys):
    spec = yaml.safe_load(TLS_PROFILE.read_text())
    spec["stub"]["handler"] = str(PROFILES / "handlers/update_prompt.py")
    spec["stub"]["bucket_dir"] = str(PROFILES / "bucket")
    spec["steps"] = [{"call": {"to": "+14345550101"}}, {"wait": {"state": "CONFIRMED"}},
                     {"sleep_ms": 1200}, {"hangup": {}}, {"wait": {"state": "DISCONNECTED"}}]
    spec["expect"] = {"events": ["NEW_INBOUND_CALL", "HANGUP"], "prompts": ["tone-440hz.wav"],
                      "bye_from": "caller"}
    profile = tmp_path / "no-update.yaml"
    profile.write_text(yaml.safe_dump(spec))
    code = cli.main(["run", str(profile), *_aws_args(stand_in, tmp_path / "out")])
    out = capsys.readouterr().out
    assert code == 0, out
    checks = {c["name"]: c for c in _report(tmp_path / "out")["checks"]}
    assert checks["handler events"]["detail"].startswith("not observable")
    assert checks["handler events"]["measured"] == {"observable": False}
    assert checks["prompts heard by a"]["passed"]  # the capture still proves what was heard
    assert "not observable" in out


def test_wrong_credentials_are_refused_by_the_stand_in(stand_in, aws_credentials, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    spec = yaml.safe_load(TLS_PROFILE.read_text())
    spec["stub"].update(bucket_dir=str(PROFILES / "bucket"),
                        handler=str(PROFILES / spec["stub"]["handler"]))
    spec["steps"] = [{"call": {"to": "+14345550101"}}, {"wait": {"state": "CONFIRMED"}},
                     {"update": {"arguments": {"action": "switch"}}}, {"hangup": {}},
                     {"wait": {"state": "DISCONNECTED"}}]
    spec["expect"] = {}
    profile = tmp_path / "update-then-hangup.yaml"
    profile.write_text(yaml.safe_dump(spec))
    code = cli.main(["run", str(profile), *_aws_args(stand_in, tmp_path / "out", "--trace", str(stand_in["trace"]))])
    out = capsys.readouterr().out
    assert code == 1, out
    update = next(c for c in _report(tmp_path / "out")["checks"] if c["name"] == "update response")
    assert not update["passed"] and update["measured"]["status"] in (401, 403), update
