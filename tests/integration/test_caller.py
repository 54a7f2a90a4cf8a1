"""harness.caller against real peers: SIPp's built-in scenarios and the caller's own listener."""

import contextlib
import errno
import math
import os
import signal
import socket
import struct
import subprocess
import time
import wave
from pathlib import Path

import pytest

from conftest import require_tool
from harness.caller import Caller, CallerError

HOST = "127.0.0.1"
SIPP = require_tool("sipp")


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_until_bound(port: int, process: subprocess.Popen, timeout: float = 10.0) -> None:
    """Wait until someone (SIPp) holds UDP ``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind((HOST, port))
            except OSError as error:
                if error.errno == errno.EADDRINUSE:
                    return
                raise
        time.sleep(0.05)
    raise AssertionError(f"SIPp did not bind {HOST}:{port} (exit code {process.poll()})")


@contextlib.contextmanager
def sipp(*args: str):
    """Run SIPp on a free port; yield (process, port); kill it at the end if still running."""
    port = free_port()
    command = [SIPP, *args, "-i", HOST, "-p", str(port), "-mp", str(free_port()),
               "-nostdin", "-timeout", "30s"]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        wait_until_bound(port, process)
        yield process, port
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def assert_gone(pids: list[int]) -> None:
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def write_tone(path: Path, frequency: float = 440.0, seconds: float = 1.0) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"".join(struct.pack("<h", int(12000 * math.sin(2 * math.pi * frequency * n / 8000)))
                                 for n in range(int(8000 * seconds))))
    return path


def read_wav(path: Path) -> tuple[wave._wave_params, list[int]]:
    with wave.open(str(path), "rb") as wav:
        params = wav.getparams()
        frames = wav.readframes(params.nframes)
    return params, list(struct.unpack(f"<{len(frames) // 2}h", frames))


def wait_digits(call, count: int, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while len(call.dtmf_received) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return call.dtmf_received


def test_call_to_sipp_uas_is_confirmed_recorded_and_hung_up(tmp_path):
    with sipp("-sn", "uas", "-m", "1") as (uas, port):
        with Caller(HOST, "udp", workdir=tmp_path) as caller:
            call = caller.call(f"sip:+14345550101@{HOST}:{port}", from_uri=f"sip:+14255550199@{HOST}",
                               headers={"X-Test-Value": "abc"}, record_to=tmp_path / "rx.wav")
            call.wait_for("CONFIRMED", timeout=10)
            time.sleep(1.0)
            call.hangup()
            call.wait_for("DISCONNECTED", timeout=10)
            pids = caller.worker_pids
        assert uas.wait(10) == 0
    assert call.call_id and call.last_status == 200
    states = [event["state"] for event in call.events if event["type"] == "state"]
    assert states[0] == "CALLING" and states[-2:] == ["CONFIRMED", "DISCONNECTED"]
    params, _ = read_wav(tmp_path / "rx.wav")
    assert (params.nchannels, params.sampwidth, params.framerate) == (1, 2, 8000)
    assert 0.8 <= params.nframes / 8000 <= 20
    assert_gone(pids)


def test_call_to_a_port_where_nothing_listens_fails_with_caller_error(tmp_path):
    with Caller(HOST, "tcp", workdir=tmp_path) as caller:
        refused = caller.call(f"sip:nobody@{HOST}:{free_port(socket.SOCK_STREAM)}")
        with pytest.raises(CallerError, match="ended before CONFIRMED: last status 503"):
            refused.wait_for("CONFIRMED", timeout=10)
    with Caller(HOST, "udp", workdir=tmp_path) as caller:
        unanswered = caller.call(f"sip:nobody@{HOST}:{free_port()}")
        started = time.monotonic()
        with pytest.raises(CallerError, match="not CONFIRMED within 1 s .*no SIP response"):
            unanswered.wait_for("CONFIRMED", timeout=1)
        assert time.monotonic() - started < 5
        unanswered.hangup()


def test_five_concurrent_calls_grow_the_pool_to_two_workers(tmp_path):
    with sipp("-sn", "uas", "-m", "5") as (uas, port):
        with Caller(HOST, "udp", workdir=tmp_path) as caller:
            calls = [caller.call(f"sip:+1434555010{n}@{HOST}:{port}") for n in range(5)]
            for call in calls:
                call.wait_for("CONFIRMED", timeout=15)
            pids = caller.worker_pids
            assert len(pids) == 2
            assert len({call.call_id for call in calls}) == 5
            for call in calls:
                call.hangup()
            for call in calls:
                call.wait_for("DISCONNECTED", timeout=10)
        assert caller.worker_pids == []
        assert uas.wait(10) == 0
    assert_gone(pids)


def test_listener_answers_a_call_from_sipp_uac(tmp_path):
    with Caller(HOST, "udp", workdir=tmp_path) as caller:
        ua = caller.listen("+15555550100", record_dir=tmp_path / "rec", ring_ms=100)
        port = ua.uri.rsplit(":", 1)[1]
        assert ua.uri == f"sip:+15555550100@{HOST}:{port}"
        with sipp("-sn", "uac", "-m", "1", "-d", "500", "-s", "+15555550100", f"{HOST}:{port}") as (uac, _):
            assert uac.wait(20) == 0
        call = ua.wait_call(timeout=5)
        call.wait_for("DISCONNECTED", timeout=10)
        assert call.invite.startswith("INVITE sip:+15555550100@")
        assert [e["state"] for e in call.events if e["state"] in ("EARLY", "CONFIRMED")] == ["EARLY", "CONFIRMED"]
        assert ua.calls == [call]
    params, _ = read_wav(call.record_to)
    assert params.nframes > 0


def test_killed_worker_fails_its_calls_and_the_caller_goes_on(tmp_path):
    with Caller(HOST, "udp", workdir=tmp_path) as caller:
        ua = caller.listen("agent")
        doomed = caller.call(ua.uri)
        doomed.wait_for("CONFIRMED", timeout=10)
        os.kill(doomed.worker_pid, signal.SIGKILL)
        with pytest.raises(CallerError, match="killed by SIGKILL"):
            doomed.wait_for("DISCONNECTED", timeout=10)
        with pytest.raises(CallerError, match="killed by SIGKILL"):
            doomed.send_dtmf("1")
        survivor = caller.call(ua.uri)
        survivor.wait_for("CONFIRMED", timeout=10)
        assert survivor.worker_pid != doomed.worker_pid
        assert doomed.worker_pid not in caller.worker_pids
        survivor.hangup()
        survivor.wait_for("DISCONNECTED", timeout=10)
        pids = caller.worker_pids
    assert_gone(pids)


def test_dtmf_audio_and_invite_between_caller_and_listener_over_tcp(tmp_path):
    tone = write_tone(tmp_path / "tone.wav")
    with Caller(HOST, "tcp", workdir=tmp_path, codecs=("PCMA",), log_level=3) as caller:
        ua = caller.listen("+15555550100", record_dir=tmp_path / "rec")
        call = caller.call(ua.uri, from_uri=f"sip:+14255550199@{HOST}", headers={"X-Test-Value": "abc"},
                           play=tone, record_to=tmp_path / "rx.wav")
        answered = ua.wait_call(timeout=10)
        call.wait_for("CONFIRMED", timeout=10)
        answered.wait_for("CONFIRMED", timeout=10)
        call.send_dtmf("12")
        call.send_dtmf("#", method="info")
        answered.send_dtmf("9")
        assert sorted(wait_digits(answered, 3)) == sorted("12#")
        assert wait_digits(call, 1) == "9"
        assert {e["method"] for e in answered.events if e["type"] == "dtmf"} == {"rfc2833", "info"}
        time.sleep(0.5)
        call.hangup()
        call.wait_for("DISCONNECTED", timeout=10)
        answered.wait_for("DISCONNECTED", timeout=10)
    invite = answered.invite
    assert ";transport=tcp" in ua.uri and "X-Test-Value: abc" in invite
    assert "From: sip:+14255550199@127.0.0.1;tag=" in invite
    assert "RTP/AVP 8 120\r\n" in invite and "a=rtpmap:120 telephone-event/8000" in invite
    params, samples = read_wav(answered.record_to)
    assert params.nframes >= 4000
    loud = [s for s in samples[-4000:] if abs(s) > 3000]  # the last half second is the tone
    assert len(loud) > 1000
    assert (tmp_path / "caller-1.log").stat().st_size > 0


def test_bad_arguments_and_closed_caller_are_refused(tmp_path):
    with pytest.raises(ValueError):
        Caller(HOST, "sctp", workdir=tmp_path)
    with pytest.raises(ValueError):
        Caller(HOST, "udp", workdir=tmp_path, codecs=("opus",))
    caller = Caller(HOST, "udp", workdir=tmp_path)
    with pytest.raises(FileNotFoundError):
        caller.call(f"sip:x@{HOST}:5060", play=tmp_path / "missing.wav")
    with pytest.raises(CallerError, match="call failed"):
        caller.call("not a sip uri")
    pids = caller.worker_pids
    caller.close()
    with pytest.raises(CallerError, match="closed"):
        caller.call(f"sip:x@{HOST}:5060")
    assert_gone(pids)
