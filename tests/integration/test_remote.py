"""Remote mode, as docker-compose.yml runs it: `sip-harness serve` in its own process with the
compose file's arguments (ports and folders made free and temporary), and `sip-harness run
--stub URL` against it, captures included."""
import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from conftest import free_port, PROFILES, ROOT
from harness.run.setup import free_rtp_range

BIN = Path(sys.executable).parent


def compose_command(service: str) -> list[str]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"][service]["command"]


def replace_option(args: list[str], option: str, value: str) -> list[str]:
    i = args.index(option)
    return args[:i + 1] + [value] + args[i + 2:]


@pytest.fixture
def served(tmp_path):
    args = compose_command("stub")
    sip_port, api_port = free_port(), free_port()
    low, high = free_rtp_range(40)
    for option, value in (("--sip-port", str(sip_port)), ("--api-port", str(api_port)),
                          ("--rtp-ports", f"{low}-{high}"), ("--out", str(tmp_path / "serve")),
                          ("--control-token-file", str(tmp_path / "serve" / "control-token")),
                          ("--profiles-dir", str(PROFILES))):
        args = replace_option(args, option, value)
    proc = subprocess.Popen([str(BIN / "sip-harness"), *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{api_port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url + "/ready", timeout=1)
            break
        except OSError:
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "sip-harness serve did not get ready in 30 s"
            time.sleep(0.2)
    yield url, proc
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0


def test_suite_runs_against_a_served_stub(served, tmp_path):
    url, _ = served
    args = replace_option(compose_command("suite"), "--stub", url)
    args = replace_option(args, "--out", str(tmp_path / "suite"))
    args = replace_option(args, "--control-token-file", str(tmp_path / "serve" / "control-token"))
    # the last two reach the served stub's API and its local AWS services from the handler
    profiles = [str(PROFILES / name) for name in ("update_switches_prompt.yaml", "call_and_bridge.yaml",
                                                  "call_me_back.yaml", "caller_prompts_dynamodb.yaml")]
    args = [a for a in args if a != "sip_profiles"]
    done = subprocess.run([str(BIN / "sip-harness"), *args[:1], *profiles, *args[1:]], cwd=ROOT,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4/4 profiles passed" in done.stdout
    assert "<testsuite" in (tmp_path / "suite" / "junit.xml").read_text()
    folders = [f for f in (tmp_path / "suite").iterdir() if f.is_dir()]
    assert len(folders) == 4
    for folder in folders:
        report = json.loads((folder / "report.json").read_text())
        assert report["verdict"] == "pass"
        assert (folder / "capture.pcap").stat().st_size > 10_000
    tables = list((tmp_path / "suite").glob("*/aws/dynamodb/CallerPrompts.json"))
    assert len(tables) == 1 and '"calls": 1' in tables[0].read_text()


def test_served_stub_journal_and_resources(served, tmp_path):
    url, _ = served
    token = (tmp_path / "serve" / "control-token").read_text().strip()

    def get(path: str):
        req = urllib.request.Request(url + path, headers={"Authorization": f"Bearer {token}"})
        return json.load(urllib.request.urlopen(req, timeout=5))
    info = get("/_harness/info")
    assert info["host"] == "127.0.0.1" and info["sip_port"] > 0
    assert get("/_harness/resources")["dialogs"] == 0
    page = get("/_harness/journal?since=0&limit=10")
    assert page["first"] == 0 and page["next"] == len(page["entries"]) <= 10
