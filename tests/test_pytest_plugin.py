"""The pytest plugin: its fixtures work together, and profiles are collected as test items."""
import subprocess
import sys

from conftest import PROFILES, ROOT


def test_fixtures_place_a_call_update_it_and_capture_it(sma_stub, sip_caller, wire_capture, sma_api, tmp_path):
    from harness.wire.analysis import analyze_pcap
    capture = wire_capture()
    call = sip_caller.call(sma_stub.sip_uri("+14345550101"))
    call.wait_for("CONFIRMED", timeout=10)
    tx = next(e["transaction_id"] for e in sma_stub.journal_json() if e["kind"] == "call_arrived")
    resp = sma_api.update_sip_media_application_call(
        SipMediaApplicationId=sma_stub.config.applications[0].sip_media_application_id,
        TransactionId=tx, Arguments={"action": "hangup"})
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 202
    call.wait_for("DISCONNECTED", timeout=10)
    stats = capture.stop()
    assert stats.packets > 0
    wire = analyze_pcap(stats.path)
    byes = [m for m in wire.sip if m.summary.startswith("BYE")]
    assert byes and byes[0].src[1] == sma_stub.sip_port


def test_a_broken_profile_fails_collection_with_file_and_line(tmp_path):
    folder = tmp_path / "sip_profiles"
    folder.mkdir()
    text = (PROFILES / "update_switches_prompt.yaml").read_text().replace("sleep_ms: 1500", "sleep_ms: soon")
    (folder / "broken.yaml").write_text(text)
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder)],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode != 0
    assert "broken.yaml:14:" in out.stdout and "sleep_ms" in out.stdout and "expected an integer" in out.stdout
