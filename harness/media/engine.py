"""The stub's media edge: UDP sockets for RTP and the one media clock that paces every stream.

The clock ticks every 20 ms on absolute deadlines (start + n x 20 ms), so streams never drift,
and each tick sends one packet per open session. Everything that decides what to send lives in
the sans-IO `RtpSender`/`RtpReceiver`.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable

from .stream import DigitReceived, RtpReceiver, RtpSender

PTIME = 0.020
Address = tuple[str, int]


class MediaSession(asyncio.DatagramProtocol):
    """One leg's RTP: a bound UDP socket, a sender and a receiver.

    `on_playback_done(token)` runs when a playback ends by itself; `on_digit(DigitReceived)`
    when the far end sends a DTMF digit.
    """

    def __init__(self, engine: "MediaEngine", sender: RtpSender, receiver: RtpReceiver,
                 on_playback_done: Callable[[object], None],
                 on_digit: Callable[[DigitReceived], None]):
        self.engine, self.sender, self.receiver = engine, sender, receiver
        self.on_playback_done, self.on_digit = on_playback_done, on_digit
        self.remote: Address | None = None
        self.transport: asyncio.DatagramTransport | None = None
        self.sending = False

    @property
    def local_port(self) -> int:
        return self.transport.get_extra_info("sockname")[1]

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Address) -> None:
        digit = self.receiver.receive(data)
        if digit is not None:
            self.on_digit(digit)

    def start(self, remote: Address) -> None:
        """Start sending to `remote` from the next clock tick."""
        self.remote, self.sending = remote, True
        self.engine._ensure_clock()

    def tick(self) -> None:
        if not self.sending or self.transport is None:
            return
        packet, finished = self.sender.tick()
        self.transport.sendto(packet, self.remote)
        if finished is not None:
            self.on_playback_done(finished)

    def close(self) -> None:
        """Stop sending and release the socket."""
        self.sending = False
        self.engine._sessions.discard(self)
        if self.transport is not None:
            self.transport.close()


class MediaEngine:
    """Opens media sessions on `host` and runs the shared clock while any session exists."""

    def __init__(self, host: str = "127.0.0.1", port_range: tuple[int, int] | None = None):
        self.host = host
        self.port_range = port_range
        self._sessions: set[MediaSession] = set()
        self._clock: asyncio.Task | None = None
        self.late_ticks = 0

    async def open(self, payload_type: int, codec: str, dtmf_payload_type: int | None,
                   on_playback_done: Callable[[object], None],
                   on_digit: Callable[[DigitReceived], None]) -> MediaSession:
        """Bind a new RTP socket (even port when a range is configured)."""
        loop = asyncio.get_running_loop()
        factory = lambda: MediaSession(self, RtpSender(payload_type, codec),  # noqa: E731
                                       RtpReceiver(dtmf_payload_type), on_playback_done, on_digit)
        if self.port_range is None:
            _, session = await loop.create_datagram_endpoint(factory, local_addr=(self.host, 0))
        else:
            session = await self._open_in_range(loop, factory)
        self._sessions.add(session)
        return session

    async def _open_in_range(self, loop, factory) -> MediaSession:
        lo, hi = self.port_range
        for port in range(lo + lo % 2, hi, 2):
            try:
                _, session = await loop.create_datagram_endpoint(factory, local_addr=(self.host, port))
                return session
            except OSError:
                continue
        raise OSError(f"no free RTP port in {lo}-{hi}")

    @property
    def session_count(self) -> int:
        return len(self._sessions)

    def _ensure_clock(self) -> None:
        if self._clock is None or self._clock.done():
            self._clock = asyncio.get_running_loop().create_task(self._run_clock())

    async def _run_clock(self) -> None:
        loop = asyncio.get_running_loop()
        start, n = loop.time(), 0
        while self._sessions:
            n += 1
            delay = start + n * PTIME - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.2:  # fell far behind (machine stalled): resynchronise, don't burst
                self.late_ticks += 1
                start, n = loop.time(), 0
            for session in list(self._sessions):
                session.tick()

    async def close(self) -> None:
        for session in list(self._sessions):
            session.close()
        if self._clock is not None:
            self._clock.cancel()
            try:
                await self._clock
            except asyncio.CancelledError:
                pass
