"""The pytest plugin: its fixtures and helpers (`harness.testing`) work together, and profiles
are collected as test items wherever they live."""
import json
import subprocess
import sys
import time

import pytest

from conftest import PROFILES, ROOT

pytestmark = pytest.mark.sma(handler=str(PROFILES / "handlers" / "update_prompt.py"),
                             bucket=str(PROFILES / "bucket"))


def test_fixtures_place_a_call_update_it_and_capture_it(sma_stub, sip_caller, wire_capture, sma_api):
    call = sip_caller.call(sma_stub.sip_uri("+14345550101"))
    call.wait_for("CONFIRMED", timeout=10)
    tx = sma_stub.wait_transaction(call)
    resp = sma_api.update_sip_media_application_call(
        SipMediaApplicationId=sma_stub.sma_id, TransactionId=tx, Arguments={"action": "hangup"})
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 202
    call.wait_for("DISCONNECTED", timeout=10)
    wire = wire_capture.analysis()
    byes = [m for m in wire.sip if m.summary.startswith("BYE")]
    assert byes and byes[0].src[1] == sma_stub.sip_port
    assert wire_capture.prompts(call)[0] == "tone-440hz.wav"
    journal = sma_stub.journal()
    assert journal.event_types(tx) == ["NEW_INBOUND_CALL", "CALL_UPDATE_REQUESTED", "ACTION_INTERRUPTED",
                                       "HANGUP"]
    update = journal.invocations("CALL_UPDATE_REQUESTED")[0]
    assert update.action_data["Parameters"]["Arguments"] == {"action": "hangup"}
    assert [a["Type"] for a in update.response.actions] == ["Hangup"]
    assert sma_stub.problems() == []


@pytest.mark.sma(handler=str(ROOT / "tests" / "data" / "root_cause" / "handlers" / "mistakes.py"),
                 bucket=str(PROFILES / "bucket"), timeout_ms=1000)
def test_the_journal_names_a_handlers_problem(sma_stub, sip_caller):
    call = sip_caller.call(sma_stub.sip_uri("+14345550202"))
    tx = sma_stub.wait_transaction(call)
    call.wait_for("EARLY", timeout=10)
    deadline = time.monotonic() + 10
    while not sma_stub.problems() and time.monotonic() < deadline:
        time.sleep(0.05)
    (problem,) = sma_stub.problems()
    assert problem.kind == "invalid_response" and problem.transaction_id == tx
    assert problem.error_type == "SchemaVersionMismatch"
    call.hangup()


def test_a_stub_without_a_marker_says_what_it_needs(tmp_path):
    (tmp_path / "test_x.py").write_text("def test_x(sma_stub):\n    pass\n")
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode != 0
    assert "@pytest.mark.sma(handler=" in out.stdout


def test_a_broken_profile_fails_collection_with_file_and_line(tmp_path):
    folder = tmp_path / "sip_profiles"
    folder.mkdir()
    text = (PROFILES / "update_switches_prompt.yaml").read_text().replace("sleep_ms: 1500", "sleep_ms: soon")
    (folder / "broken.yaml").write_text(text)
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder)],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode != 0
    assert "broken.yaml:14:" in out.stdout and "sleep_ms" in out.stdout and "expected an integer" in out.stdout


def test_a_profile_named_on_the_command_line_runs_wherever_it_lives(tmp_path):
    """`pytest path/to/x.yaml` outside any sip_profiles folder: the profile passes, a failing
    one shows its root cause, and --sip-artifacts holds both runs' reports."""
    folder = tmp_path / "checks"
    folder.mkdir()
    good = (PROFILES / "hangup_codes.yaml").read_text().replace(
        "handler: handlers/hangup_codes.py", f"handler: {PROFILES / 'handlers' / 'hangup_codes.py'}\n"
                                             f"  bucket_dir: {PROFILES / 'bucket'}")
    (folder / "good.yaml").write_text(good)
    bad = (ROOT / "tests" / "data" / "root_cause" / "handler_timeout.yaml").read_text().replace(
        "handlers/mistakes.py", str(ROOT / "tests" / "data" / "root_cause" / "handlers" / "mistakes.py")).replace(
        "../../../sip_profiles/bucket", str(PROFILES / "bucket"))
    (folder / "slow_handler.yaml").write_text(bad)
    (folder / "settings.yaml").write_text("not: a profile\n")  # not named: not collected
    artifacts = tmp_path / "artifacts"
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "--sip-artifacts", str(artifacts), str(folder / "good.yaml"),
                          str(folder / "slow_handler.yaml")],
                         capture_output=True, text=True, cwd=tmp_path, timeout=180)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "1 failed, 1 passed" in out.stdout, out.stdout
    assert "Sandbox.Timedout: Task timed out after 1.00 seconds" in out.stdout
    reports = {p.parent.name: json.loads(p.read_text()) for p in artifacts.glob("*/report.json")}
    assert reports["hangup-with-each-sipresponsecode"]["verdict"] == "pass"
    assert reports["root-cause-handler-timeout"]["verdict"] == "error"
