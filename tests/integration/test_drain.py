"""`sip-harness serve` stopped with calls up: it drains. Each caller gets a BYE, each
transaction's HANGUP is invoked, recordings are finished and the journal, written as JSON
lines while the stub runs, is complete on disk."""
from __future__ import annotations

import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import PROFILES, ROOT, SippCall, wait_until
from harness.journal_entries import CallArrived, Draining, RecordingStarted, SipConfirmed, TransactionEnded
from harness.journal_view import JournalView
from harness.run.setup import free_rtp_range
from test_stub_resources import final, invite
from webclient import call as http, free_port, wait_ready

BIN = Path(sys.executable).parent
CALLS = 3


def journal(path: Path) -> JournalView:
    return JournalView.read(path) if path.is_file() else JournalView()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_drains_the_calls_up(tmp_path, sig):
    profile = tmp_path / "recorder.yaml"
    profile.write_text(
        "name: recorder\nstub:\n"
        f"  handler: {ROOT / 'tests' / 'data' / 'handlers' / 'security.py'}\n"
        f"  bucket_dir: {PROFILES / 'bucket'}\n"
        "steps:\n  - sleep_ms: 1\n")
    out, port = tmp_path / "serve", free_port()
    sip_port = free_port()
    low, high = free_rtp_range(40)
    proc = subprocess.Popen([str(BIN / "sip-harness"), "serve", "--profile", str(profile),
                             "--sip-port", str(sip_port), "--api-port", str(port),
                             "--rtp-ports", f"{low}-{high}", "--out", str(out)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    callers = []
    try:
        wait_ready(port, proc)
        callers = [SippCall(f"127.0.0.1:{sip_port}", 0, "+14345550123", until_bye=True)
                   for _ in range(CALLS)]
        recording = lambda: journal(out / "journal.jsonl").of(RecordingStarted)
        assert wait_until(lambda: len(recording()) == CALLS, 15), journal(out / "journal.jsonl").typed
        time.sleep(1.0)  # a second of audio in each recording
        started = time.monotonic()
        proc.send_signal(sig)
        assert proc.wait(30) == 0
        drained_in = time.monotonic() - started
        text = proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert [c.wait(10) for c in callers] == [0] * CALLS  # each got the stub's BYE and answered it
    assert f"drained {CALLS} calls" in text and drained_in < 15, text
    entries = journal(out / "journal.jsonl")
    hangups = entries.invocations("HANGUP")
    ended = entries.of(TransactionEnded)
    assert len(hangups) == CALLS and all(h.response is not None for h in hangups)
    assert len(ended) == CALLS and {e.transaction_id for e in ended} == \
        {e.transaction_id for e in entries.of(RecordingStarted)}
    assert len(entries.of(Draining)) == 1
    wavs = sorted((out / "s3" / "recordings").glob("long-*.wav"))
    assert len(wavs) == CALLS
    for wav in wavs:
        data = wav.read_bytes()
        assert struct.unpack("<I", data[4:8])[0] == len(data) - 8
        assert struct.unpack("<I", data[40:44])[0] == len(data) - 44 >= 8000  # >= 0.5 s of audio


SLOW_HANGUP = '''
import time

def lambda_handler(event, context):
    kind = event["InvocationEventType"]
    if kind == "NEW_INBOUND_CALL":
        return {"SchemaVersion": "1.0", "Actions": [{"Type": "PlayAudio", "Parameters": {
            "Repeat": 20, "AudioSource": {"Type": "S3", "BucketName": "prompts", "Key": "tone-440hz.wav"}}}]}
    if kind == "HANGUP":
        time.sleep(4)  # the drain waits for this invocation
    return {"SchemaVersion": "1.0", "Actions": []}
'''


def test_while_draining_a_new_call_gets_503_and_the_api_is_unavailable(tmp_path):
    """Between the signal and the end of the last invocation, an INVITE is answered 503 with
    Retry-After, `/ready` and the API answer 503, and the call that was up still drains."""
    handler = tmp_path / "slow_hangup.py"
    handler.write_text(SLOW_HANGUP)
    profile = tmp_path / "slow.yaml"
    profile.write_text(f"name: slow hangup\nstub:\n  handler: {handler}\n  bucket_dir: {PROFILES / 'bucket'}\n"
                       "steps:\n  - sleep_ms: 1\n")
    out, port, sip_port = tmp_path / "serve", free_port(), free_port()
    proc = subprocess.Popen([str(BIN / "sip-harness"), "serve", "--profile", str(profile),
                             "--sip-port", str(sip_port), "--api-port", str(port),
                             "--rtp-ports", "-".join(map(str, free_rtp_range(40))), "--out", str(out)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_ready(port, proc)
        up = SippCall(f"127.0.0.1:{sip_port}", 0, "+14345550123", until_bye=True)
        confirmed = lambda: journal(out / "journal.jsonl").of(SipConfirmed)
        assert wait_until(confirmed, 15), journal(out / "journal.jsonl").typed
        proc.send_signal(signal.SIGTERM)
        assert wait_until(lambda: journal(out / "journal.jsonl").of(Draining), 10)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(10)
            s.connect(("127.0.0.1", sip_port))
            s.sendall(invite(1))
            reply = final(s)
        status, _, body = http(port, "GET", "/ready")
        assert proc.poll() is None, "the drain ended before the new call was tried"
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert reply.startswith(b"SIP/2.0 503") and b"\r\nRetry-After: 5\r\n" in reply, reply[:300]
    assert status == 503, body
    assert up.wait(10) == 0  # the call that was up got its BYE
    arrivals = journal(out / "journal.jsonl").of(CallArrived)
    assert len(arrivals) == 1  # the refused INVITE made no transaction
