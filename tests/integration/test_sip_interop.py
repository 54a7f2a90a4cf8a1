"""The SIP core against SIPp as a real peer over UDP and TCP: both roles, CANCEL, BYE from
either side, hold and resume by re-INVITE, and a withheld ACK (timers G and H)."""
from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import TEST_DATA, require_tool, wait_until
from harness.journal_entries import SipConfirmed, SipEnded
from harness.journal_view import JournalView
from harness.testing.autoanswer import AutoAnswer
from harness.sip.events import (CallAnswered, CallConfirmed, CallEnded, CallProgress,
                                IncomingCall, MediaUpdated)
from harness.sip.sdp import build_offer
from harness.sip.transactions import Timers
from harness.sip.transport import TcpSipTransport, UdpSipTransport

SCENARIOS = TEST_DATA / "sipp"
HOST = "127.0.0.1"


class CoreUA:
    """The SIP core alone on its own event loop thread, answering with `AutoAnswer`."""

    def __init__(self, transport: str, answer: bool = True, t1: float = 0.5):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.ua = AutoAnswer(self.loop.time, answer=answer)
        cls = TcpSipTransport if transport == "tcp" else UdpSipTransport

        async def start():
            return await cls.listen(HOST, 0, self.ua, timers=Timers(t1=t1))
        self.sip = asyncio.run_coroutine_threadsafe(start(), self.loop).result(5)
        self.ua.endpoint = self.sip.endpoint
        self.transport = transport

    @property
    def target(self) -> str:
        return f"{HOST}:{self.sip.port}"

    def run(self, fn, *args):
        """Call `fn(*args, now)` on the loop, flush the core's output, return the result."""
        async def call():
            result = fn(*args, self.loop.time())
            self.sip.flush()
            return result
        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(5)

    def events(self, kind=object) -> list:
        return [e for e in list(self.ua.events) if isinstance(e, kind)]

    def wait_for(self, kind, count: int = 1, timeout: float = 10.0) -> list:
        found = wait_until(lambda: len(self.events(kind)) >= count, timeout)
        assert found, f"no {kind.__name__} after {timeout} s: {self.events()}"
        return self.events(kind)

    def close(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.sip.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def core():
    started = []

    def start(transport: str = "udp", **kw) -> CoreUA:
        started.append(CoreUA(transport, **kw))
        return started[-1]
    yield start
    for ua in started:
        ua.close()


@pytest.fixture
def sipp(tmp_path):
    """Start SIPp with the given arguments; every process is killed at teardown."""
    binary = require_tool("sipp")
    procs = []

    def start(*args: str, transport: str = "udp", calls: int = 1, timeout: int = 20
              ) -> subprocess.Popen:
        cmd = [binary, *args, "-i", HOST, "-m", str(calls), "-timeout", str(timeout), "-timeout_error",
               "-trace_msg", "-message_file", str(tmp_path / f"sipp-{len(procs)}.log"),
               "-trace_stat", "-stf", str(tmp_path / f"sipp-{len(procs)}.csv"), "-fd", "1"]
        if transport == "tcp":
            cmd += ["-t", "t1"]
        procs.append(subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, cwd=tmp_path))
        return procs[-1]
    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def finished(proc: subprocess.Popen, timeout: float = 20) -> int:
    """SIPp's exit status (0: every call succeeded), its stderr shown when it failed."""
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("SIPp did not finish") from None
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    return proc.returncode


def calls_done(proc: subprocess.Popen) -> int:
    """How many of SIPp's calls reached the end of their scenario (its statistics, written
    every second and at exit)."""
    stats = Path(proc.args[proc.args.index("-stf") + 1])
    rows = stats.read_text().splitlines() if stats.is_file() else []
    if len(rows) < 2:
        return 0
    header, last = rows[0].split(";"), rows[-1].split(";")
    return sum(int(last[header.index(f"{kind}(C)")]) for kind in ("SuccessfulCall", "FailedCall"))


def close_after_sipp(ua, proc: subprocess.Popen, calls: int = 1) -> None:
    """Close our side once SIPp is done with its calls: over TCP it aborts a call whose
    connection closes before it has finished it, however briefly after its last message."""
    assert wait_until(lambda: calls_done(proc) >= calls or proc.poll() is not None, 15), message_log(proc)[-2000:]
    ua.close()


def message_log(proc: subprocess.Popen) -> str:
    return Path(proc.args[proc.args.index("-message_file") + 1]).read_text(errors="replace")


def free_port(transport: str) -> int:
    kind = socket.SOCK_STREAM if transport == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


TRANSPORTS = pytest.mark.parametrize("transport", ["udp", "tcp"])


# ---- the stub itself (UDP) ------------------------------------------------------------------
def test_sipp_uac_calls_the_stub(stub, sipp):
    proc = sipp("-sn", "uac", "-s", "+14345550101", "-d", "800", f"{HOST}:{stub.sip_port}")
    finished(proc)
    ended = wait_until(lambda: JournalView(stub.journal_json()).of(SipEnded))
    assert [(e.by, e.reason) for e in ended] == [("remote", "BYE")]
    assert JournalView(stub.journal_json()).of(SipConfirmed)
    assert wait_until(lambda: stub.resources()["dialogs"] == 0)


# ---- the core as UAS --------------------------------------------------------------------------
@TRANSPORTS
def test_sipp_uac_calls_the_core(core, sipp, transport):
    ua = core(transport)
    proc = sipp("-sn", "uac", "-d", "100", "-r", "10", ua.target, transport=transport, calls=3)
    finished(proc)
    ended = ua.wait_for(CallEnded, 3)
    assert len(ua.events(IncomingCall)) == len(ua.events(CallConfirmed)) == 3
    assert {(e.by, e.reason) for e in ended} == {("remote", "BYE")}
    assert ua.sip.endpoint.active_dialogs() == 0


@TRANSPORTS
def test_cancel_before_the_answer(core, sipp, transport):
    ua = core(transport, answer=False)
    proc = sipp("-sf", str(SCENARIOS / "uac_cancel.xml"), ua.target, transport=transport)
    finished(proc)
    (ended,) = ua.wait_for(CallEnded)
    assert (ended.by, ended.reason, ended.status) == ("remote", "CANCEL", 487)
    log = message_log(proc)
    assert re.search(r"SIP/2.0 200 OK\r?\n(.*\r?\n)*?CSeq: 1 CANCEL", log)
    assert "SIP/2.0 487 Request Terminated" in log


@TRANSPORTS
def test_bye_from_our_side(core, sipp, transport):
    ua = core(transport)
    proc = sipp("-sf", str(SCENARIOS / "uac_wait_bye.xml"), ua.target, transport=transport)
    (confirmed,) = ua.wait_for(CallConfirmed)
    ua.run(ua.sip.endpoint.hangup, confirmed.sip_call_id)
    finished(proc)
    (ended,) = ua.wait_for(CallEnded)
    assert (ended.by, ended.reason, ended.status) == ("local", "BYE", 200)


@TRANSPORTS
def test_hold_and_resume_by_reinvite(core, sipp, transport):
    ua = core(transport)
    proc = sipp("-sf", str(SCENARIOS / "uac_hold_resume.xml"), ua.target, transport=transport)
    finished(proc)
    hold, resume = ua.wait_for(MediaUpdated, 2)
    assert (hold.held, hold.audio.direction, resume.held, resume.audio.direction) == (
        True, "recvonly", False, "sendrecv")
    assert hold.audio.dtmf_payload_type == 101 and b"a=sendonly" in hold.sdp
    (ended,) = ua.wait_for(CallEnded)
    assert (ended.by, ended.reason) == ("remote", "BYE")


def test_withheld_ack_retransmits_200_then_timer_h_ends_the_call(core, sipp):
    t1 = 0.025  # timer H = 64·T1 = 1.6 s
    ua = core("udp", t1=t1)
    proc = sipp("-sf", str(SCENARIOS / "uac_no_ack.xml"), ua.target)
    (incoming,) = ua.wait_for(IncomingCall)
    answered_at = time.monotonic()
    (ended,) = ua.wait_for(CallEnded)
    waited = time.monotonic() - answered_at
    finished(proc)  # SIPp answered the BYE that followed timer H
    assert (ended.by, ended.reason, ended.status) == ("local", "no ACK (timer H)", 408)
    assert 64 * t1 * 0.9 < waited < 64 * t1 + 2
    assert not ua.events(CallConfirmed)
    # the 200 went out at 0 and on timer G at T1, 3, 7, 15, 31, 63 T1 (then H at 64 T1)
    oks = re.findall(r"received \[\d+\] bytes :\s+SIP/2.0 200 OK(?:.*\n)*?CSeq: 1 INVITE",
                     message_log(proc))
    assert len(oks) == 7, message_log(proc)[-3000:]
    assert ua.sip.endpoint.active_dialogs() == 0


# ---- the core as UAC ----------------------------------------------------------------------------
def _place_call(ua: CoreUA, port: int) -> str:
    offer = build_offer(HOST, 40002, 7)
    return ua.run(lambda now: ua.sip.endpoint.invite(f"sip:+15550100@{HOST}:{port}", offer, now))


@TRANSPORTS
def test_sipp_uas_answers_a_call_we_place(core, sipp, transport):
    ua = core(transport)
    port, media_port = free_port(transport), free_port("udp")
    proc = sipp("-sn", "uas", "-p", str(port), "-mp", str(media_port), transport=transport)
    time.sleep(0.3)  # SIPp binds its socket
    call_id = _place_call(ua, port)
    (answered,) = ua.wait_for(CallAnswered)
    progress = ua.events(CallProgress)
    assert [p.status for p in progress] == [180]
    assert (answered.sip_call_id, answered.audio.codec, answered.audio.remote_port) == (
        call_id, "PCMU", media_port)
    ua.run(ua.sip.endpoint.hangup, call_id)
    (ended,) = ua.wait_for(CallEnded)
    assert (ended.by, ended.reason, ended.status) == ("local", "BYE", 200)
    close_after_sipp(ua, proc)  # SIPp over TCP finishes once the connection closes
    finished(proc)


@TRANSPORTS
def test_the_called_party_hangs_up_a_call_we_placed(core, sipp, transport):
    ua = core(transport)
    port = free_port(transport)
    proc = sipp("-sf", str(SCENARIOS / "uas_bye.xml"), "-p", str(port), transport=transport)
    time.sleep(0.3)
    _place_call(ua, port)
    (answered,) = ua.wait_for(CallAnswered)
    assert (answered.audio.codec, answered.audio.dtmf_payload_type) == ("PCMA", 101)
    (ended,) = ua.wait_for(CallEnded)
    assert (ended.by, ended.reason) == ("remote", "BYE")
    close_after_sipp(ua, proc)
    finished(proc)
