"""Seeded impairment, sans-IO (decisions, statistics, records) and at the two UDP edges on
loopback: the SIP transport and the media engine."""
from __future__ import annotations

import asyncio
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.media.transport import MediaEngine
from harness.media.rtp import RtpPacket
from harness.netem import INCOMING, OUTGOING, RTP, SIP, Impairment, NetworkImpairment
from harness.testing.autoanswer import AutoAnswer
from harness.sip.transport import UdpSipTransport

HOST = "127.0.0.1"
PACKET = b"\x80" + bytes(171)


def run(imp: Impairment, n: int, datagram: bytes = PACKET, step: float = 0.02):
    """Decide `n` datagrams 20 ms apart; the decisions in order."""
    return [imp.decide(datagram, i * step) for i in range(n)]


def dropped(decisions) -> list[int]:
    return [i for i, d in enumerate(decisions) if not d]


# ---- decisions ---------------------------------------------------------------------------
def test_default_impairment_passes_everything_unchanged():
    imp = Impairment(1)
    assert run(imp, 50) == [[(i * 0.02, PACKET)] for i in range(50)]
    assert imp.last_action is None


def test_same_seed_same_decisions_other_seed_other_drops():
    kw = dict(loss=0.1, delay_ms=30, jitter_ms=10, reorder=0.05, duplicate=0.05)
    assert run(Impairment(7, **kw), 500) == run(Impairment(7, **kw), 500)
    assert dropped(run(Impairment(7, **kw), 500)) != dropped(run(Impairment(8, **kw), 500))


def test_the_drops_of_a_seed_do_not_depend_on_delay_jitter_or_duplication():
    plain = dropped(run(Impairment("s", loss=0.1), 400))
    busy = dropped(run(Impairment("s", loss=0.1, delay_ms=80, jitter_ms=40, duplicate=0.3), 400))
    assert plain == busy and plain


def test_independent_loss_rate():
    n = 20_000
    rate = len(dropped(run(Impairment(3, loss=0.05), n))) / n
    assert 0.04 < rate < 0.06


def test_gilbert_elliott_bursts_have_the_mean_length_of_the_chain():
    p_enter, p_stay, n = 0.02, 0.75, 40_000
    lost = set(dropped(run(Impairment(5, burst_loss=(p_enter, p_stay)), n)))
    bursts = [i for i in lost if i - 1 not in lost]
    mean_burst = len(lost) / len(bursts)
    assert 3.4 < mean_burst < 4.6  # 1 / (1 - p_stay) = 4
    stationary = p_enter / (p_enter + 1 - p_stay)  # share of time in the bad state
    assert abs(len(lost) / n - stationary) < 0.25 * stationary
    # independent loss at the same rate makes far shorter bursts
    flat = set(dropped(run(Impairment(5, loss=stationary), n)))
    assert len(flat) / len([i for i in flat if i - 1 not in flat]) < 1.2


def test_delay_and_jitter_stay_within_their_bounds():
    decisions = run(Impairment(9, delay_ms=50, jitter_ms=20), 2000)
    delays = [d[0][0] - i * 0.02 for i, d in enumerate(decisions)]
    assert min(delays) >= 0.030 - 1e-9 and max(delays) <= 0.070 + 1e-9
    assert max(delays) - min(delays) > 0.035  # the whole range is used
    arrival = [d[0][0] for d in decisions]
    assert arrival != sorted(arrival)  # 40 ms of jitter over 20 ms spacing reorders


def test_jitter_never_makes_a_negative_delay():
    decisions = run(Impairment(2, delay_ms=5, jitter_ms=30), 1000)
    assert all(d[0][0] >= i * 0.02 for i, d in enumerate(decisions))


def test_reordered_datagrams_are_overtaken_by_the_next_ones():
    imp = Impairment(4, reorder=0.1, reorder_ms=45)
    decisions, held = [], []
    for i in range(1000):
        decisions.append(imp.decide(PACKET, i * 0.02))
        if imp.last_action == "reordered":
            held.append(i)
    assert 60 < len(held) < 140
    arrival = sorted(range(1000), key=lambda i: decisions[i][0][0])
    for i in held:
        if i + 2 < 1000 and i + 2 not in held:
            assert arrival.index(i) > arrival.index(i + 2)


def test_duplicates_are_two_copies_at_once():
    imp = Impairment(6, duplicate=0.2)
    decisions = run(imp, 1000)
    doubles = [d for d in decisions if len(d) == 2]
    assert 150 < len(doubles) < 250
    assert all(a == b for a, b in doubles)


def test_drop_rule_drops_exactly_the_nth_matching_datagrams():
    imp = Impairment(0, drop_match=rb"BYE ", drop_nth=2, drop_count=2)
    sent = [b"INVITE sip:a SIP/2.0", b"BYE sip:a SIP/2.0", b"SIP/2.0 200 OK\r\nCSeq: 2 BYE ",
            b"BYE sip:a SIP/2.0", b"BYE sip:a SIP/2.0", b"BYE sip:a SIP/2.0"]
    assert [bool(imp.decide(d, 0.0)) for d in sent] == [True, True, True, False, False, True]


def test_drop_rule_can_name_a_response_by_its_cseq():
    imp = Impairment(0, drop_match=rb"SIP/2\.0 200 .*CSeq: *\d+ INVITE")
    ok_bye = b"SIP/2.0 200 OK\r\nCSeq: 2 BYE\r\n\r\n"
    ok_invite = b"SIP/2.0 200 OK\r\nVia: x\r\nCSeq: 1 INVITE\r\n\r\n"
    assert [bool(imp.decide(d, 0.0)) for d in (ok_bye, ok_invite, ok_invite)] == [True, False, True]


@pytest.mark.parametrize("kw", [dict(loss=1.5), dict(burst_loss=(0.1, -0.1)), dict(delay_ms=-1),
                                dict(duplicate=2), dict(drop_nth=0)])
def test_bad_settings_are_refused(kw):
    with pytest.raises(ValueError):
        Impairment(1, **kw)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32), loss=st.floats(0, 1), delay=st.floats(0, 200),
       jitter=st.floats(0, 200), reorder=st.floats(0, 1), duplicate=st.floats(0, 1),
       sizes=st.lists(st.integers(0, 1500), min_size=1, max_size=60))
def test_decisions_are_reproducible_and_well_formed(seed, loss, delay, jitter, reorder,
                                                    duplicate, sizes):
    kw = dict(loss=loss, delay_ms=delay, jitter_ms=jitter, reorder=reorder, duplicate=duplicate)
    a, b = Impairment(seed, **kw), Impairment(seed, **kw)
    for i, size in enumerate(sizes):
        data, now = bytes(size), i * 0.02
        out = a.decide(data, now)
        assert out == b.decide(data, now)
        assert len(out) <= 2 and all(d is data and now <= t <= now + (delay + jitter + 40) / 1e3 + 1e-9
                                     for t, d in out)
        assert (a.last_action == "dropped") == (not out)


# ---- the network configuration and its records --------------------------------------------
def test_network_impairment_records_what_it_touched():
    net = NetworkImpairment(rtp_outgoing=Impairment(1, loss=0.2), sip_incoming=Impairment(2, delay_ms=10))
    for i in range(100):
        assert net.decide(OUTGOING, SIP, b"x", i) == [(i, b"x")]  # not impaired, not recorded
        net.decide(OUTGOING, RTP, PACKET, i)
    net.decide(INCOMING, SIP, b"OPTIONS", 1000.0)
    drops = [r for r in net.records if r.kind == RTP]
    assert drops and all((r.direction, r.action, r.size, r.delay_ms) == (OUTGOING, "dropped", 172, 0.0)
                         for r in drops)
    assert net.counts[OUTGOING, RTP, "dropped"] == len(drops)
    assert net.seen[OUTGOING, RTP] == 100 and net.seen[OUTGOING, SIP] == 0
    last = net.records[-1].to_json()
    assert last == {"time": 1000.0, "direction": INCOMING, "kind": SIP, "action": "delayed",
                    "size": 7, "delay_ms": 10.0}


def test_from_dict_seeds_each_edge_apart():
    net = NetworkImpairment.from_dict({"seed": 11, "rtp": {"outgoing": {"loss": 0.1}, "incoming": {"loss": 0.1}},
                                       "sip": {"incoming": {"drop_match": "ACK ", "drop_count": 1,
                                                            "burst_loss": [0.0, 0.0]}}})
    assert net.sip_outgoing is None and net.sip_incoming.burst_loss == (0.0, 0.0)
    assert not net.sip_incoming.decide(b"ACK sip:x SIP/2.0", 0.0)
    out = dropped(run(net.rtp_outgoing, 300))
    assert out == dropped(run(Impairment("11/rtp/outgoing", loss=0.1), 300))
    assert out != dropped(run(net.rtp_incoming, 300))
    with pytest.raises(ValueError):
        NetworkImpairment.from_dict({"rtcp": {}})
    with pytest.raises(ValueError):
        NetworkImpairment.from_dict({"sip": {"sideways": {}}})


# ---- the edges on loopback -----------------------------------------------------------------
OPTIONS = (b"OPTIONS sip:sma@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-%d\r\n"
           b"From: <sip:probe@127.0.0.1>;tag=p\r\nTo: <sip:sma@127.0.0.1>\r\nCall-ID: netem-%d\r\n"
           b"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")


def test_the_udp_sip_edge_drops_and_delays_both_ways():
    """Every 2nd OPTIONS dropped on the way in, every answer held 150 ms on the way out."""
    async def scenario():
        loop = asyncio.get_running_loop()
        net = NetworkImpairment(sip_incoming=Impairment(1, drop_match=rb"OPTIONS ", drop_nth=2),
                                sip_outgoing=Impairment(2, delay_ms=150))
        ua = AutoAnswer(loop.time)
        sip = await UdpSipTransport.listen(HOST, 0, ua, impairment=net)
        ua.endpoint = sip.endpoint
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((HOST, 0))
            probe.setblocking(False)
            port = probe.getsockname()[1]
            answers = []
            for i in range(3):
                sent = loop.time()
                probe.sendto(OPTIONS % (port, i, i), (HOST, sip.port))
                try:
                    data = await asyncio.wait_for(loop.sock_recv(probe, 4096), 1.0)
                    answers.append((i, loop.time() - sent, data.split(b"\r\n")[0]))
                except asyncio.TimeoutError:
                    answers.append((i, None, None))
        sip.close()
        return answers, net
    answers, net = asyncio.run(scenario())
    assert [(i, line) for i, _, line in answers] == [(0, b"SIP/2.0 200 OK"), (1, None), (2, b"SIP/2.0 200 OK")]
    assert all(0.14 < waited < 0.9 for _, waited, line in answers if line)
    assert [(r.direction, r.action) for r in net.records] == [
        (OUTGOING, "delayed"), (INCOMING, "dropped"), (OUTGOING, "delayed")]


def test_the_rtp_edge_drops_incoming_packets_and_the_receiver_counts_them():
    """100 packets sent to a session whose incoming RTP loses 10 %: twice, the receiver's loss
    is exactly the drops the seed makes (a seed that keeps the first and last packet)."""
    def lossy(seed):
        return NetworkImpairment(rtp_incoming=Impairment(seed, loss=0.1))

    async def scenario(net):
        engine = MediaEngine(HOST, impairment=net)
        session = engine.open(0, "PCMU", 101, on_playback_done=lambda t: None,
                              on_digit=lambda d: None)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            for seq in range(100):
                tx.sendto(RtpPacket(0, seq, seq * 160, 0x1234, bytes(160)).build(), (HOST, session.local_port))
                await asyncio.sleep(0.002)
        for _ in range(250):
            if net.seen[INCOMING, RTP] == 100:
                break
            await asyncio.sleep(0.02)
        stats = session.receiver.stats
        result = (net.seen[INCOMING, RTP], stats.received, stats.lost)
        await engine.close()
        return result

    seed = next(s for s in range(100) if {0, 99}.isdisjoint(dropped(run(Impairment(s, loss=0.1), 100))))
    expected = len(dropped(run(Impairment(seed, loss=0.1), 100)))
    for _ in range(2):
        net = lossy(seed)
        assert asyncio.run(scenario(net)) == (100, 100 - expected, expected)
        assert [r.action for r in net.records] == ["dropped"] * expected


def test_the_rtp_edge_delays_outgoing_packets():
    """A session sending through 60 ms of delay: the far end's first packet comes that late."""
    async def scenario():
        loop = asyncio.get_running_loop()
        net = NetworkImpairment(rtp_outgoing=Impairment(3, delay_ms=60))
        engine = MediaEngine(HOST, impairment=net)
        session = engine.open(0, "PCMU", 101, on_playback_done=lambda t: None,
                              on_digit=lambda d: None)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
            rx.bind((HOST, 0))
            rx.setblocking(False)
            started = loop.time()
            session.start(rx.getsockname())
            await asyncio.wait_for(loop.sock_recv(rx, 2048), 2.0)
            first = loop.time() - started
            await asyncio.sleep(0.2)
        await engine.close()
        return first, net
    first, net = asyncio.run(scenario())
    assert first >= 0.06
    assert net.records and all((r.action, r.delay_ms) == ("delayed", 60.0) for r in net.records)
