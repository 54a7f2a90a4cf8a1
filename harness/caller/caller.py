"""``Caller``: real SIP calls from a pool of pjsua2 worker processes, behind a plain Python API."""

import itertools
import threading
from collections.abc import Mapping
from pathlib import Path

from harness.caller.call import Call, CallerError, Listener
from harness.caller.process import WorkerProcess
from harness.caller.recordings import finish_recording

MAX_CALLS_PER_WORKER = 4  # the pjsua2-python wheel's PJSUA_MAX_CALLS
CODECS = ("PCMU", "PCMA")
TRANSPORTS = ("udp", "tcp", "tls")


class Caller:
    """Places and receives SIP calls; thread-safe; use as a context manager or call ``close()``.

    Each worker process runs one pjsua2 Endpoint with at most 4 calls; ``call()`` starts a
    new worker when all are full, and ``listen()`` gives each listener a worker of its own.
    A worker that dies fails its calls with ``CallerError``; new calls get a new worker.

    host: address that SIP and RTP bind to and that Via, Contact and SDP carry.
    transport: "udp", "tcp" or "tls" (";transport=tcp|tls" is added to URIs that name none).
    ca_file: for "tls", the PEM file of the CA the far end's certificate must chain to (the
        certificate is then verified; without one it is not).
    srtp: offer and require SRTP keyed by SDES (AES_CM_128_HMAC_SHA1_80), as a Voice
        Connector with encryption on requires.
    credentials: ``{"username", "password", "realm"?}`` dicts answered to digest challenges
        (the termination credentials of a Voice Connector).
    message_log: each worker writes the SIP messages it sends and receives to
        ``caller-N.messages.jsonl`` in workdir (default: on for "tls", whose SIP no capture
        can read); ``message_logs()`` lists them.
    media_ports: (low, high) range for the calls' RTP ports (default: pjsua2's, from 4000).
    workdir: where each worker leaves its stderr (``caller-N.stderr``) and pjsua2 log.
    codecs: the G.711 codecs to offer, in order of preference; telephone-event is always offered.
    log_level: pjsua2 log level (0-6) for ``caller-N.log`` in workdir; 0 silences pjsua2.
    """

    def __init__(self, host: str = "127.0.0.1", transport: str = "udp", *, workdir: Path,
                 codecs: tuple[str, ...] = CODECS, log_level: int = 0, ca_file: Path | None = None,
                 srtp: bool = False, credentials: list[dict] | None = None,
                 message_log: bool | None = None, media_ports: tuple[int, int] | None = None) -> None:
        if transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {TRANSPORTS}, not {transport!r}")
        if not codecs or not set(codecs) <= set(CODECS) or len(set(codecs)) != len(codecs):
            raise ValueError(f"codecs must be distinct names from {CODECS}, not {codecs!r}")
        self.host = host
        self.transport = transport
        self.workdir = Path(workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._codecs = list(codecs)
        self._log_level = log_level
        self._tls = {"ca_file": str(Path(ca_file).resolve()) if ca_file else None}
        self._srtp = srtp
        self._credentials = list(credentials or [])
        self._message_log = transport == "tls" if message_log is None else message_log
        self._media_ports = list(media_ports) if media_ports else None
        self._lock = threading.Lock()
        self._calls: dict[WorkerProcess, dict[str, Call]] = {}  # live workers -> their open calls
        self._listeners: dict[WorkerProcess, Listener] = {}
        self._worker_numbers = itertools.count(1)
        self._call_numbers = itertools.count(1)
        self._closed = False

    def __enter__(self) -> "Caller":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of the workers still running."""
        with self._lock:
            return [worker.pid for worker in self._calls if worker.alive]

    def call(self, uri: str, from_uri: str | None = None, headers: Mapping[str, str] | None = None,
             record_to: Path | None = None, play: Path | None = None) -> Call:
        """Send an INVITE to ``uri`` and return the call at once (state CALLING).

        from_uri: the From URI (default ``sip:harness@<host>:<port>``).
        headers: extra SIP headers for the INVITE.
        record_to: WAV file (8 kHz, mono, 16-bit) of what this side hears; complete once
            the call is DISCONNECTED.
        play: WAV file sent to the far end in a loop; silence if None.
        Raises CallerError if the worker refuses the call (e.g. a malformed URI).
        """
        uri = self._with_transport(uri)
        play_path = _existing_file(play)
        record_path = _record_path(record_to)
        with self._lock:
            self._check_open()
            worker = self._worker_with_room()
            key = f"o{next(self._call_numbers)}"
            call = Call(worker, key, uri, record_to=record_path)
            self._calls[worker][key] = call
        try:
            reply = worker.request("call", call=key, uri=uri, from_uri=from_uri,
                                   headers=dict(headers or {}), play=play_path,
                                   record_to=str(record_path) if record_path else None)
        except CallerError as error:
            with self._lock:
                self._calls.get(worker, {}).pop(key, None)
            raise CallerError(f"call {uri}: {error}") from None
        call.call_id = call.call_id or reply["call_id"]
        return call

    def listen(self, user: str, answer: bool = True, play: Path | None = None,
               record_dir: Path | None = None, ring_ms: int = 0) -> Listener:
        """Start a user agent, in a worker of its own, that receives calls for ``user``.

        answer: answer with 200 OK (after 180 Ringing for ``ring_ms``); if False the calls
            ring until ``Call.answer()`` or ``Call.hangup(status)``.
        play: WAV file sent on each answered call in a loop; silence if None.
        record_dir: where each call's received audio goes, as ``<user>-<n>.wav``.
        At most 4 calls at once; pjsua2 answers further INVITEs with 486.
        """
        play_path = _existing_file(play)
        if record_dir is not None:
            record_dir = Path(record_dir).resolve()
            record_dir.mkdir(parents=True, exist_ok=True)
        listen = {"user": user, "answer": answer, "play": play_path, "ring_ms": ring_ms,
                  "record_dir": str(record_dir) if record_dir else None}
        with self._lock:
            self._check_open()
            worker = self._start_worker(listen)
            suffix = f";transport={self.transport}" if self.transport != "udp" else ""
            listener = self._listeners[worker] = Listener(
                f"sip:{user}@{self.host}:{worker.port}{suffix}", worker.pid)
        return listener

    def message_logs(self) -> list[Path]:
        """The SIP message logs the workers have written (see ``message_log``)."""
        return sorted(self.workdir.glob("caller-*.messages.jsonl"))

    def close(self) -> None:
        """Hang up every call and stop every worker; no worker process remains afterwards."""
        with self._lock:
            self._closed = True
            workers = list(self._calls)
        for worker in workers:
            worker.begin_stop()
        for worker in workers:
            worker.stop()

    def _check_open(self) -> None:
        if self._closed:
            raise CallerError("the caller is closed")

    def _worker_with_room(self) -> WorkerProcess:
        callers = [worker for worker, calls in self._calls.items()
                   if worker not in self._listeners and len(calls) < MAX_CALLS_PER_WORKER]
        if callers:
            return min(callers, key=lambda worker: len(self._calls[worker]))
        return self._start_worker(None)

    def _start_worker(self, listen: dict | None) -> WorkerProcess:
        name = f"caller-{next(self._worker_numbers)}"
        config = {"host": self.host, "transport": self.transport, "codecs": self._codecs,
                  "log_level": self._log_level, "log_file": str(self.workdir / f"{name}.log"),
                  "listen": listen, "tls": self._tls, "srtp": self._srtp,
                  "credentials": self._credentials, "media_ports": self._media_ports,
                  "message_log": str(self.workdir / f"{name}.messages.jsonl") if self._message_log else None}
        worker = WorkerProcess(name, config, self.workdir, self._on_event, self._on_exit)
        self._calls[worker] = {}
        return worker

    def _on_event(self, worker: WorkerProcess, message: dict) -> None:
        key = message.get("call")
        with self._lock:
            calls = self._calls.get(worker, {})
            listener = self._listeners.get(worker)
            if message["ev"] == "incoming" and listener is not None:
                calls[key] = Call(worker, key, f"{key} to {listener.uri}", invite=message["invite"],
                                  record_to=Path(message["record_to"]) if message["record_to"] else None)
            call = calls.get(key)
            if message["ev"] == "state" and message["state"] == "DISCONNECTED":
                calls.pop(key, None)
        if message["ev"] == "incoming" and call is not None:
            listener._add(call)
        elif message["ev"] == "error" and key is None and listener is not None:
            listener._fail(message["message"])
        elif call is not None:
            call._on_event(message)

    def _on_exit(self, worker: WorkerProcess) -> None:
        with self._lock:
            calls = self._calls.pop(worker, {})
            listener = self._listeners.pop(worker, None)
        for call in calls.values():
            if call.record_to is not None:
                finish_recording(call.record_to)  # the worker died before closing its WAV
            call._fail(worker.exit_message)
        if listener is not None:
            listener._fail(worker.exit_message)

    def _with_transport(self, uri: str) -> str:
        if self.transport == "udp" or "transport=" in uri.lower():
            return uri
        address, question, headers = uri.partition("?")
        return f"{address};transport={self.transport}{question}{headers}"


def _existing_file(path: Path | None) -> str | None:
    if path is None:
        return None
    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no such WAV file: {path}")
    return str(path)


def _record_path(path: Path | None) -> Path | None:
    if path is None:
        return None
    path = Path(path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
