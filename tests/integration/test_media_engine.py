"""The media engine on real loopback sockets: two sessions talking to each other, RTCP, ports,
recording files, hold, and tshark's verdict on the streams it sends."""
from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import wave

import numpy as np
import pytest

from conftest import require_tool
from harness.media.dtmf import ToneDetector
from harness.media.transport import MediaEngine
from harness.media.rtcp import SenderReport, parse_compound
from harness.media.rtp import RtpPacket
from harness.media.sources import encode_frames, tone

HOST = "127.0.0.1"
TONE = encode_frames(tone(440, 0.3), "PCMU")  # 15 frames


async def wait_for(predicate, timeout: float = 5.0) -> bool:
    """Poll on the loop until `predicate()` holds; generous bounds for a loaded machine."""
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return True
        await asyncio.sleep(0.02)
    return bool(predicate())


class Leg:
    """A session plus what its callbacks reported."""

    def __init__(self):
        self.done, self.digits = [], []
        self.session = None

    async def open(self, engine: MediaEngine, **kw) -> "Leg":
        self.session = engine.open(0, "PCMU", 101, on_playback_done=self.done.append,
                                   on_digit=self.digits.append, **kw)
        return self


async def pair(engine: MediaEngine, **kw) -> tuple[Leg, Leg]:
    a, b = await Leg().open(engine), await Leg().open(engine, **kw)
    a.session.start((HOST, b.session.local_port))
    b.session.start((HOST, a.session.local_port))
    return a, b


def test_playback_digits_and_recording_between_two_sessions(tmp_path):
    async def scenario():
        engine = MediaEngine(HOST)
        a, b = await pair(engine)
        recording = b.session.start_recording(tmp_path / "b.wav", "BOTH")
        a.session.sender.play(TONE, "prompt")
        assert await wait_for(lambda: a.done == ["prompt"])
        a.session.send_digits("4,#", 100, "digits")
        assert await wait_for(lambda: a.done == ["prompt", "digits"] and len(b.digits) == 2)
        assert b.session.stop_recording(recording) == tmp_path / "b.wav"
        stats = b.session.receiver.stats
        await engine.close()
        return a, b, stats
    a, b, stats = asyncio.run(scenario())
    assert [(d.digit, d.duration_ms, d.source) for d in b.digits] == [("4", 100, "rfc4733"), ("#", 100, "rfc4733")]
    assert stats.lost == 0 and stats.received > 30
    with wave.open(str(tmp_path / "b.wav")) as w:
        assert (w.getnchannels(), w.getframerate(), w.getsampwidth()) == (2, 8000, 2)
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, 2)
    incoming = pcm[:, 0]
    spectrum = np.abs(np.fft.rfft(incoming[:2400].astype(float)))
    assert abs(np.argmax(spectrum) * 8000 / 2400 - 440) < 10  # the prompt, heard by b
    assert [d.digit for d in ToneDetector().feed(incoming)] == ["4", "#"]  # DTMF rendered
    assert not pcm[:, 1].any()  # b itself sent silence


def test_inband_dtmf_detection_option():
    async def scenario():
        engine = MediaEngine(HOST)
        a, b = await pair(engine, inband_dtmf=True)
        a.session.sender.dtmf_payload_type = None  # as if no telephone-event was negotiated
        a.session.send_digits("7", 200, "d")
        assert await wait_for(lambda: b.digits)
        await engine.close()
        return b.digits
    assert [(d.digit, d.source) for d in asyncio.run(scenario())] == [("7", "inband")]


def test_rtcp_reports_and_bye_on_the_next_port():
    async def scenario():
        engine = MediaEngine(HOST)
        a, b = await pair(engine)
        assert await wait_for(lambda: b.session.receiver.stats.received > 5)
        a.session.reporter.next_due = 0.0  # report at the next tick instead of in ~2.5 s
        b.session.reporter.next_due = 0.0
        assert await wait_for(lambda: a.session.reporter.reports_received and b.session.reporter.reports_received)
        b.session.reporter.next_due = 0.0  # b's next report carries LSR/DLSR of a's report
        assert await wait_for(lambda: a.session.reporter.round_trip is not None)
        a.session.close()
        assert await wait_for(lambda: b.session.reporter.remote_bye)
        ports = (a.session.local_port, a.session.rtcp_port)
        await engine.close()
        return ports, a.session.reporter.round_trip
    (rtp, rtcp), rtt = asyncio.run(scenario())
    assert rtp % 2 == 0 and rtcp == rtp + 1
    assert 0 <= rtt < 1.0


def test_reports_reach_a_plain_socket_as_valid_sr():
    async def scenario():
        sink_rtp, sink_rtcp = socket.socket(type=socket.SOCK_DGRAM), socket.socket(type=socket.SOCK_DGRAM)
        sink_rtp.bind((HOST, 0))
        sink_rtcp.bind((HOST, 0))
        sink_rtcp.settimeout(5)
        engine = MediaEngine(HOST)
        leg = await Leg().open(engine)
        leg.session.start(sink_rtp.getsockname(), sink_rtcp.getsockname())
        leg.session.reporter.next_due = 0.0
        data = await asyncio.get_running_loop().run_in_executor(None, sink_rtcp.recv, 2048)
        await engine.close()
        sink_rtp.close(), sink_rtcp.close()
        return data
    first = parse_compound(asyncio.run(scenario()))[0]
    assert isinstance(first, SenderReport) and first.packet_count >= 1


def test_hold_stops_the_packets_and_resume_marks_them():
    async def scenario():
        engine = MediaEngine(HOST)
        sink = socket.socket(type=socket.SOCK_DGRAM)
        sink.bind((HOST, 0))
        sink.setblocking(False)
        leg = await Leg().open(engine)
        leg.session.start(sink.getsockname())
        await asyncio.sleep(0.2)
        leg.session.pause()
        await asyncio.sleep(0.06)
        drain(sink)
        await asyncio.sleep(0.3)
        during = drain(sink)
        leg.session.resume()
        await asyncio.sleep(0.2)
        after = drain(sink)
        await engine.close()
        sink.close()
        return during, after
    during, after = asyncio.run(scenario())
    assert during == [] and after and after[0].marker


def drain(sock: socket.socket) -> list[RtpPacket]:
    out = []
    while True:
        try:
            out.append(RtpPacket.parse(sock.recv(2048)))
        except BlockingIOError:
            return out


def test_port_range_pairs_and_exhaustion():
    async def scenario():
        probe = socket.socket(type=socket.SOCK_DGRAM)
        probe.bind((HOST, 0))
        base = probe.getsockname()[1] // 2 * 2 + 2
        probe.close()
        engine = MediaEngine(HOST, (base, base + 4))
        first = await Leg().open(engine)
        second = await Leg().open(engine)
        with pytest.raises(OSError, match="no free RTP/RTCP port pair"):
            await Leg().open(engine)
        count = engine.session_count
        first.session.close()
        first.session.close()  # idempotent
        after_close = engine.session_count
        await engine.close()
        return base, first.session, second.session, count, after_close, engine.session_count
    base, first, second, count, after_close, final = asyncio.run(scenario())
    assert {(first.local_port, first.rtcp_port), (second.local_port, second.rtcp_port)} <= \
        {(base, base + 1), (base + 2, base + 3)}
    assert (count, after_close, final) == (2, 1, 0)


def test_clock_stops_when_the_last_session_closes_and_restarts():
    async def scenario():
        engine = MediaEngine(HOST)
        a, b = await pair(engine)
        await asyncio.sleep(0.1)
        a.session.close(), b.session.close()
        await asyncio.sleep(0.1)
        stopped = engine._clock is None
        c, d = await pair(engine)
        c.session.sender.play(TONE, "again")
        ok = await wait_for(lambda: c.done == ["again"])
        await engine.close()
        return stopped, ok
    assert asyncio.run(scenario()) == (True, True)


def test_tshark_accepts_the_streams(tmp_path):
    """Capture the engine's RTP on loopback: tshark's rtp,streams must show no loss, no
    sequence or timestamp problems, intervals of about 20 ms, and the DTMF events."""
    tshark = require_tool("tshark")
    pcap = tmp_path / "engine.pcap"

    async def scenario():
        engine = MediaEngine(HOST)
        a, b = await Leg().open(engine), await Leg().open(engine)
        ports = (a.session.local_port, b.session.local_port)
        capture = subprocess.Popen([tshark, "-i", "lo", "-f", f"udp port {ports[0]} or udp port {ports[1]}",
                                    "-w", str(pcap)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            for _ in range(50):
                line = capture.stderr.readline()
                if not line or "Capturing on" in line:
                    break
            a.session.start((HOST, ports[1]))
            b.session.start((HOST, ports[0]))
            a.session.sender.play(TONE, "one")
            await asyncio.sleep(0.2)
            a.session.sender.play(encode_frames(tone(880, 0.4), "PCMU"), "two")  # switch mid-prompt
            await wait_for(lambda: a.done == ["two"])
            a.session.send_digits("5#", 120, "digits")
            await wait_for(lambda: "digits" in a.done)
            await asyncio.sleep(0.3)
            a.session.close(), b.session.close()
            await asyncio.sleep(0.2)
        finally:
            capture.send_signal(signal.SIGINT)
            capture.wait(30)
        await engine.close()
    asyncio.run(scenario())
    report = subprocess.run([tshark, "-q", "-r", str(pcap), "-z", "rtp,streams", "-o", "rtp.heuristic_rtp:TRUE"],
                            capture_output=True, text=True, timeout=60).stdout
    rows = [line.split() for line in report.splitlines() if line.strip().startswith(tuple("0123456789"))
            and "127.0.0.1" in line]
    assert len(rows) == 2, report
    for row in rows:
        lost_at = row.index("(0.0%)") - 1 if "(0.0%)" in row else None
        assert lost_at is not None and row[lost_at] == "0", report
        min_delta, mean_delta, max_delta = (float(v) for v in row[lost_at + 2:lost_at + 5])
        assert 19.0 < mean_delta < 21.0 and max_delta < 80.0, report  # loose: a loaded 2-core box
        assert not row[-1] == "X", report
    events = subprocess.run([tshark, "-r", str(pcap), "-o", "rtp.heuristic_rtp:TRUE",
                             "-o", "rtpevent.event_payload_type_value:101", "-Y", "rtpevent.end_of_event == 1",
                             "-T", "fields", "-e", "rtpevent.event_id", "-e", "rtpevent.duration"],
                            capture_output=True, text=True, timeout=60).stdout.split()
    assert events == ["5", "960"] * 3 + ["11", "960"] * 3


def test_loop_timer_fallback_without_timerfd(monkeypatch):
    from harness.media import transport as engine_module
    monkeypatch.setattr(engine_module._TimerFd, "create", classmethod(lambda cls: None))

    async def scenario():
        engine = MediaEngine(HOST)
        a, b = await pair(engine)
        a.session.sender.play(TONE, "fallback")
        # the playback ends as its last packet is sent, before the far end has read it
        ok = await wait_for(lambda: a.done == ["fallback"]
                            and b.session.receiver.stats.received >= len(TONE))
        received = b.session.receiver.stats.received
        await engine.close()
        return ok, received, engine._timerfd
    ok, received, timerfd = asyncio.run(scenario())
    assert ok and received >= len(TONE) and timerfd is None
