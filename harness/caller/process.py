"""A caller worker process as the test process sees it: a subprocess, a pipe and a reader thread."""

import itertools
import json
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from harness.caller.call import CallerError

START_TIMEOUT_S = 20.0
REQUEST_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0


class WorkerProcess:
    """Starts ``python -m harness.caller.worker``, sends it commands, hands its events on.

    ``on_event(worker, message)`` and ``on_exit(worker)`` run on the reader thread.
    """

    def __init__(self, name: str, config: dict, workdir: Path,
                 on_event: Callable[["WorkerProcess", dict], None],
                 on_exit: Callable[["WorkerProcess"], None]) -> None:
        self.name = name
        self._stderr_path = workdir / f"{name}.stderr"
        self._on_event = on_event
        self._on_exit = on_exit
        self._seq = itertools.count(1)
        self._replies: dict[int, list] = {}  # seq -> [threading.Event, reply or None]
        self._write_lock = threading.Lock()
        self._ready = threading.Event()
        self.port = 0
        self.exit_message = ""
        with open(self._stderr_path, "wb") as stderr:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "harness.caller.worker", json.dumps(config)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                start_new_session=True)  # Ctrl-C reaches the test process only; it stops workers
        self.pid = self._proc.pid
        self._reader = threading.Thread(target=self._read, name=f"{name}-reader", daemon=True)
        self._reader.start()
        if not self._ready.wait(START_TIMEOUT_S) or self.exit_message:
            self._proc.kill()
            self._proc.wait()
            raise CallerError(f"{self.name} did not start: {self.exit_message or 'no answer'}")

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None

    def request(self, op: str, **fields) -> dict:
        """Send a command and wait for its reply; CallerError if it failed or the worker died."""
        seq = next(self._seq)
        slot = self._replies[seq] = [threading.Event(), None]
        try:
            if self.exit_message:
                raise CallerError(self.exit_message)
            self._write({"op": op, "seq": seq, **fields})
            if not slot[0].wait(REQUEST_TIMEOUT_S):
                raise CallerError(f"{self.name}: no reply to {op!r} within {REQUEST_TIMEOUT_S:g} s")
        finally:
            self._replies.pop(seq, None)
        reply = slot[1]
        if reply is None:
            raise CallerError(self.exit_message)
        if reply["error"]:
            raise CallerError(f"{op} failed: {reply['error']}")
        return reply

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Ask the worker to quit, kill it if it does not, and wait for it and its reader."""
        self.begin_stop()
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._reader.join(timeout)

    def begin_stop(self) -> None:
        """Ask the worker to quit without waiting (to stop several workers in parallel)."""
        try:
            self._write({"op": "quit"})
            self._proc.stdin.close()
        except (CallerError, OSError, ValueError):
            pass

    def _write(self, message: dict) -> None:
        with self._write_lock:
            try:
                self._proc.stdin.write(json.dumps(message).encode() + b"\n")
                self._proc.stdin.flush()
            except (BrokenPipeError, ValueError):
                raise CallerError(self.exit_message or f"{self.name} is gone") from None

    def _read(self) -> None:
        try:
            for line in self._proc.stdout:
                self._dispatch(json.loads(line))
        except BaseException:
            self._proc.kill()  # without its channel the worker is of no use
            raise
        finally:
            self._proc.stdout.close()
            self.exit_message = self._describe_exit(self._proc.wait())
            self._ready.set()
            for slot in list(self._replies.values()):
                slot[0].set()
            self._on_exit(self)

    def _dispatch(self, message: dict) -> None:
        if message["ev"] == "reply":
            slot = self._replies.get(message["seq"])
            if slot is not None:
                slot[1] = message
                slot[0].set()
        elif message["ev"] == "ready":
            self.port = message["port"]
            self._ready.set()
        else:
            self._on_event(self, message)

    def _describe_exit(self, returncode: int) -> str:
        if returncode < 0:
            how = f"was killed by {signal.Signals(-returncode).name}"
        else:
            how = f"exited with status {returncode}"
        tail = self._stderr_path.read_text(errors="replace").strip().splitlines()[-5:]
        detail = (": " + " | ".join(tail)) if tail else ""
        return f"caller worker {self.name} (pid {self.pid}) {how}{detail} (stderr: {self._stderr_path})"
