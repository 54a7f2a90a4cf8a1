"""A normal install works: the wheel, built from the sources alone and installed into a fresh
venv outside the checkout, runs a user's own pytest file (their handler, a call, an update with
boto3, a check on the capture) through the documented API only, and `serve` starts without a
profile from any folder."""
import json
import math
import os
import shutil
import signal
import struct
import subprocess
import sys
import wave
from pathlib import Path

import pytest

from conftest import free_port, ROOT, require_capture, require_tool
from webclient import wait_ready

USER_HANDLER = '''\
def play(key, repeat=1):
    return {"Type": "PlayAudio", "Parameters": {"Repeat": repeat, "AudioSource": {
        "Type": "S3", "BucketName": "my-prompts", "Key": key}}}


def lambda_handler(event, context):
    kind = event["InvocationEventType"]
    if kind == "NEW_INBOUND_CALL":
        return {"SchemaVersion": "1.0", "Actions": [play("welcome.wav", 10)]}
    if kind == "CALL_UPDATE_REQUESTED":
        return {"SchemaVersion": "1.0", "Actions": [
            play("goodbye.wav"), {"Type": "Hangup", "Parameters": {"SipResponseCode": "0"}}]}
    return {"SchemaVersion": "1.0", "Actions": []}
'''

USER_TEST = '''\
import time

import boto3
import pytest

import harness
from harness.testing import SmaStub, WireCapture

pytestmark = pytest.mark.sma(handler="handlers/greeter.py", bucket="bucket")


def test_an_update_says_goodbye(sma_stub: SmaStub, sip_caller, wire_capture: WireCapture):
    assert "site-packages" in harness.__file__  # the installed package, not a checkout
    call = sip_caller.call(sma_stub.sip_uri("+14345550101"))
    call.wait_for("CONFIRMED", timeout=10)
    time.sleep(1.0)
    client = boto3.client("chime-sdk-voice", endpoint_url=sma_stub.api_url, **sma_stub.credentials)
    client.update_sip_media_application_call(
        SipMediaApplicationId=sma_stub.sma_id, TransactionId=sma_stub.wait_transaction(call),
        Arguments={"say": "goodbye"})
    call.wait_for("DISCONNECTED", timeout=15)
    assert wire_capture.prompts(call) == ["welcome.wav", "goodbye.wav"]
    byes = [m for m in wire_capture.analysis().sip if m.summary.startswith("BYE")]
    assert byes and byes[0].src[1] == sma_stub.sip_port
    journal = sma_stub.journal()
    assert journal.event_types()[:2] == ["NEW_INBOUND_CALL", "CALL_UPDATE_REQUESTED"]
    assert journal.invocations("CALL_UPDATE_REQUESTED")[0].action_data["Parameters"]["Arguments"] == {"say": "goodbye"}
    assert sma_stub.problems() == []
'''


def write_tone(path: Path, hz: float, seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * hz * n / 8000)))
                      for n in range(int(8000 * seconds)))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(frames)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh venv holding the wheel built from a copy of the sources (no checkout around)."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "harness", source / "harness",
                    ignore=shutil.ignore_patterns("__pycache__", "node_modules"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w",
                            str(root / "dist"), str(source)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (root / "dist").glob("sip_harness-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    done = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(wheel), "pytest", "boto3"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return venv


def user_env() -> dict:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def test_a_users_own_pytest_file_runs_against_the_installed_wheel(installed, tmp_path):
    require_capture()
    project = tmp_path / "my-sma"
    (project / "handlers").mkdir(parents=True)
    (project / "handlers" / "greeter.py").write_text(USER_HANDLER)
    write_tone(project / "bucket" / "my-prompts" / "welcome.wav", 440, 1.0)
    write_tone(project / "bucket" / "my-prompts" / "goodbye.wav", 1000, 1.0)
    (project / "test_greeter.py").write_text(USER_TEST)
    done = subprocess.run([str(installed / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "--sip-artifacts", str(tmp_path / "artifacts")],
                          cwd=project, env=user_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert "1 passed" in done.stdout
    (folder,) = (tmp_path / "artifacts").iterdir()
    assert (folder / "capture.pcap").stat().st_size > 10_000
    assert (folder / "handler-greeter.log").exists()


def test_the_installed_load_command_runs_from_any_folder_with_what_the_wheel_holds(installed, tmp_path):
    """`sip-harness load` needs nothing of a checkout: its handler and SIPp scenario are in
    the wheel, its prompt is written into the run folder."""
    require_capture()
    require_tool("sipp")
    done = subprocess.run([str(installed / "bin" / "sip-harness"), "load", "--calls", "4", "--rate", "4",
                           "--sample", "4", "--max-seconds", "30", "--out", str(tmp_path / "load")],
                          cwd=tmp_path, env=user_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["passed"] and summary["sources"]["sipp"]["succeeded"] == 4
    assert summary["sample"]["verified"] == summary["sample"]["calls"] == 4
    assert "site-packages" in summary["spec"]["handler"] and "site-packages" in summary["spec"]["scenario"]


def test_the_installed_command_serves_without_a_profile_from_any_folder(installed, tmp_path):
    binary = installed / "bin" / "sip-harness"
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60)
    assert version.stdout.startswith("sip-harness ")
    api = free_port()
    proc = subprocess.Popen([str(binary), "serve", "--sip-port", str(free_port()), "--api-port", str(api),
                             "--out", str(tmp_path / "serve"), "--no-transaction-artifacts"],
                            cwd=tmp_path, env=user_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        wait_ready(api, proc, timeout=60)
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, output
    assert "serve started" in output and "sma=\"none" in output
