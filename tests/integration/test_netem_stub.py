"""The stub behind an impaired network edge, with SIPp as the peer: SIP completes through
retransmissions when the ACK, a 200 or the BYE is lost, and RTP loss on the stub's outgoing
edge is what the capture shows, what tshark reports and what the seed says."""
from __future__ import annotations

import dataclasses
import functools
import subprocess

import pytest

import harness.stub as stub_module
from conftest import require_capture, require_tool, stub_config, wait_until
from harness.journal_entries import Entry, SipConfirmed, SipEnded
from harness.journal_view import JournalView
from harness.media.transport import MediaEngine
from harness.netem import INCOMING, OUTGOING, RTP, SIP, Impairment, NetworkImpairment
from harness.run.setup import free_rtp_range
from harness.sip.transport import UdpSipTransport
from harness.stub import Stub, StubConfig
from harness.wire.analysis import analyze_pcap
from harness.wire.capture import Capture
from test_wire_tshark import tshark_streams

HOST = "127.0.0.1"
RTP_BYTES = 172  # a 20 ms G.711 packet: 12 header + 160 payload


def impaired_stub(tmp_path, monkeypatch, net: NetworkImpairment, **config) -> Stub:
    """A stub whose UDP SIP and RTP edges cross `net`: through `StubConfig.impairment` once
    the stub has it, until then by handing the stub impaired edge classes."""
    if "impairment" in {f.name for f in dataclasses.fields(StubConfig)}:
        return Stub(stub_config(tmp_path, impairment=net, **config))

    class ImpairedUdp(UdpSipTransport):
        @classmethod
        async def listen(cls, *args, **kw):
            return await UdpSipTransport.listen.__func__(cls, *args, impairment=net, **kw)

    monkeypatch.setattr(stub_module, "UdpSipTransport", ImpairedUdp)
    monkeypatch.setattr(stub_module, "MediaEngine", functools.partial(MediaEngine, impairment=net))
    return Stub(stub_config(tmp_path, **config))


def sipp_uac(stub: Stub, tmp_path, procs: list, hold_ms: int) -> subprocess.Popen:
    """`sipp -sn uac`: one call held `hold_ms`, with SIPp's own retransmissions (T1 500 ms)."""
    cmd = [require_tool("sipp"), "-sn", "uac", "-s", "+14345550101", "-i", HOST, "-p", "0",
           "-m", "1", "-d", str(hold_ms), "-timeout", "40", "-timeout_error",
           "-trace_msg", "-message_file", str(tmp_path / f"sipp-{len(procs)}.log"),
           f"{HOST}:{stub.sip_port}"]
    procs.append(subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, cwd=tmp_path))
    return procs[-1]


@pytest.fixture
def procs():
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def succeeded(proc: subprocess.Popen, timeout: float = 45) -> None:
    _, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]


def journal(stub: Stub, kind: type[Entry]) -> list[Entry]:
    return JournalView(stub.journal_json()).of(kind)


def sipp_log(tmp_path, index: int = 0) -> list[tuple[str, str, str]]:
    """SIPp's message trace as (sent|received, first line, CSeq method), in order."""
    out = []
    for block in (tmp_path / f"sipp-{index}.log").read_text(errors="replace").split("\n---")[1:]:
        lines = block.splitlines()
        way = "sent" if " sent " in lines[1] else "received"
        cseq = next(line for line in lines if line.lower().startswith("cseq:"))
        out.append((way, lines[3].strip(), cseq.split()[-1]))
    return out


def count(log, way: str, start: str, method: str) -> int:
    return sum(1 for w, line, m in log if w == way and line.startswith(start) and m == method)


# the datagram lost once (edge, rule), and what SIPp must show of the retransmission that
# made up for it: (way, first line, CSeq method, at least how many)
LOST_ONCE = {
    "ACK": ("sip_incoming", rb"ACK ", ("received", "SIP/2.0 200", "INVITE", 2)),
    "200 to the INVITE": ("sip_outgoing", rb"SIP/2\.0 200 .*CSeq: *\d+ INVITE",
                          ("received", "SIP/2.0 200", "INVITE", 1)),
    "BYE": ("sip_incoming", rb"BYE ", ("sent", "BYE ", "BYE", 2)),
    "200 to the BYE": ("sip_outgoing", rb"SIP/2\.0 200 .*CSeq: *\d+ BYE", ("sent", "BYE ", "BYE", 2)),
}


@pytest.mark.parametrize("lost", list(LOST_ONCE))
def test_the_call_completes_when_one_message_is_lost(tmp_path, monkeypatch, procs, lost):
    edge, rule, (way, start, method, at_least) = LOST_ONCE[lost]
    net = NetworkImpairment(**{edge: Impairment(1, drop_match=rule)})
    with impaired_stub(tmp_path, monkeypatch, net) as stub:
        succeeded(sipp_uac(stub, tmp_path, procs, hold_ms=1500))
        ended = wait_until(lambda: journal(stub, SipEnded), 10)
        assert [(e.by, e.reason) for e in ended] == [("remote", "BYE")]
        assert journal(stub, SipConfirmed)
        assert wait_until(lambda: stub.resources()["dialogs"] == 0)
    direction = edge.split("_")[1]
    assert [(r.direction, r.kind, r.action) for r in net.records] == [(direction, SIP, "dropped")]
    log = sipp_log(tmp_path)
    assert count(log, way, start, method) >= at_least, log
    assert count(log, "received", "SIP/2.0 200", "BYE") >= 1


def first_drops(seed: int, n: int, **settings) -> int:
    imp = Impairment(seed, **settings)
    return sum(1 for _ in range(n) if not imp.decide(b"", 0.0))


def test_the_call_completes_through_random_loss_both_ways(tmp_path, monkeypatch, procs):
    """30 % loss each way, seeds that lose at least two of the first datagrams each way."""
    incoming, outgoing = dict(loss=0.3, delay_ms=20, jitter_ms=10), dict(loss=0.3, duplicate=0.1)
    seed_in = next(s for s in range(1000) if first_drops(s, 4, **incoming) >= 2)
    seed_out = next(s for s in range(1000) if first_drops(s, 5, **outgoing) >= 2)
    net = NetworkImpairment(sip_incoming=Impairment(seed_in, **incoming),
                            sip_outgoing=Impairment(seed_out, **outgoing))
    with impaired_stub(tmp_path, monkeypatch, net) as stub:
        succeeded(sipp_uac(stub, tmp_path, procs, hold_ms=2500), timeout=60)
        assert wait_until(lambda: journal(stub, SipEnded), 10)
        assert wait_until(lambda: stub.resources()["dialogs"] == 0)
    assert net.counts[INCOMING, SIP, "dropped"] >= 2 and net.counts[OUTGOING, SIP, "dropped"] >= 2
    assert net.counts[INCOMING, SIP, "delayed"] >= 1


def test_rtp_loss_on_the_wire_is_the_seeds_and_tshark_agrees(tmp_path, monkeypatch, procs):
    require_capture()
    settings = dict(loss=0.05)
    seed = next(s for s in range(100) if Impairment(s, **settings).decide(b"", 0.0))  # keeps packet 0
    net = NetworkImpairment(rtp_outgoing=Impairment(seed, **settings))
    rtp_range = free_rtp_range(40)
    with impaired_stub(tmp_path, monkeypatch, net, rtp_port_range=rtp_range) as stub:
        pcap = str(tmp_path / "capture.pcap")
        bpf = f"udp and (port {stub.sip_port} or portrange {rtp_range[0]}-{rtp_range[1]})"
        with Capture(pcap, iface="lo", bpf=bpf):
            succeeded(sipp_uac(stub, tmp_path, procs, hold_ms=6000))
            assert wait_until(lambda: journal(stub, SipEnded), 10)
    sent = net.seen[OUTGOING, RTP]
    (stream,) = [s for s in analyze_pcap(pcap).rtp_streams if rtp_range[0] <= s.src[1] < rtp_range[1]]
    first = stream.packets[0].sequence
    received = [(p.sequence - first) % 65536 for p in stream.packets]  # packet index, past wraps
    missing = sorted(set(range(sent)) - set(received))
    replay = Impairment(seed, **settings)
    expected = [i for i in range(sent) if not replay.decide(bytes(RTP_BYTES), 0.0)]
    # at least 2 s of audio (a busy machine starts the media late; 214 of 300 were seen):
    # over any first 100 to 400 packets, this seed drops 4.0-5.5 %
    assert sent > 100 and 0.02 < len(expected) / sent < 0.09
    assert missing == expected  # the seed's drops, packet for packet
    assert net.counts[OUTGOING, RTP, "dropped"] == len(expected)
    trailing = sum(1 for i in expected if i > received[-1])
    assert stream.stats.lost == len(expected) - trailing
    assert stream.stats.packets == sent - len(expected)
    theirs = tshark_streams(pcap)[(*stream.src, *stream.dst, stream.ssrc)]
    assert (theirs["packets"], theirs["lost"]) == (stream.stats.packets, stream.stats.lost)
