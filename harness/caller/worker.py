"""Caller worker process: one pjsua2 Endpoint and at most 4 calls, driven over a pipe.

Run as ``python -m harness.caller.worker CONFIG_JSON`` (see ``Caller`` for the config).
Commands arrive as JSON lines on stdin; each gets a ``{"ev": "reply", "seq": n}`` line,
with ``"error"`` set when it failed. Call events (``ready``, ``state``, ``dtmf``,
``incoming``, ``error``) leave as JSON lines on the original stdout, which the worker keeps
for itself: fd 1 is pointed at /dev/null so pjsua2's own prints cannot corrupt the channel.
A worker ends when told to ``quit`` or when stdin closes.
"""

import functools
import json
import os
import select
import sys
import threading
import time
import traceback
from pathlib import Path

import pjsua2 as pj

from harness.caller.endpoint import account_config, create_endpoint

STATE_NAMES = {
    pj.PJSIP_INV_STATE_CALLING: "CALLING",
    pj.PJSIP_INV_STATE_INCOMING: "INCOMING",
    pj.PJSIP_INV_STATE_EARLY: "EARLY",
    pj.PJSIP_INV_STATE_CONNECTING: "CONNECTING",
    pj.PJSIP_INV_STATE_CONFIRMED: "CONFIRMED",
    pj.PJSIP_INV_STATE_DISCONNECTED: "DISCONNECTED",
}
DTMF_METHODS = {"rfc2833": pj.PJSUA_DTMF_METHOD_RFC2833, "info": pj.PJSUA_DTMF_METHOD_SIP_INFO}
DTMF_METHOD_NAMES = {value: name for name, value in DTMF_METHODS.items()}
SHUTDOWN_GRACE_S = 3.0


class Channel:
    """JSON lines: commands in on stdin, events out on a private copy of the original fd 1."""

    def __init__(self) -> None:
        self._out = os.fdopen(os.dup(1), "w", buffering=1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
        self._lock = threading.Lock()
        self._pending = b""
        self.closed = False

    def send(self, **message) -> None:
        """Write one message; a vanished parent closes the channel instead of raising."""
        line = json.dumps(message) + "\n"
        with self._lock:
            try:
                self._out.write(line)
            except (BrokenPipeError, ValueError):
                self.closed = True

    def receive(self) -> list[dict]:
        """The commands that have fully arrived, without blocking."""
        messages = []
        while not self.closed and select.select([0], [], [], 0)[0]:
            chunk = os.read(0, 65536)
            if not chunk:
                self.closed = True
                break
            self._pending += chunk
            *lines, self._pending = self._pending.split(b"\n")
            messages.extend(json.loads(line) for line in lines if line.strip())
        return messages


def guarded(callback):
    """Keep a Python exception inside a pjsua2 callback from aborting the process."""

    @functools.wraps(callback)
    def wrapper(self, *args):
        try:
            callback(self, *args)
        except Exception:
            traceback.print_exc()
            self.worker.channel.send(ev="error", call=self.key, message=traceback.format_exc(limit=3))

    return wrapper


class WorkerCall(pj.Call):
    """One pjsua2 call, its player and recorder, reporting its events to the channel."""

    def __init__(self, worker: "Worker", key: str, call_id: int = pj.PJSUA_INVALID_ID,
                 record_to: str | None = None, play: str | None = None) -> None:
        super().__init__(worker.account, call_id)
        self.worker = worker
        self.key = key
        self.recorder = None
        self.player = None
        if record_to:
            self.recorder = pj.AudioMediaRecorder()
            self.recorder.createRecorder(record_to)
        if play:
            self.player = pj.AudioMediaPlayer()
            self.player.createPlayer(play)

    @guarded
    def onCallState(self, prm) -> None:
        info = self.getInfo()
        if info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.recorder = self.player = None  # the WAV is complete before anyone hears of the end
            self.worker.call_ended(self)
        self.worker.channel.send(ev="state", call=self.key, state=STATE_NAMES[info.state],
                                 status=info.lastStatusCode, reason=info.lastReason,
                                 call_id=info.callIdString, time=time.time())

    @guarded
    def onCallMediaState(self, prm) -> None:
        info = self.getInfo()  # must outlive the loop: .media points into it
        for media in info.media:
            if media.type == pj.PJMEDIA_TYPE_AUDIO and media.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                audio = self.getAudioMedia(media.index)
                if self.recorder is not None:
                    audio.startTransmit(self.recorder)
                if self.player is not None:
                    self.player.startTransmit(audio)

    @guarded
    def onDtmfDigit(self, prm) -> None:
        self.worker.channel.send(ev="dtmf", call=self.key, digit=prm.digit,
                                 method=DTMF_METHOD_NAMES.get(prm.method, str(prm.method)),
                                 time=time.time())


class UserAgent(pj.Account):
    """The worker's only account; hands incoming INVITEs to the worker."""

    def __init__(self, worker: "Worker") -> None:
        super().__init__()
        self.worker = worker
        self.key = None

    @guarded
    def onIncomingCall(self, prm) -> None:
        self.worker.incoming_call(prm)


class Worker:
    """The command loop: pjsua2 is touched only from the thread that runs ``run()``."""

    def __init__(self, config: dict) -> None:
        self.channel = Channel()
        self.host = config["host"]
        self.listen = config.get("listen")
        self.ep, transport_id, self.port = create_endpoint(
            self.host, config["transport"], config["codecs"], config["log_level"], config["log_file"])
        user = self.listen["user"] if self.listen else "harness"
        self.account = UserAgent(self)
        self.account.create(account_config(f"sip:{user}@{self.host}:{self.port}", self.host, transport_id))
        self.calls: dict[str, WorkerCall] = {}
        self.ended: list[WorkerCall] = []  # dropped only after the callback that ended them
        self.answer_due: dict[str, float] = {}
        self.incoming_count = 0

    def run(self) -> None:
        """Serve commands and pjsua2 events until ``quit`` or a closed stdin, then shut down."""
        self.channel.send(ev="ready", port=self.port, pid=os.getpid())
        running = True
        while running and not self.channel.closed:
            for command in self.channel.receive():
                if command["op"] == "quit":
                    running = False
                    break
                self.execute(command)
            self.ep.libHandleEvents(10)
            self.answer_calls_due()
            self.ended.clear()
        self.shutdown()

    def execute(self, command: dict) -> None:
        """Run one command and reply to it, with the pjsua2 error if it failed."""
        try:
            result = getattr(self, "op_" + command["op"])(command) or {}
            self.channel.send(ev="reply", seq=command["seq"], error=None, **result)
        except pj.Error as error:
            self.channel.send(ev="reply", seq=command["seq"], error=f"{error.title}: {error.reason}")
        except Exception as error:
            self.channel.send(ev="reply", seq=command["seq"], error=f"{type(error).__name__}: {error}")

    def op_call(self, command: dict) -> dict:
        call = WorkerCall(self, command["call"], record_to=command["record_to"], play=command["play"])
        prm = pj.CallOpParam(True)
        if command["from_uri"]:
            prm.txOption.localUri = command["from_uri"]
        for name, value in command["headers"].items():
            header = pj.SipHeader()
            header.hName, header.hValue = name, value
            prm.txOption.headers.append(header)
        self.calls[call.key] = call
        try:
            call.makeCall(command["uri"], prm)
        except pj.Error:
            del self.calls[call.key]
            self.ended.append(call)
            raise
        return {"call_id": call.getInfo().callIdString}

    def op_dtmf(self, command: dict) -> None:
        prm = pj.CallSendDtmfParam()
        prm.digits = command["digits"]
        prm.method = DTMF_METHODS[command["method"]]
        self.live_call(command).sendDtmf(prm)

    def op_hangup(self, command: dict) -> None:
        call = self.calls.get(command["call"])
        if call is not None:  # hanging up an ended call is a no-op
            self.answer_due.pop(call.key, None)
            prm = pj.CallOpParam()
            prm.statusCode = command["status"] or 0
            call.hangup(prm)

    def op_answer(self, command: dict) -> None:
        self.answer_due.pop(command["call"], None)
        self.answer(self.live_call(command), command["status"])

    def live_call(self, command: dict) -> WorkerCall:
        try:
            return self.calls[command["call"]]
        except KeyError:
            raise LookupError("the call has ended") from None

    def answer(self, call: WorkerCall, status: int) -> None:
        prm = pj.CallOpParam()
        prm.statusCode = status
        call.answer(prm)

    def incoming_call(self, prm) -> None:
        """Ring, and answer now or after ``ring_ms`` as the listener asks; reject if none."""
        if self.listen is None:
            self.reject(prm.callId, 480)
            return
        self.incoming_count += 1
        key = f"i{self.incoming_count}"
        record_to = None
        if self.listen["record_dir"]:
            record_to = str(Path(self.listen["record_dir"]) / f"{self.listen['user']}-{self.incoming_count}.wav")
        try:
            call = WorkerCall(self, key, prm.callId, record_to=record_to, play=self.listen["play"])
        except pj.Error:
            self.reject(prm.callId, 500)
            raise
        self.calls[key] = call
        self.channel.send(ev="incoming", call=key, call_id=call.getInfo().callIdString,
                          invite=prm.rdata.wholeMsg, record_to=record_to)
        self.channel.send(ev="state", call=key, state="INCOMING", status=0, reason="",
                          call_id=call.getInfo().callIdString, time=time.time())
        ring_ms = self.listen["ring_ms"]
        if self.listen["answer"] and ring_ms <= 0:
            self.answer(call, 200)
            return
        self.answer(call, 180)
        if self.listen["answer"]:
            self.answer_due[key] = time.monotonic() + ring_ms / 1000

    def reject(self, call_id: int, status: int) -> None:
        call = pj.Call(self.account, call_id)
        self.ended.append(call)
        prm = pj.CallOpParam()
        prm.statusCode = status
        call.hangup(prm)

    def answer_calls_due(self) -> None:
        now = time.monotonic()
        for key, due in list(self.answer_due.items()):
            if due <= now:
                del self.answer_due[key]
                self.answer(self.calls[key], 200)

    def call_ended(self, call: WorkerCall) -> None:
        self.calls.pop(call.key, None)
        self.answer_due.pop(call.key, None)
        self.ended.append(call)

    def shutdown(self) -> None:
        """Hang up, drop every pjsua2 object, then destroy the library (the order matters)."""
        self.ep.hangupAllCalls()
        deadline = time.monotonic() + SHUTDOWN_GRACE_S
        while self.calls and time.monotonic() < deadline:
            self.ep.libHandleEvents(10)
        self.calls.clear()
        self.ended.clear()
        self.account.shutdown()
        self.account = None
        self.ep.libDestroy()
        self.ep = None


def main() -> None:
    Worker(json.loads(sys.argv[1])).run()


if __name__ == "__main__":
    main()
