"""The asyncio edge of the SIP core: a UDP socket or a TCP listener feeding one `SipEndpoint`,
delivering its events and running its timers. The only I/O in `harness.sip`.

A UDP transport given a `harness.netem.NetworkImpairment` passes every datagram through it,
outgoing ones before `sendto` and incoming ones on receipt; delayed ones go out (or in) from
a loop timer. Without one (the default) nothing changes.
"""
from __future__ import annotations

import abc
import asyncio
import socket
import ssl
from collections.abc import Callable

from ..netem import INCOMING, OUTGOING, SIP, NetworkImpairment
from .endpoint import SipEndpoint
from .events import Address, Transmit

OnEvent = Callable[[object], None]


class _SipTransport(abc.ABC):
    """What both transports share: flushing the core's output and arming its timer."""

    endpoint: SipEndpoint

    def __init__(self, endpoint: SipEndpoint, on_event: OnEvent):
        self.endpoint, self.on_event = endpoint, on_event
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None

    @property
    def port(self) -> int:
        return self.endpoint.port

    def _received(self, data: bytes, addr: Address) -> None:
        self.endpoint.receive(data, addr, self._loop.time())
        self.flush()

    def flush(self) -> None:
        """Send what the core produced, deliver its events, and re-arm its timer."""
        while True:
            transmits, events = self.endpoint.take_transmits(), self.endpoint.take_events()
            if not transmits and not events:
                break
            for tx in transmits:
                self._send(tx)
            for event in events:
                self.on_event(event)
        self._arm()

    @abc.abstractmethod
    def _send(self, tx: Transmit) -> None:
        """Put one message on the wire (or close a connection when `tx.close`)."""

    def _arm(self) -> None:
        deadline = self.endpoint.next_deadline()
        if self._timer is not None:
            if deadline is not None and self._timer.when() == deadline:
                return
            self._timer.cancel()
            self._timer = None
        if deadline is not None:
            self._timer = self._loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self.endpoint.handle_timers(self._loop.time())
        self.flush()

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class UdpSipTransport(_SipTransport, asyncio.DatagramProtocol):
    """Drives an endpoint from one UDP socket; hands its events to `on_event`; passes its
    datagrams through `impairment` when given."""

    def __init__(self, endpoint: SipEndpoint, on_event: OnEvent,
                 impairment: NetworkImpairment | None = None):
        super().__init__(endpoint, on_event)
        self.transport: asyncio.DatagramTransport | None = None
        self.impairment = impairment
        self._closed = False

    @classmethod
    async def listen(cls, host: str, port: int, on_event: OnEvent,
                     impairment: NetworkImpairment | None = None, **options
                     ) -> "UdpSipTransport":
        """Bind `host:port` (0 = any free port) and serve; `options` go to `SipEndpoint`."""
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.bind((host, port))
        except OSError:
            sock.close()
            raise
        _enlarge_receive_buffer(sock)
        endpoint = SipEndpoint(host, sock.getsockname()[1], "UDP", **options)
        proto = cls(endpoint, on_event, impairment)
        proto.connection_made(_BatchedDatagrams(sock, loop, proto.datagram_received))
        return proto

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        if self.impairment is None:
            self._received(data, addr[:2])
            return
        self.impairment.route(INCOMING, SIP, data, self._loop.time(),
                              lambda d: self._received(d, addr[:2]),
                              lambda at, d: self._loop.call_at(at, self._received_late, d, addr[:2]))

    def _received_late(self, data: bytes, addr: Address) -> None:
        if not self._closed:
            self._received(data, addr)

    def _send(self, tx: Transmit) -> None:
        if self.transport is None or not tx.data:
            return
        if self.impairment is None:
            self.transport.sendto(tx.data, tx.addr)
            return
        self.impairment.route(OUTGOING, SIP, tx.data, self._loop.time(),
                              lambda d: self.transport.sendto(d, tx.addr),
                              lambda at, d: self._loop.call_at(at, self._send_late, d, tx.addr))

    def _send_late(self, data: bytes, addr: Address) -> None:
        if not self._closed:
            self.transport.sendto(data, addr)

    def close(self) -> None:
        self._closed = True
        self._stop_timer()
        if self.transport is not None:
            self.transport.close()


#: A message must arrive whole within this many seconds of its first byte (64 x T1: a request
#: slower than that has outlived its transaction), else its connection is closed.
MESSAGE_TIMEOUT_S = 32.0
#: A connection that carries no call and sent nothing for this long is closed.
IDLE_TIMEOUT_S = 60.0


class TcpSipTransport(_SipTransport):
    """Drives an endpoint from a TCP listener and the connections it accepts or opens.

    Messages for an address go over the connection with that address, opened on demand
    (requests of calls we place); the core frames each connection's bytes itself. A
    connection holding part of a message for `message_timeout_s`, or idle for
    `idle_timeout_s` while no call uses it, is closed (`timed_out` counts them).
    """

    NAME = "TCP"
    server_ssl: ssl.SSLContext | None = None
    client_ssl: ssl.SSLContext | None = None

    def __init__(self, endpoint: SipEndpoint, on_event: OnEvent,
                 message_timeout_s: float = MESSAGE_TIMEOUT_S,
                 idle_timeout_s: float = IDLE_TIMEOUT_S):
        super().__init__(endpoint, on_event)
        self.server: asyncio.Server | None = None
        self.message_timeout_s, self.idle_timeout_s = message_timeout_s, idle_timeout_s
        self.timed_out = 0
        self._connections: dict[Address, _TcpConnection] = {}
        self._pending: dict[Address, list[Transmit]] = {}
        self._sweeper: asyncio.TimerHandle | None = None

    @classmethod
    async def listen(cls, host: str, port: int, on_event: OnEvent,
                     message_timeout_s: float = MESSAGE_TIMEOUT_S,
                     idle_timeout_s: float = IDLE_TIMEOUT_S, **options) -> "TcpSipTransport":
        """Listen on `host:port` (0 = any free port) and serve; `options` go to `SipEndpoint`."""
        endpoint = SipEndpoint(host, port, cls.NAME, **options)
        transport = cls(endpoint, on_event, message_timeout_s, idle_timeout_s)
        await transport._serve(host, port)
        return transport

    async def _serve(self, host: str, port: int) -> None:
        self.server = await self._loop.create_server(
            lambda: _TcpConnection(self), host, port, ssl=self.server_ssl)
        self.endpoint.port = self.server.sockets[0].getsockname()[1]

    def _send(self, tx: Transmit) -> None:
        conn = self._connections.get(tx.addr)
        if conn is not None:
            conn.send(tx)
        elif tx.data:
            queue = self._pending.setdefault(tx.addr, [])
            queue.append(tx)
            if len(queue) == 1:
                self._loop.create_task(self._connect(tx.addr))

    async def _connect(self, addr: Address) -> None:
        try:
            await self._loop.create_connection(lambda: _TcpConnection(self, addr), *addr,
                                               ssl=self.client_ssl)
        except (OSError, ssl.SSLError):
            self._pending.pop(addr, None)  # the transaction's timer will report the failure

    def _opened(self, conn: "_TcpConnection") -> None:
        self._connections[conn.peer] = conn
        for tx in self._pending.pop(conn.peer, []):
            conn.send(tx)
        if self._sweeper is None:
            self._sweep_later()

    def _closed(self, conn: "_TcpConnection") -> None:
        if self._connections.get(conn.peer) is conn:
            del self._connections[conn.peer]
        self.endpoint.stream_closed(conn.peer)

    def _stream_received(self, conn: "_TcpConnection", data: bytes) -> None:
        now = self._loop.time()
        conn.last_bytes = now
        self._received(data, conn.peer)
        if not self.endpoint.buffered(conn.peer):
            conn.partial_since = None
        elif conn.partial_since is None:
            conn.partial_since = now

    def _sweep_later(self) -> None:
        every = max(0.05, min(self.message_timeout_s, self.idle_timeout_s) / 4)
        self._sweeper = self._loop.call_later(every, self._sweep)

    def _sweep(self) -> None:
        """Close the connections whose message is overdue, or that are idle and unused."""
        self._sweeper = None
        now = self._loop.time()
        for conn in list(self._connections.values()):
            overdue = conn.partial_since is not None and \
                now - conn.partial_since > self.message_timeout_s
            idle = now - conn.last_bytes > self.idle_timeout_s and \
                not self.endpoint.serves(conn.peer)
            if overdue or idle:
                self.timed_out += 1
                conn.transport.close()
        if self._connections:
            self._sweep_later()

    def close(self) -> None:
        self._stop_timer()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        if self.server is not None:
            self.server.close()
        for conn in list(self._connections.values()):
            conn.transport.close()


class TlsSipTransport(TcpSipTransport):
    """SIP over TLS (RFC 3261 §26.2, port 5061 by convention): the TCP transport with TLS
    on every connection it accepts (`server_ssl`: our certificate) or opens (`client_ssl`)."""

    NAME = "TLS"

    @classmethod
    async def listen_tls(cls, host: str, port: int, on_event: OnEvent,
                         server_ssl: ssl.SSLContext, client_ssl: ssl.SSLContext | None = None,
                         **options) -> "TlsSipTransport":
        """Listen with TLS on `host:port` (0 = any free port)."""
        endpoint = SipEndpoint(host, port, cls.NAME, **options)
        transport = cls(endpoint, on_event)
        transport.server_ssl = server_ssl
        transport.client_ssl = client_ssl or ssl.create_default_context()
        await transport._serve(host, port)
        return transport


def server_context(certificate: str, private_key: str) -> ssl.SSLContext:
    """A TLS server context with a certificate chain (PEM) and its key; TLS 1.2 or newer."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certificate, private_key)
    return context


class _TcpConnection(asyncio.Protocol):
    """One TCP connection: its bytes go to the endpoint under the peer's address."""

    def __init__(self, owner: TcpSipTransport, peer: Address | None = None):
        self.owner, self.peer = owner, peer
        self.transport: asyncio.Transport | None = None
        self.last_bytes = owner._loop.time()
        self.partial_since: float | None = None  # when the message now buffered began

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.peer = self.peer or transport.get_extra_info("peername")[:2]
        self.owner._opened(self)

    def data_received(self, data: bytes) -> None:
        self.owner._stream_received(self, data)

    def connection_lost(self, exc) -> None:
        self.owner._closed(self)

    def send(self, tx: Transmit) -> None:
        if tx.data:
            self.transport.write(tx.data)
        if tx.close:
            self.transport.close()


MAX_READS = 64


class _BatchedDatagrams:
    """A UDP socket read in batches of up to MAX_READS datagrams per wake-up (an asyncio
    datagram transport reads one per loop pass, which starves SIP behind hundreds of RTP
    sockets); the `sendto`/`close` of a datagram transport."""

    def __init__(self, sock: socket.socket, loop: asyncio.AbstractEventLoop, on_datagram):
        self.sock, self.loop, self.on_datagram = sock, loop, on_datagram
        self.send_errors = 0
        loop.add_reader(sock.fileno(), self._read)

    def _read(self) -> None:
        for _ in range(MAX_READS):
            try:
                data, addr = self.sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # an ICMP error reported on the socket: nothing to read
                continue
            self.on_datagram(data, addr)

    def sendto(self, data: bytes, addr: Address) -> None:
        try:
            self.sock.sendto(data, addr)
        except OSError:  # buffer full or unreachable: a lost datagram, as on the wire
            self.send_errors += 1

    def get_extra_info(self, name: str):
        return {"socket": self.sock, "sockname": self.sock.getsockname()}.get(name)

    def close(self) -> None:
        if self.sock.fileno() >= 0:
            self.loop.remove_reader(self.sock.fileno())
            self.sock.close()


RECEIVE_BUFFER_BYTES = 8 * 1024 * 1024
_SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)


def _enlarge_receive_buffer(sock) -> None:
    """Room for bursts of SIP behind hundreds of RTP sockets (measured: the default buffer
    dropped thousands of datagrams at 200 call setups/s). Beyond rmem_max needs root."""
    for option in (_SO_RCVBUFFORCE, socket.SO_RCVBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, RECEIVE_BUFFER_BYTES)
            return
        except OSError:
            continue
