"""The asyncio edge of the SIP core: a UDP socket feeding one `SipEndpoint` and its timers."""
from __future__ import annotations

import asyncio
from collections.abc import Callable

from .endpoint import SipEndpoint


class UdpSipTransport(asyncio.DatagramProtocol):
    """Drives `endpoint` from a UDP socket; hands its events to `on_event`."""

    def __init__(self, endpoint: SipEndpoint, on_event: Callable[[object], None]):
        self.endpoint, self.on_event = endpoint, on_event
        self.transport: asyncio.DatagramTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_event_loop()

    @classmethod
    async def listen(cls, host: str, port: int, on_event: Callable[[object], None]
                     ) -> "UdpSipTransport":
        """Bind `host:port` (0 = any free port) and serve."""
        loop = asyncio.get_running_loop()
        holder: dict = {}

        def factory():
            holder["p"] = cls(SipEndpoint(host, port), on_event)
            return holder["p"]

        transport, proto = await loop.create_datagram_endpoint(factory, local_addr=(host, port))
        proto.endpoint.port = transport.get_extra_info("sockname")[1]
        return proto

    @property
    def port(self) -> int:
        return self.endpoint.port

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        self.endpoint.receive(data, addr, self._loop.time())
        self.flush()

    def flush(self) -> None:
        """Send what the core produced, deliver its events, and re-arm its timer."""
        while True:
            transmits, events = self.endpoint.take_transmits(), self.endpoint.take_events()
            if not transmits and not events:
                break
            for tx in transmits:
                if self.transport is not None:
                    self.transport.sendto(tx.data, tx.addr)
            for event in events:
                self.on_event(event)
        self._arm()

    def _arm(self) -> None:
        deadline = self.endpoint.next_deadline()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if deadline is not None:
            self._timer = self._loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self.endpoint.handle_timers(self._loop.time())
        self.flush()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.transport is not None:
            self.transport.close()
