"""The stub's media edge, as `sip/transport.py` is its SIP edge: UDP sockets for RTP and RTCP
(RTP port + 1), and the one media clock that paces every stream.

The clock (`MediaClock`) wakes the event loop through a timerfd at absolute deadlines (loop
timers where there is no timerfd); at each slot every started session of that slot's phase
sends one packet straight from its socket. Sockets are read with `add_reader`, draining a few
datagrams per wake-up. Everything that decides what to send or what arrived means lives in the
sans-IO `RtpSender`, `RtpReceiver`, `RtcpReporter` and `Recording`; this module only moves
bytes, reads the time and writes recordings.

An engine given a `harness.netem.NetworkImpairment` passes every RTP packet through it,
outgoing ones before `sendto` and incoming ones after `recv` (RTCP is not impaired); delayed
ones leave (or arrive) from a loop timer. Without one (the default) nothing changes.

What a session plays is asked of it in the stub's terms: a WAV file, silence, speech or
digits (`play_file`, `play_silence`, `play_speech`, `send_digits`), each with the token its
`on_playback_done` reports.
"""
from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from pathlib import Path

from ..netem import INCOMING, OUTGOING, RTP, NetworkImpairment
from .bridge import BridgeTap, LiveFeed
from .clock import MediaClock
from .dtmf import DEFAULT_GAP_MS, DEFAULT_TONE_MS, DigitReceived
from .g711 import SILENCE_BYTE
from .recording import BOTH, Recording
from .rtcp import RtcpError
from .sources import FRAME_SAMPLES, RATE, wav_frames
from .speech import speech_frames
from .srtp import SrtpContext
from .wavfile import HEADER_BYTES, WavFile
from .stream import RtcpReporter, RtpReceiver, RtpSender

log = logging.getLogger(__name__)
Address = tuple[str, int]
_monotonic = time.monotonic  # the default event loop's clock
_PAIR_ATTEMPTS = 64
#: Slots per 20 ms period among which sessions are spread (see `MediaClock`).
DEFAULT_PHASES = 4
#: The clock's first deadline lies this far after the first session starts.
WAKE_UP_LEAD = 0.001
_RTCP_TYPES = range(192, 224)  # second octet of RTCP packets multiplexed on the RTP port
#: Datagrams read per readiness callback (bounded, so one busy socket cannot hold the loop).
MAX_READS = 64
#: Recordings reserve their disk space this far ahead of the audio, checked this often.
RESERVE_AHEAD_S, RESERVATION_INTERVAL_S = 5.0, 1.0
RECV_SIZE = 2048


class MediaSession:
    """One leg's media: an RTP and an RTCP socket, a sender, a receiver and a reporter.

    `on_playback_done(token)` runs when a playback or a digit string ends by itself;
    `on_digit(DigitReceived)` when the far end finishes a DTMF digit;
    `on_recording_failed(recording, error)` when a recording's disk space cannot be reserved
    (a full disk): that recording has stopped, its file holds no samples. With `srtp`, every
    packet is protected on its way out and unprotected on its way in (SRTP and SRTCP);
    everything between (sender, receiver, taps, recordings) sees clear RTP.
    """

    def __init__(self, engine: "MediaEngine", sockets: tuple[socket.socket, socket.socket],
                 sender: RtpSender, receiver: RtpReceiver,
                 on_playback_done: Callable[[object], None],
                 on_digit: Callable[[DigitReceived], None],
                 on_recording_failed: Callable[[Recording, OSError], None] | None = None,
                 srtp: SrtpContext | None = None):
        self.engine, self.sender, self.receiver = engine, sender, receiver
        self._rtp_socket, self._rtcp_socket = sockets
        self._sendto = self._rtp_socket.sendto
        self.local_port = self._rtp_socket.getsockname()[1]
        self.rtcp_port = self._rtcp_socket.getsockname()[1]
        self.reporter = RtcpReporter(sender, receiver.stats, f"sma-stub-{secrets.token_hex(6)}@{engine.host}")
        self.on_playback_done, self.on_digit = on_playback_done, on_digit
        self.on_recording_failed = on_recording_failed
        self.impairment = engine.impairment
        self.srtp = srtp
        self.remote: Address | None = None
        self.rtcp_remote: Address | None = None
        self.recordings: list[Recording] = []
        self._files: dict[Recording, WavFile] = {}
        self._next_reservation = 0.0
        self._incoming_taps: list = []
        self._listeners: dict[MediaSession, BridgeTap] = {}  # the sessions that hear this one
        self._hearing: MediaSession | None = None
        self._outgoing_taps: list = []
        self.send_errors = 0
        self.rtcp_invalid = 0
        self.closed = False

    def read_rtp(self) -> None:
        """Read what the RTP socket holds (at most MAX_READS), stamped with one arrival time.
        A clock tick that is due runs first: reads must not push the sending late."""
        self.engine.tick_if_due()
        recv, now = self._rtp_socket.recv, _monotonic()
        for _ in range(MAX_READS):
            try:
                data = recv(RECV_SIZE)
            except OSError:  # drained (BlockingIOError), or an ICMP error reported on the socket
                return
            if len(data) > 1 and data[1] in _RTCP_TYPES:
                self._rtcp_received(data)
            elif self.impairment is None:
                self._rtp_received(data, now)
            else:
                self.impairment.route(INCOMING, RTP, data, now, lambda d: self._rtp_received(d, now),
                                      lambda at, d: self.engine.call_at(at, self._rtp_received_late, d))

    def _rtp_received(self, data: bytes, now: float) -> None:
        if self.srtp is not None:
            data = self.srtp.unprotect(data)
            if data is None:
                return
        digits = self.receiver.receive(data, now)
        for track in self._incoming_taps:
            track.add(data, now)
        for digit in digits:
            self.on_digit(digit)

    def _rtp_received_late(self, data: bytes) -> None:
        if not self.closed:
            self._rtp_received(data, _monotonic())

    def read_rtcp(self) -> None:
        for _ in range(MAX_READS):
            try:
                self._rtcp_received(self._rtcp_socket.recv(RECV_SIZE))
            except OSError:
                return

    def _rtcp_received(self, data: bytes) -> None:
        if self.srtp is not None:
            data = self.srtp.unprotect_rtcp(data)
            if data is None:
                return
        try:
            self.reporter.receive(data, _monotonic(), time.time())
        except RtcpError:
            self.rtcp_invalid += 1

    def start(self, remote: Address, rtcp_remote: Address | None = None) -> None:
        """Start sending to `remote` from the next clock tick; RTCP goes to `rtcp_remote`
        (default: the remote RTP port + 1)."""
        self.remote = remote
        self.rtcp_remote = rtcp_remote or (remote[0], remote[1] + 1)
        self.reporter.start(_monotonic())
        self.engine.activate(self)

    def tick(self, now: float) -> None:
        """Run one clock tick: send this tick's packet, report finished media, RTCP, DTMF."""
        if self.closed:
            return
        packet = self.sender.tick()
        if packet is not None:
            if self.impairment is None:
                self._send_rtp(packet)
            else:
                self.impairment.route(OUTGOING, RTP, packet, now, self._send_rtp,
                                      lambda at, d: self.engine.call_at(at, self._send_rtp_late, d))
            for track in self._outgoing_taps:
                track.add(packet, now)
        if self.sender.done:
            done, self.sender.done = self.sender.done, []
            for token in done:
                self.on_playback_done(token)
        if now >= self.reporter.next_due:
            self._send_rtcp(self.reporter.report(now, time.time()))
        if self.receiver.events.pending:
            for digit in self.receiver.poll(now):
                self.on_digit(digit)
        if self._files and now >= self._next_reservation:
            self._reserve_recordings(now)

    def _reserve_recordings(self, now: float) -> None:
        """Reserve each recording's disk space RESERVE_AHEAD_S beyond what it holds; a
        recording that gets no space stops and is reported."""
        self._next_reservation = now + RESERVATION_INTERVAL_S
        for recording, file in list(self._files.items()):
            seconds = now - recording.start + RESERVE_AHEAD_S
            try:
                file.reserve(HEADER_BYTES + int(seconds * file.bytes_per_second))
            except OSError as exc:
                log.warning("recording %s stopped: %s", recording.path, exc)
                self.recordings.remove(recording)
                self._update_taps()
                del self._files[recording]
                file.abandon()
                if self.on_recording_failed is not None:
                    self.on_recording_failed(recording, exc)

    def _send_rtp(self, packet: bytes) -> None:
        if self.srtp is not None:
            packet = self.srtp.protect(packet)
        try:
            self._sendto(packet, self.remote)
        except OSError:  # socket buffer full or the far end unreachable: a lost packet
            self.send_errors += 1

    def _send_rtp_late(self, packet: bytes) -> None:
        if not self.closed:
            self._send_rtp(packet)

    def _send_rtcp(self, data: bytes) -> None:
        if self.srtp is not None:
            data = self.srtp.protect_rtcp(data)
        try:
            self._rtcp_socket.sendto(data, self.rtcp_remote)
        except OSError:
            self.send_errors += 1

    def play_file(self, path: Path, token: object, repeat: int = 1) -> None:
        """Play the WAV file `path` (PCM of any rate and width) `repeat` times, in this
        session's codec; InvalidAudioSource when it is missing or not PCM WAV."""
        self.sender.play(wav_frames(path, self.sender.codec), token, repeat)

    def play_silence(self, duration_ms: int, token: object) -> None:
        """Send silence for `duration_ms` (at least one packet)."""
        codec = self.sender.codec
        packets = max(1, round(duration_ms * RATE / 1000 / FRAME_SAMPLES))
        self.sender.play([bytes([SILENCE_BYTE[codec]]) * FRAME_SAMPLES] * packets, token)

    async def play_speech(self, text: str, voice: str, language: str, text_type: str,
                          token: object) -> None:
        """Speak `text` (`text_type` "text" or "ssml") with espeak-ng in the voice closest to
        Polly's `voice` and `language`; SpeechError when espeak-ng fails."""
        frames = await speech_frames(text, self.sender.codec, voice, language, text_type)
        self.sender.play(frames, token)

    def stop_playing(self) -> object | None:
        """Stop what plays (or the digits being sent) at once; the token it had."""
        return self.sender.stop()

    def send_digits(self, digits: str, tone_ms: int = DEFAULT_TONE_MS, token: object = None,
                    gap_ms: int = DEFAULT_GAP_MS) -> None:
        """SendDigits: RFC 4733 events on the telephone-event payload type (in-band tones when
        none was negotiated); `on_playback_done(token)` when the last digit is out. Raises
        `InvalidDigits` for characters outside 0-9 * # A-D and ','."""
        self.sender.send_digits(digits, tone_ms, token, gap_ms)

    def pause(self) -> None:
        """Hold: stop transmitting RTP (RTCP goes on); media keeps advancing with the clock."""
        self.sender.pause()

    def resume(self) -> None:
        """Transmit again after `pause`."""
        self.sender.resume()

    def start_recording(self, path: Path, track: str = BOTH) -> Recording:
        """Record INCOMING, OUTGOING or BOTH (two channels: incoming left, outgoing right) from
        now until `stop_recording` or `close`, into the WAV file `path` (created now, with
        its first seconds reserved: OSError when the disk cannot hold them)."""
        now = _monotonic()
        recording = Recording(path, track, now, self.sender.codec, self.sender.payload_type,
                              self.receiver.dtmf_payload_type, self.sender.dtmf_payload_type)
        file = WavFile(path, 2 if recording.track == BOTH else 1)
        try:
            file.reserve(HEADER_BYTES + int(RESERVE_AHEAD_S * file.bytes_per_second))
        except OSError:
            file.abandon()
            raise
        self._files[recording] = file
        self._next_reservation = min(self._next_reservation or now, now + RESERVATION_INTERVAL_S)
        self.recordings.append(recording)
        self._update_taps()
        return recording

    def stop_recording(self, recording: Recording) -> Path:
        """Stop one recording and write its WAV file; returns the path. OSError when the
        file cannot be written: it is left a true WAV of no samples."""
        recording.stop(_monotonic())
        if recording in self.recordings:
            self.recordings.remove(recording)
            self._update_taps()
        file = self._files.pop(recording, None)
        if file is not None:
            file.finish(recording.pcm())
        return recording.path

    def hear(self, other: "MediaSession") -> None:
        """Bridge one way: what `other` receives from its far end becomes this stream's standing
        audio, heard whenever no playback runs here (G.711 laws transcoded as needed). Lasts
        until `stop_hearing`, or until either session closes."""
        self.stop_hearing()
        feed = LiveFeed(self.sender.codec)
        other.feed(self, BridgeTap(other.sender.payload_type, other.sender.codec, feed))
        self.sender.set_standing(feed)
        self._hearing = other

    def stop_hearing(self) -> None:
        """End what `hear` started: this stream hears silence again when nothing plays."""
        if self._hearing is None:
            return
        other, self._hearing = self._hearing, None
        self.sender.set_standing(None)
        other.stop_feeding(self)

    def feed(self, listener: "MediaSession", tap: BridgeTap) -> None:
        """Pass what this session receives to `tap`, for `listener` (see `hear`)."""
        self._listeners[listener] = tap
        self._update_taps()

    def stop_feeding(self, listener: "MediaSession") -> None:
        if self._listeners.pop(listener, None) is not None:
            self._update_taps()

    def _update_taps(self) -> None:
        self._incoming_taps = [r.incoming for r in self.recordings if r.incoming is not None] \
            + list(self._listeners.values())
        self._outgoing_taps = [r.outgoing for r in self.recordings if r.outgoing is not None]

    def close(self) -> None:
        """Send RTCP BYE, finish the recordings and release the sockets (idempotent). Every
        step runs even when one fails (a recording that cannot be written on a full disk);
        the first failure is raised afterwards."""
        if self.closed:
            return
        self.closed = True
        with contextlib.ExitStack() as releases:  # runs every callback (last first), raises afterwards
            for sock in (self._rtcp_socket, self._rtp_socket):
                releases.callback(sock.close)
                releases.callback(self.engine.stop_reading, sock.fileno())
            for recording in list(self.recordings):
                releases.callback(self.stop_recording, recording)
            if self.remote is not None:
                releases.callback(lambda: self._send_rtcp(self.reporter.bye(_monotonic(), time.time())))
            for listener in list(self._listeners):
                releases.callback(listener.stop_hearing)
            releases.callback(self.stop_hearing)
            releases.callback(self.engine.release, self)


class MediaEngine:
    """Opens media sessions on `host` (RTP on an even port, RTCP on the next one, within
    `port_range` when given) and runs the shared clock while any session is started; started
    sessions are spread over the clock's `phases`. Every session's RTP crosses `impairment`
    when one is given."""

    def __init__(self, host: str = "127.0.0.1", port_range: tuple[int, int] | None = None,
                 phases: int = DEFAULT_PHASES, impairment: NetworkImpairment | None = None):
        self.host = host
        self.impairment = impairment
        self.port_range = port_range
        self.phases = phases
        self._sessions: set[MediaSession] = set()
        self._active: dict[MediaSession, int] = {}  # started sessions and their phase
        self._phases: list[dict[MediaSession, None]] = []
        self._clock: MediaClock | None = None
        self._timerfd: _TimerFd | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.late_ticks = 0  # whole periods skipped after stalls
        self._cursor = 0  # where the next RTP port search starts in port_range

    def open(self, payload_type: int, codec: str, dtmf_payload_type: int | None,
             on_playback_done: Callable[[object], None],
             on_digit: Callable[[DigitReceived], None],
             inband_dtmf: bool = False,
             on_recording_failed: Callable[[Recording, OSError], None] | None = None,
             srtp: SrtpContext | None = None) -> MediaSession:
        """Bind a new RTP/RTCP socket pair (on the running loop); OSError when no pair is
        free. `inband_dtmf` also detects DTMF tones in the audio; `srtp` protects the
        session's packets (SRTP/SRTCP)."""
        self._loop = asyncio.get_running_loop()
        sockets = self._bind_pair()
        session = MediaSession(
            self, sockets, RtpSender(payload_type, codec, dtmf_payload_type),
            RtpReceiver(dtmf_payload_type, payload_type, codec, inband_dtmf),
            on_playback_done, on_digit, on_recording_failed, srtp)
        self._loop.add_reader(sockets[0].fileno(), session.read_rtp)
        self._loop.add_reader(sockets[1].fileno(), session.read_rtcp)
        self._sessions.add(session)
        return session

    def _bind_pair(self) -> tuple[socket.socket, socket.socket]:
        if self.port_range is not None:
            # Round the range from where the last pair was taken, skipping ports held: no
            # rescan from the bottom per call, and a freed port rests before it is reused.
            lo, hi = self.port_range
            ports = list(range(lo + lo % 2, hi, 2))
            held = {s.local_port for s in self._sessions}
            start = self._cursor % max(1, len(ports))
            candidates = [p for p in ports[start:] + ports[:start] if p not in held]
        else:
            candidates = [0] * _PAIR_ATTEMPTS
        for port in candidates:
            pair = self._try_pair(port)
            if pair is not None:
                if self.port_range is not None:
                    self._cursor = (port - (self.port_range[0] + self.port_range[0] % 2)) // 2 + 1
                return pair
        where = f"in {self.port_range[0]}-{self.port_range[1]}" if self.port_range else "on the host"
        raise OSError(f"no free RTP/RTCP port pair {where}")

    def _try_pair(self, port: int) -> tuple[socket.socket, socket.socket] | None:
        """Bind RTP on even `port` and RTCP on `port` + 1; port 0 takes an ephemeral port and
        pairs it with its neighbour."""
        first = _udp_socket(self.host, port)
        if first is None:
            return None
        bound = first.getsockname()[1]
        other = _udp_socket(self.host, bound - 1 if bound % 2 else bound + 1)
        if other is None:
            first.close()
            return None
        return (other, first) if bound % 2 else (first, other)

    @property
    def session_count(self) -> int:
        return len(self._sessions)

    def activate(self, session: MediaSession) -> None:
        """Pace `session` from the next clock slot (the clock starts with its first session)."""
        if session in self._active:
            return
        if self._clock is None:
            self._clock = MediaClock(self._loop.time() + WAKE_UP_LEAD, phases=self.phases)
            self._phases = [{} for _ in range(self.phases)]
            self._start_waking()
        phase = min(range(self.phases), key=lambda p: len(self._phases[p]))
        self._phases[phase][session] = None
        self._active[session] = phase

    def release(self, session: MediaSession) -> None:
        """Forget a closed session."""
        self._sessions.discard(session)
        phase = self._active.pop(session, None)
        if phase is not None:
            del self._phases[phase][session]

    def _start_waking(self) -> None:
        """Wake at every slot: through a timerfd where there is one, else loop timers."""
        if self._timerfd is None:
            self._timerfd = _TimerFd.create()
        if self._timerfd is None:
            self._timer = self._loop.call_at(self._clock.next_deadline, self._on_clock)
        else:
            self._timerfd.arm(self._clock.start, self._clock.slot)
            self._loop.add_reader(self._timerfd.fd, self._on_clock)

    def _stop_waking(self) -> None:
        if self._timerfd is not None:
            self._loop.remove_reader(self._timerfd.fd)
            self._timerfd.disarm()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._clock = None

    def call_at(self, at: float, callback, *args) -> None:
        """Run `callback(*args)` at loop time `at` (a delayed datagram)."""
        self._loop.call_at(at, callback, *args)

    def stop_reading(self, fd: int) -> None:
        self._loop.remove_reader(fd)

    def tick_if_due(self) -> None:
        """Run the media clock now if its next slot is due (before reading packets)."""
        if self._clock is not None and self._loop.time() >= self._clock.next_deadline:
            self._on_clock()

    def _on_clock(self) -> None:
        if self._timerfd is not None:
            self._timerfd.clear()
        now = self._loop.time()
        slots, skipped = self._clock.due(now)
        if skipped:
            self.late_ticks += skipped
            for session in self._active:
                session.sender.skip(skipped)
        for slot in slots:
            for session in list(self._phases[slot % self.phases]):
                try:
                    session.tick(now)
                except Exception:
                    log.exception("media tick failed")
        if not self._active:
            self._stop_waking()
        elif self._timerfd is None:
            if self._timer is not None:  # called early by tick_if_due: one timer only
                self._timer.cancel()
            self._timer = self._loop.call_at(self._clock.next_deadline, self._on_clock)

    async def close(self) -> None:
        """Close every session (each one even when another fails), then the clock."""
        for session in list(self._sessions):
            try:
                session.close()
            except Exception:
                log.exception("closing a media session failed")
        if self._clock is not None:
            self._stop_waking()
        if self._timerfd is not None:
            self._timerfd.close()
            self._timerfd = None


class _TimerFd:
    """A Linux timerfd that fires at absolute CLOCK_MONOTONIC deadlines (the event loop's
    clock), so the loop wakes on time: epoll's own timeout is rounded up to whole ms."""

    _CLOCK_MONOTONIC, _TFD_NONBLOCK, _TFD_CLOEXEC, _TFD_TIMER_ABSTIME = 1, 0o4000, 0o2000000, 1
    _libc = None

    def __init__(self, fd: int):
        self.fd = fd

    @classmethod
    def create(cls) -> "_TimerFd | None":
        """A new timerfd, or None where there is none (not 64-bit Linux)."""
        if ctypes.sizeof(ctypes.c_long) != 8:  # the itimerspec layout below
            return None
        try:
            cls._libc = cls._libc or ctypes.CDLL(None, use_errno=True)
            fd = cls._libc.timerfd_create(cls._CLOCK_MONOTONIC, cls._TFD_NONBLOCK | cls._TFD_CLOEXEC)
        except (OSError, AttributeError):
            return None
        return cls(fd) if fd >= 0 else None

    def arm(self, first: float, interval: float) -> None:
        """Fire at `first` (monotonic seconds), then every `interval` seconds."""
        spec = (ctypes.c_int64 * 4)(*_timespec(interval), *_timespec(first))
        if self._libc.timerfd_settime(self.fd, self._TFD_TIMER_ABSTIME, spec, None) != 0:
            raise OSError(ctypes.get_errno(), "timerfd_settime failed")

    def disarm(self) -> None:
        self._libc.timerfd_settime(self.fd, 0, (ctypes.c_int64 * 4)(), None)

    def clear(self) -> None:
        try:
            os.read(self.fd, 8)
        except BlockingIOError:
            pass

    def close(self) -> None:
        os.close(self.fd)


def _timespec(seconds: float) -> tuple[int, int]:
    whole = int(seconds)
    return whole, int(round((seconds - whole) * 1e9))


def _udp_socket(host: str, port: int) -> socket.socket | None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        return None
    sock.setblocking(False)
    return sock
