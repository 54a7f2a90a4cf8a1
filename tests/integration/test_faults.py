"""Faults the stub and the runner must survive and report: a full disk during RecordAudio and
under a whole run, a release that fails during teardown, a caller worker killed mid-call."""
from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import PROFILES, ROOT, stub_config, wait_until
from harness.caller import Caller, CallerError
from harness.journal_entries import MediaFailed, RecordingStarted
from harness.journal_view import JournalView
from harness.media.sources import read_wav
from harness.stub import Stub

BIN = Path(sys.executable).parent
SECURITY_HANDLER = str(ROOT / "tests" / "data" / "handlers" / "security.py")


@pytest.fixture
def small_disk(tmp_path):
    """Mount a tmpfs of `size` at a fresh folder (a real full disk, ENOSPC from the kernel)."""
    mounted = []

    def mount(folder: Path, size: str) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.fail(f"setup: mounting a small tmpfs needs root (CAP_SYS_ADMIN): {done.stderr}",
                        pytrace=False)
        mounted.append(folder)
        return folder
    yield mount
    for folder in reversed(mounted):
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> None:
    """Use up what is left of the filesystem of `folder`."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)


def wav_is_true(path: Path) -> bool:
    """Whether the RIFF and data sizes of a 44-byte-header WAV agree with its length."""
    data = path.read_bytes()
    riff, = struct.unpack("<I", data[4:8])
    return data[:4] == b"RIFF" and riff == len(data) - 8 and \
        struct.unpack("<I", data[40:44])[0] == len(data) - 44


def journal(stub: Stub) -> JournalView:
    return JournalView(stub.journal_json())


def test_a_disk_that_fills_during_record_audio_fails_the_action(tmp_path, small_disk, sipp_call):
    s3 = small_disk(tmp_path / "run" / "s3", "160k")
    with Stub(stub_config(tmp_path / "run", SECURITY_HANDLER)) as stub:
        call = sipp_call(stub, to_user="+14345550123", until_bye=True)
        assert wait_until(lambda: journal(stub).of(RecordingStarted), 10)
        fill(s3)
        failed = wait_until(lambda: journal(stub).invocations("ACTION_FAILED"), 10)
        assert failed, [e.kind for e in journal(stub).typed]
        data = failed[0].action_data
        assert (data["Type"], data["ErrorType"]) == ("RecordAudio", "SystemException")
        assert call.wait(30) == 0  # the handler hung up on ACTION_FAILED
        assert wait_until(lambda: not any(stub.resources().get(k) for k in
                                          ("dialogs", "media_sessions", "transactions")), 10)
    wavs = list(s3.rglob("*.wav"))
    assert len(wavs) == 1 and wav_is_true(wavs[0])


def test_a_full_disk_before_the_recording_fails_it_at_once(tmp_path, small_disk, sipp_call):
    fill(small_disk(tmp_path / "run" / "s3", "64k"))
    with Stub(stub_config(tmp_path / "run", SECURITY_HANDLER)) as stub:
        call = sipp_call(stub, to_user="+14345550123", until_bye=True)
        failed = wait_until(lambda: journal(stub).invocations("ACTION_FAILED"), 10)
        assert failed and failed[0].action_data["ErrorType"] == "SystemException"
        assert call.wait(30) == 0
        reasons = [e.reason for e in journal(stub).of(MediaFailed)]
        assert reasons and "No space left on device" in reasons[0]


def test_a_run_on_a_full_disk_still_prints_its_verdict(tmp_path, small_disk):
    out = small_disk(tmp_path / "out", "100k")  # the caller's own recording fills it too
    done = subprocess.run([str(BIN / "sip-harness"), "run", str(PROFILES / "record_audio.yaml"),
                           "--out", str(out)], capture_output=True, text=True, timeout=240, cwd=ROOT)
    text = done.stdout + done.stderr
    assert done.returncode == 1, text
    assert "ERROR RecordAudio" in done.stdout and "No space left on device" in done.stdout, text
    assert "Traceback" not in text
    junit = out / "junit.xml"
    assert ("<testsuite" in junit.read_text()) if junit.exists() else \
        f"could not write {junit}: No space left on device" in done.stderr, text
    for wav in out.rglob("*.wav"):
        assert wav.stat().st_size == 0 or wav_is_true(wav), wav


def test_a_failing_release_does_not_stop_the_others(tmp_path, sipp_call):
    with Stub(stub_config(tmp_path, SECURITY_HANDLER)) as stub:
        call = sipp_call(stub, hold_ms=2500, to_user="+14345550123")
        assert wait_until(lambda: journal(stub).of(RecordingStarted), 10)

        def break_the_recording_file():  # its descriptor is gone: writing the WAV will fail,
            (leg,) = stub._calls.values()  # and only then (as where space cannot be reserved)
            (file,) = leg.media._files.values()
            file.reserved = float("inf")
            os.close(file._fd)
        stub.run_in_loop(break_the_recording_file)
        assert call.wait(30) == 0
        assert wait_until(lambda: journal(stub).invocations("HANGUP"), 10)
        assert wait_until(lambda: not any(stub.resources().get(k) for k in
                                          ("dialogs", "media_sessions", "transactions")), 10)
        failures = [e.reason for e in journal(stub).of(MediaFailed)]
        assert failures and "Bad file descriptor" in failures[0]


def test_a_killed_caller_worker_leaves_a_valid_wav(stub, tmp_path):
    heard = tmp_path / "heard.wav"
    with Caller(workdir=tmp_path / "caller") as caller:
        call = caller.call(stub.sip_uri("+14345550101"), record_to=heard)
        call.wait_for("CONFIRMED", timeout=10)
        time.sleep(1.5)
        os.kill(call.worker_pid, signal.SIGKILL)
        with pytest.raises(CallerError, match="SIGKILL"):
            call.wait_for("DISCONNECTED", timeout=10)
    assert wav_is_true(heard) and len(read_wav(heard.read_bytes())) > 4000
