"""Slow and idle clients cannot hold the stub's connections: SIP over TCP closes a connection
whose message does not arrive whole in time, or that is idle with no call on it; the API
closes a connection whose request head is late and refuses a late body."""
from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest

from api_backend import SMA_ID, LiveApi, ModelBackend
from conftest import wait_until
from harness.api.server import ApiSettings
from harness.testing.autoanswer import AutoAnswer
from harness.sip.transport import TcpSipTransport
from test_fuzz_sip import BASE, message

HOST = "127.0.0.1"


class TcpCore:
    """A TcpSipTransport answering calls as the stub does, on a loop of its own."""

    def __init__(self, message_timeout_s: float, idle_timeout_s: float):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.ua = AutoAnswer(self.loop.time)

        async def start():
            return await TcpSipTransport.listen(HOST, 0, self.ua, message_timeout_s=message_timeout_s,
                                                idle_timeout_s=idle_timeout_s)
        self.sip = asyncio.run_coroutine_threadsafe(start(), self.loop).result(5)
        self.ua.endpoint = self.sip.endpoint

    def connections(self) -> int:
        async def count():
            return len(self.sip._connections)
        return asyncio.run_coroutine_threadsafe(count(), self.loop).result(5)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.sip.close)
        time.sleep(0.05)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def core():
    c = TcpCore(message_timeout_s=0.5, idle_timeout_s=1.0)
    yield c
    c.close()


def closed_by_peer(sock: socket.socket, timeout: float) -> bool:
    sock.settimeout(timeout)
    try:
        while True:
            if not sock.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def test_partial_sip_messages_do_not_hold_connections(core):
    socks = []
    for n in range(50):
        s = socket.create_connection((HOST, core.sip.port))
        s.sendall(b"INVITE sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK-" +
                  str(n).encode() + b"\r\nX-Slow: " + b"x" * 60000)  # no end of headers, ever
        socks.append(s)
    assert wait_until(lambda: core.connections() == 50, 5)
    started = time.monotonic()
    assert all(closed_by_peer(s, 10) for s in socks)
    assert time.monotonic() - started < 10 and wait_until(lambda: core.connections() == 0, 5)
    assert core.sip.timed_out == 50 and core.sip.endpoint.buffered(("127.0.0.1", 1)) == 0
    for s in socks:
        s.close()


def test_a_message_trickled_in_too_slowly_is_cut_off(core):
    with socket.create_connection((HOST, core.sip.port)) as s:
        for ch in b"OPTIONS sip:a@127.0.0.1 SIP/2.0\r\n":
            try:
                s.sendall(bytes([ch]))
            except OSError:
                break
            time.sleep(0.05)
        assert closed_by_peer(s, 5)


def test_an_idle_connection_without_a_call_is_closed_one_with_a_call_stays(core):
    idle = socket.create_connection((HOST, core.sip.port))
    busy = socket.create_connection((HOST, core.sip.port))
    invite = message("INVITE sip:+14345550101@127.0.0.1 SIP/2.0",
                     BASE.format(n=1, cseq="1 INVITE").replace("SIP/2.0/UDP", "SIP/2.0/TCP")
                     + "Content-Type: application/sdp\r\n",
                     b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                     b"m=audio 4000 RTP/AVP 0\r\n")
    busy.sendall(invite)
    assert closed_by_peer(idle, 5)
    assert not closed_by_peer(busy, 2.5)  # its call is up (answered, waiting for the ACK)
    idle.close()
    busy.close()


@pytest.fixture
def slow_api():
    with LiveApi(ModelBackend(), ApiSettings(idle_timeout_s=0.5)) as api:
        yield int(api.url.rsplit(":", 1)[1])


def test_an_api_request_head_that_never_ends_is_closed(slow_api):
    socks = [socket.create_connection((HOST, slow_api)) for _ in range(20)]
    for s in socks:
        s.sendall(b"GET /sip-media-applications HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    assert all(closed_by_peer(s, 10) for s in socks)
    for s in socks:
        s.close()
    with socket.create_connection((HOST, slow_api)) as silent:
        assert closed_by_peer(silent, 10)  # connected and said nothing


def test_an_api_body_that_never_arrives_is_refused(slow_api):
    with socket.create_connection((HOST, slow_api)) as s:
        s.sendall(f"POST /sip-media-applications/{SMA_ID}/calls/t HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{".encode())
        s.settimeout(10)
        reply = s.recv(65536)
    assert reply.startswith(b"HTTP/1.1 400") and b"did not arrive within 0.5 s" in reply
