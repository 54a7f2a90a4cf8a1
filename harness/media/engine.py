"""The stub's media edge: UDP sockets for RTP and RTCP (RTP port + 1), and the one media clock
that paces every stream.

The clock is one timer on the event loop at absolute deadlines (`MediaClock`); each tick sends
one packet per started session straight from its socket. Everything that decides what to send
or what arrived means lives in the sans-IO `RtpSender`, `RtpReceiver`, `RtcpReporter` and
`Recording`; this module only moves bytes, reads the time and writes recordings.
"""
from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import time
from collections.abc import Callable
from pathlib import Path

from .clock import MediaClock
from .dtmf import DEFAULT_GAP_MS, DEFAULT_TONE_MS, DigitReceived
from .recording import BOTH, Recording
from .rtcp import RtcpError
from .sources import write_wav
from .stream import RtcpReporter, RtpReceiver, RtpSender

log = logging.getLogger(__name__)
Address = tuple[str, int]
_monotonic = time.monotonic  # the default event loop's clock
_PAIR_ATTEMPTS = 64
#: The loop timer fires this early; the clock sleeps the rest. epoll rounds its timeout up to
#: whole milliseconds, which alone would make intervals wander by up to 1 ms.
WAKE_EARLY = 0.0015
_RTCP_TYPES = range(192, 224)  # second octet of RTCP packets multiplexed on the RTP port


class _RtcpProtocol(asyncio.DatagramProtocol):
    def __init__(self, session: "MediaSession"):
        self.session = session

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.session._rtcp_received(data)


class MediaSession(asyncio.DatagramProtocol):
    """One leg's media: an RTP and an RTCP socket, a sender, a receiver and a reporter.

    `on_playback_done(token)` runs when a playback or a digit string ends by itself;
    `on_digit(DigitReceived)` when the far end finishes a DTMF digit.
    """

    def __init__(self, engine: "MediaEngine", sockets: tuple[socket.socket, socket.socket],
                 sender: RtpSender, receiver: RtpReceiver,
                 on_playback_done: Callable[[object], None],
                 on_digit: Callable[[DigitReceived], None]):
        self.engine, self.sender, self.receiver = engine, sender, receiver
        self._rtp_socket, self._rtcp_socket = sockets
        self._sendto = self._rtp_socket.sendto
        self.reporter = RtcpReporter(sender, receiver.stats, f"sma-stub-{secrets.token_hex(6)}@{engine.host}")
        self.on_playback_done, self.on_digit = on_playback_done, on_digit
        self.remote: Address | None = None
        self.rtcp_remote: Address | None = None
        self.transport: asyncio.DatagramTransport | None = None
        self._rtcp_transport: asyncio.DatagramTransport | None = None
        self.recordings: list[Recording] = []
        self._incoming_taps: list = []
        self._outgoing_taps: list = []
        self.send_errors = 0
        self.rtcp_invalid = 0
        self.closed = False

    @property
    def local_port(self) -> int:
        return self._rtp_socket.getsockname()[1]

    @property
    def rtcp_port(self) -> int:
        return self._rtcp_socket.getsockname()[1]

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Address) -> None:
        if len(data) > 1 and data[1] in _RTCP_TYPES:
            self._rtcp_received(data)
            return
        now = _monotonic()
        digits = self.receiver.receive(data, now)
        for track in self._incoming_taps:
            track.add(data, now)
        for digit in digits:
            self.on_digit(digit)

    def _rtcp_received(self, data: bytes) -> None:
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
        packet = self.sender.tick()
        if packet is not None:
            try:
                self._sendto(packet, self.remote)
            except OSError:  # socket buffer full or the far end unreachable: a lost packet
                self.send_errors += 1
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

    def _send_rtcp(self, data: bytes) -> None:
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

    def _update_taps(self) -> None:
        self._incoming_taps = [r.incoming for r in self.recordings if r.incoming is not None]
        self._outgoing_taps = [r.outgoing for r in self.recordings if r.outgoing is not None]

    def close(self) -> None:
        """Send RTCP BYE, finish the recordings and release the sockets (idempotent)."""
        if self.closed:
            return
        self.closed = True
        self.engine._remove(self)
        if self.remote is not None:
            self._send_rtcp(self.reporter.bye(_monotonic(), time.time()))
        for recording in list(self.recordings):
            self.stop_recording(recording)
        for transport in (self.transport, self._rtcp_transport):
            if transport is not None:
                transport.close()


class MediaEngine:
    """Opens media sessions on `host` (RTP on an even port, RTCP on the next one, within
    `port_range` when given) and runs the shared clock while any session is started."""

    def __init__(self, host: str = "127.0.0.1", port_range: tuple[int, int] | None = None):
        self.host = host
        self.port_range = port_range
        self._sessions: set[MediaSession] = set()
        self._active: dict[MediaSession, None] = {}  # started sessions, in start order
        self._clock: MediaClock | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.late_ticks = 0

    async def open(self, payload_type: int, codec: str, dtmf_payload_type: int | None,
                   on_playback_done: Callable[[object], None],
                   on_digit: Callable[[DigitReceived], None],
                   inband_dtmf: bool = False) -> MediaSession:
        """Bind a new RTP/RTCP socket pair. `inband_dtmf` also detects DTMF tones in the audio."""
        loop = asyncio.get_running_loop()
        sockets = self._bind_pair()
        session = MediaSession(
            self, sockets, RtpSender(payload_type, codec, dtmf_payload_type),
            RtpReceiver(dtmf_payload_type, payload_type, codec, inband_dtmf),
            on_playback_done, on_digit)
        try:
            await loop.create_datagram_endpoint(lambda: session, sock=sockets[0])
            session._rtcp_transport, _ = await loop.create_datagram_endpoint(
                lambda: _RtcpProtocol(session), sock=sockets[1])
        except BaseException:
            session.close()
            for sock in sockets:
                sock.close()
            raise
        self._sessions.add(session)
        return session

    def _bind_pair(self) -> tuple[socket.socket, socket.socket]:
        if self.port_range is not None:
            lo, hi = self.port_range
            candidates = range(lo + lo % 2, hi, 2)
        else:
            candidates = [0] * _PAIR_ATTEMPTS
        for port in candidates:
            pair = self._try_pair(port)
            if pair is not None:
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
        self._active[session] = None
        if self._timer is None:
            loop = asyncio.get_running_loop()
            self._clock = MediaClock(loop.time())
            self._timer = loop.call_at(self._clock.next_deadline - WAKE_EARLY, self._on_clock)

    def _remove(self, session: MediaSession) -> None:
        self._sessions.discard(session)
        self._active.pop(session, None)

    def _on_clock(self) -> None:
        loop = asyncio.get_running_loop()
        wait = self._clock.next_deadline - loop.time()
        if wait > 0:
            time.sleep(wait)  # the last stretch to the deadline, finer than epoll's milliseconds
        now = loop.time()
        run, skipped = self._clock.due(now)
        active = list(self._active)
        if active:
            self._timer = loop.call_at(self._clock.next_deadline - WAKE_EARLY, self._on_clock)
        else:
            self._timer = self._clock = None
        if skipped:
            self.late_ticks += skipped
            for session in active:
                session.sender.skip(skipped)
        for _ in range(run):
            for session in active:
                if session.closed:
                    continue
                try:
                    session.tick(now)
                except Exception:
                    log.exception("media tick failed")

    async def close(self) -> None:
        for session in list(self._sessions):
            session.close()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = self._clock = None


def _udp_socket(host: str, port: int) -> socket.socket | None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        return None
    sock.setblocking(False)
    return sock
