"""The stub's media edge: UDP sockets for RTP and RTCP (RTP port + 1), and the one media clock
that paces every stream.

The clock (`MediaClock`) wakes the event loop through a timerfd at absolute deadlines (loop
timers where there is no timerfd); at each slot every started session of that slot's phase
sends one packet straight from its socket. Sockets are read with `add_reader`, draining a few
datagrams per wake-up. Everything that decides what to send or what arrived means lives in the
sans-IO `RtpSender`, `RtpReceiver`, `RtcpReporter` and `Recording`; this module only moves
bytes, reads the time and writes recordings.

An engine given a `harness.netem.NetworkImpairment` passes every RTP packet through it,
outgoing ones before `sendto` and incoming ones after `recv` (RTCP is not impaired); delayed
ones leave (or arrive) from a loop timer. Without one (the default) nothing changes.
"""
from __future__ import annotations

import asyncio
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
from .recording import BOTH, Recording
from .rtcp import RtcpError
from .sources import write_wav
from .srtp import SrtpContext
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
RECV_SIZE = 2048


class MediaSession:
    """One leg's media: an RTP and an RTCP socket, a sender, a receiver and a reporter.

    `on_playback_done(token)` runs when a playback or a digit string ends by itself;
    `on_digit(DigitReceived)` when the far end finishes a DTMF digit. With `srtp`, every
    packet is protected on its way out and unprotected on its way in (SRTP and SRTCP);
    everything between (sender, receiver, taps, recordings) sees clear RTP.
    """

    def __init__(self, engine: "MediaEngine", sockets: tuple[socket.socket, socket.socket],
                 sender: RtpSender, receiver: RtpReceiver,
                 on_playback_done: Callable[[object], None],
                 on_digit: Callable[[DigitReceived], None], srtp: SrtpContext | None = None):
        self.engine, self.sender, self.receiver = engine, sender, receiver
        self._rtp_socket, self._rtcp_socket = sockets
        self._sendto = self._rtp_socket.sendto
        self.local_port = self._rtp_socket.getsockname()[1]
        self.rtcp_port = self._rtcp_socket.getsockname()[1]
        self.reporter = RtcpReporter(sender, receiver.stats, f"sma-stub-{secrets.token_hex(6)}@{engine.host}")
        self.on_playback_done, self.on_digit = on_playback_done, on_digit
        self.impairment = engine.impairment
        self.srtp = srtp
        self.remote: Address | None = None
        self.rtcp_remote: Address | None = None
        self.recordings: list[Recording] = []
        self._incoming_taps: list = []
        self._bridge_taps: list = []
        self._hearing: tuple[MediaSession, BridgeTap] | None = None
        self._heard_by: set[MediaSession] = set()
        self._outgoing_taps: list = []
        self.send_errors = 0
        self.rtcp_invalid = 0
        self.closed = False

    def _read_rtp(self) -> None:
        """Read what the RTP socket holds (at most MAX_READS), stamped with one arrival time.
        A clock tick that is due runs first: reads must not push the sending late."""
        self.engine._tick_if_due()
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
                for at, packet in self.impairment.decide(INCOMING, RTP, data, now):
                    if at <= now:
                        self._rtp_received(packet, now)
                    else:
                        self.engine._loop.call_at(at, self._rtp_received_late, packet)

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

    def _read_rtcp(self) -> None:
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
        self.engine._activate(self)

    def tick(self, now: float) -> None:
        """Run one clock tick: send this tick's packet, report finished media, RTCP, DTMF."""
        if self.closed:
            return
        packet = self.sender.tick()
        if packet is not None:
            if self.impairment is None:
                self._send_rtp(packet)
            else:
                for at, datagram in self.impairment.decide(OUTGOING, RTP, packet, now):
                    if at <= now:
                        self._send_rtp(datagram)
                    else:
                        self.engine._loop.call_at(at, self._send_rtp_late, datagram)
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
        now until `stop_recording` or `close`, into the WAV file `path`."""
        recording = Recording(path, track, _monotonic(), self.sender.codec, self.sender.payload_type,
                              self.receiver.dtmf_payload_type, self.sender.dtmf_payload_type)
        self.recordings.append(recording)
        self._update_taps()
        return recording

    def stop_recording(self, recording: Recording) -> Path:
        """Stop one recording and write its WAV file; returns the path."""
        recording.stop(_monotonic())
        self.recordings.remove(recording)
        self._update_taps()
        write_wav(recording.path, recording.pcm())
        return recording.path

    def hear(self, other: "MediaSession") -> None:
        """Bridge one way: what `other` receives from its far end becomes this stream's standing
        audio, heard whenever no playback runs here (G.711 laws transcoded as needed). Lasts
        until `stop_hearing`, or until either session closes."""
        self.stop_hearing()
        feed = LiveFeed(self.sender.codec)
        tap = BridgeTap(other.sender.payload_type, other.sender.codec, feed)
        other._bridge_taps.append(tap)
        other._update_taps()
        other._heard_by.add(self)
        self.sender.set_standing(feed)
        self._hearing = (other, tap)

    def stop_hearing(self) -> None:
        """End what `hear` started: this stream hears silence again when nothing plays."""
        if self._hearing is None:
            return
        other, tap = self._hearing
        self._hearing = None
        self.sender.set_standing(None)
        if tap in other._bridge_taps:
            other._bridge_taps.remove(tap)
            other._update_taps()
        other._heard_by.discard(self)

    def _update_taps(self) -> None:
        self._incoming_taps = [r.incoming for r in self.recordings if r.incoming is not None] \
            + self._bridge_taps
        self._outgoing_taps = [r.outgoing for r in self.recordings if r.outgoing is not None]

    def close(self) -> None:
        """Send RTCP BYE, finish the recordings and release the sockets (idempotent)."""
        if self.closed:
            return
        self.closed = True
        self.engine._remove(self)
        self.stop_hearing()
        for peer in list(self._heard_by):
            peer.stop_hearing()
        if self.remote is not None:
            self._send_rtcp(self.reporter.bye(_monotonic(), time.time()))
        for recording in list(self.recordings):
            self.stop_recording(recording)
        for sock in (self._rtp_socket, self._rtcp_socket):
            self.engine._loop.remove_reader(sock.fileno())
            sock.close()


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

    async def open(self, payload_type: int, codec: str, dtmf_payload_type: int | None,
                   on_playback_done: Callable[[object], None],
                   on_digit: Callable[[DigitReceived], None],
                   inband_dtmf: bool = False, srtp: SrtpContext | None = None) -> MediaSession:
        """Bind a new RTP/RTCP socket pair. `inband_dtmf` also detects DTMF tones in the audio;
        `srtp` protects the session's packets (SRTP/SRTCP)."""
        self._loop = asyncio.get_running_loop()
        sockets = self._bind_pair()
        session = MediaSession(
            self, sockets, RtpSender(payload_type, codec, dtmf_payload_type),
            RtpReceiver(dtmf_payload_type, payload_type, codec, inband_dtmf),
            on_playback_done, on_digit, srtp)
        self._loop.add_reader(sockets[0].fileno(), session._read_rtp)
        self._loop.add_reader(sockets[1].fileno(), session._read_rtcp)
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

    def _activate(self, session: MediaSession) -> None:
        if session in self._active:
            return
        if self._clock is None:
            self._clock = MediaClock(self._loop.time() + WAKE_UP_LEAD, phases=self.phases)
            self._phases = [{} for _ in range(self.phases)]
            self._start_waking()
        phase = min(range(self.phases), key=lambda p: len(self._phases[p]))
        self._phases[phase][session] = None
        self._active[session] = phase

    def _remove(self, session: MediaSession) -> None:
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

    def _tick_if_due(self) -> None:
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
            if self._timer is not None:  # called early by _tick_if_due: one timer only
                self._timer.cancel()
            self._timer = self._loop.call_at(self._clock.next_deadline, self._on_clock)

    async def close(self) -> None:
        for session in list(self._sessions):
            session.close()
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
