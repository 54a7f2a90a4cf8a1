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
import re
import select
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import pjsua2 as pj

from harness.caller.endpoint import account_config, create_endpoint
from harness.caller.recordings import finish_recording

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
RECORDER_CLOSE_S = 2.0


@dataclass
class Ending:
    """A disconnected call whose DISCONNECTED waits for its recording's file to be closed."""

    call: "WorkerCall"
    message: dict
    recording: str | None  # the WAV file its recorder wrote
    deadline: float


_MESSAGE = re.compile(r"(TX|RX) \d+ bytes .*? (?:to|from) (\w+) ([^\s:]+):(\d+):\n(.*)\n--end msg--",
                      re.DOTALL)


class MessageLog(pj.LogWriter):
    """The SIP messages this UA sends and receives, as JSON lines with their time: the only
    record of SIP over TLS, which a capture cannot read. pjsip logs each one at level 4."""

    def __init__(self, path: str, local: tuple[str, int] | None = None) -> None:
        super().__init__()
        self.file = open(path, "a", buffering=1)
        self.local = local

    def write(self, entry) -> None:
        found = _MESSAGE.search(entry.msg)
        if found is None or self.local is None:
            return
        direction, transport, host, port, text = found.groups()
        peer = [host, int(port)]
        local = list(self.local)
        self.file.write(json.dumps({
            "time": time.time(), "direction": direction, "transport": transport.upper(),
            "src": local if direction == "TX" else peer, "dst": peer if direction == "TX" else local,
            "message": text}) + "\n")


def _held_open(path: str) -> bool:
    """Whether a file descriptor of this process still names `path`."""
    target = os.path.realpath(path)
    try:
        descriptors = os.listdir("/proc/self/fd")
    except OSError:
        return False
    for fd in descriptors:
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == target:
                return True
        except OSError:
            continue
    return False


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
        except Exception as error:
            traceback.print_exc()
            reason = error.reason if isinstance(error, pj.Error) else repr(error)
            self.worker.channel.send(ev="error", call=self.key, message=f"{callback.__name__}: {reason}")

    return wrapper


class WorkerCall(pj.Call):
    """One pjsua2 call, its player and recorder, reporting its events to the channel."""

    def __init__(self, worker: "Worker", key: str, call_id: int = pj.PJSUA_INVALID_ID,
                 record_to: str | None = None, play: str | None = None) -> None:
        recorder = player = None
        if record_to:  # before binding to the call: a bad file must leave the call untouched
            recorder = pj.AudioMediaRecorder()
            recorder.createRecorder(record_to)
        if play:
            player = pj.AudioMediaPlayer()
            player.createPlayer(play)
        super().__init__(worker.account, call_id)
        self.worker = worker
        self.key = key
        self.record_to = record_to
        self.recorder = recorder
        self.player = player

    @guarded
    def onCallState(self, prm) -> None:
        info = self.getInfo()
        message = dict(ev="state", call=self.key, state=STATE_NAMES.get(info.state, info.stateText),
                       status=info.lastStatusCode, reason=info.lastReason,
                       call_id=info.callIdString, time=time.time())
        if info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.worker.call_ended(self, message)
        else:
            self.worker.channel.send(**message)

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
        self.message_log = MessageLog(config["message_log"]) if config.get("message_log") else None
        self.ep, transport_id, self.port = create_endpoint(
            self.host, config["transport"], config["codecs"], config["log_level"], config["log_file"],
            config.get("tls"), self.message_log)
        if self.message_log is not None:
            self.message_log.local = (self.host, self.port)
        user = self.listen["user"] if self.listen else "harness"
        self.account = UserAgent(self)
        self.account.create(account_config(f"sip:{user}@{self.host}:{self.port}", self.host, transport_id,
                                           config.get("srtp", False), config.get("credentials", []),
                                           config.get("media_ports")))
        self.calls: dict[str, WorkerCall] = {}
        self.ended: list[pj.Call] = []  # dropped only after the callback that ended them
        self.ending: list[Ending] = []
        self.open_recordings: list[str] = []  # closed only by libDestroy
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
            self.report_ended_calls()
            self.ended.clear()
        self.shutdown()

    def execute(self, command: dict) -> None:
        """Run one command and reply to it, with the pjsua2 error if it failed."""
        try:
            result = getattr(self, "op_" + command["op"])(command) or {}
            self.channel.send(ev="reply", seq=command["seq"], error=None, **result)
        except pj.Error as error:
            self.channel.send(ev="reply", seq=command["seq"], error=error.reason)
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
            self.calls.pop(call.key, None)
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
                try:
                    self.answer(self.calls[key], 200)
                except pj.Error as error:
                    self.channel.send(ev="error", call=key, message=f"answer failed: {error.reason}")

    def call_ended(self, call: WorkerCall, message: dict) -> None:
        """Close the call's player and recorder; report the end once the WAV is complete."""
        self.calls.pop(call.key, None)
        self.answer_due.pop(call.key, None)
        recording = call.record_to if call.recorder is not None else None
        call.recorder = call.player = None
        self.ending.append(Ending(call, message, recording, time.monotonic() + RECORDER_CLOSE_S))

    def report_ended_calls(self) -> None:
        """Send the DISCONNECTED of each ended call whose recording is closed and complete.

        The conference bridge lets go of a port on a later tick than the recorder's
        destruction, and only then does pjmedia write the WAV's header and close the file;
        the file itself says when that is done: the worker waits until no descriptor of its
        own names it, then puts its header right (`finish_recording`) before anyone reads it.
        """
        now = time.monotonic()
        for ending in list(self.ending):
            closed = ending.recording is None or not _held_open(ending.recording)
            if closed or now > ending.deadline:
                self.ending.remove(ending)
                if ending.recording is not None:
                    if closed:
                        finish_recording(ending.recording)
                    else:  # the bridge still holds it: put right once the library is gone
                        self.open_recordings.append(ending.recording)
                self.channel.send(**ending.message)

    def shutdown(self) -> None:
        """Hang up, drop every pjsua2 object, then destroy the library (the order matters)."""
        self.ep.hangupAllCalls()
        deadline = time.monotonic() + SHUTDOWN_GRACE_S
        while (self.calls or self.ending) and time.monotonic() < deadline:
            self.ep.libHandleEvents(10)
            self.report_ended_calls()
        self.calls.clear()
        self.ended.clear()
        self.ending.clear()
        self.account.shutdown()
        self.account = None
        self.ep.libDestroy(pj.PJSUA_DESTROY_NO_NETWORK)  # calls are over: skip its 1 s wait
        self.ep = None
        for path in self.open_recordings:
            finish_recording(path)
        if self.message_log is not None:
            self.message_log.file.close()


def main() -> None:
    Worker(json.loads(sys.argv[1])).run()


if __name__ == "__main__":
    main()
