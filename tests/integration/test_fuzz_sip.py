"""Hostile SIP: the sans-IO core under hypothesis-driven mutations of real messages, the inputs
that once crashed it (regressions), and a bounded fuzz run against a live stub over UDP and
TCP while real SIPp calls go through it (`bench/bench_sip_fuzz.py` runs the long one)."""
from __future__ import annotations

import importlib.util
import random
import socket
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ROOT, require_tool, wait_until
from harness.journal_entries import InternalError, SipMalformed
from harness.journal_view import JournalView
from harness.testing.autoanswer import AutoAnswer
from harness.sip.endpoint import SipEndpoint
from harness.sip.events import CallConfirmed, DtmfInfo, MalformedMessage
from harness.sip.framing import StreamFramer
from harness.sip.message import SipParseError, parse_message
from harness.sip.sdp import SdpError, answer_offer, build_offer, parse_sdp
from harness.sip.transactions import Timers

_spec = importlib.util.spec_from_file_location("bench_sip_fuzz", ROOT / "bench" / "bench_sip_fuzz.py")
fuzz = sys.modules.setdefault("bench_sip_fuzz", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(fuzz)

HOST = "127.0.0.1"
PEER = (HOST, 5062)
LIVE_CASES = 1500  # about 4 s of fuzzing on an idle machine


# ---- the sans-IO core -----------------------------------------------------------------------
class Core:
    """A SipEndpoint answering every call as the stub does, with one confirmed dialog to aim
    in-dialog cases at."""

    def __init__(self, transport: str):
        self.now = 0.0
        self.ep = SipEndpoint(HOST, 5080, transport)
        self.ua = AutoAnswer(lambda: self.now)
        self.ua.endpoint = self.ep
        self.transport = transport
        ids = fuzz.Ids("dialog@fuzz", "d1", "", "z9hG4bK-dialog", PEER[1], transport)
        self.feed(fuzz.TEMPLATES["INVITE"](ids), PEER)
        ok = parse_message(next(t.data for t in self.sent if t.data.startswith(b"SIP/2.0 200")))
        self.dialog = fuzz.Ids(ids.call_id, "d1", ok.headers.get("to").rpartition(";tag=")[2],
                               "z9hG4bK-dialog-ack", PEER[1], transport)
        self.feed(fuzz.TEMPLATES["ACK"](self.dialog), PEER)
        assert any(isinstance(e, CallConfirmed) for e in self.ua.events)

    def feed(self, data: bytes, source, chunks: int = 1) -> None:
        self.now += 0.01
        step = max(1, len(data) // chunks)
        for i in range(0, max(1, len(data)), step):
            self.ep.receive(data[i:i + step], source, self.now)
        self.pump()

    def pump(self, advance: float = 0.0) -> None:
        self.now += advance
        self.ep.handle_timers(self.now)
        self.sent = self.ep.take_transmits()
        for event in self.ep.take_events():
            self.ua(event)
        self.sent += self.ep.take_transmits()

    def still_answers(self, n: int) -> bool:
        ids = fuzz.Ids(f"probe-{n}", "p", "", f"z9hG4bK-probe-{n}", 5999, self.transport)
        self.feed(fuzz.TEMPLATES["OPTIONS"](ids), (HOST, 5999))
        return any(t.data.startswith(b"SIP/2.0 200") and ids.call_id.encode() in t.data for t in self.sent)


def mutated(rng: random.Random, dialog: fuzz.Ids, transport: str) -> bytes:
    name = rng.choice(fuzz.TEMPLATE_NAMES)
    if name == "junk":
        return rng.randbytes(rng.choice([1, 16, 300]))
    ids = dialog if name in fuzz.IN_DIALOG else fuzz.Ids("fresh@fuzz", "f", "t", "z9hG4bK-f", PEER[1], transport)
    data = fuzz.TEMPLATES[name](ids)
    for _ in range(rng.randint(1, 3)):
        data = rng.choice(fuzz.MUTATIONS)(rng, data)
    return data


@pytest.mark.parametrize("transport", ["UDP", "TCP"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rng=st.randoms(use_true_random=False), chunks=st.integers(1, 5), junk=st.binary(max_size=300))
def test_the_core_survives_mutated_messages_and_still_answers(transport, rng, chunks, junk):
    core = Core(transport)
    for n in range(4):
        tcp = transport == "TCP"
        source = (HOST, 6000 + n) if tcp else PEER  # a new stream: the last may be closed
        core.feed(mutated(rng, core.dialog, transport), source, chunks if tcp else 1)
        core.feed(junk, source)
        core.pump(advance=40.0)  # every timer runs out: retransmissions, H, J, F
        assert core.still_answers(n)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rng=st.randoms(use_true_random=False), statuses=st.lists(st.sampled_from([100, 180, 183, 200, 486]),
                                                                 min_size=1, max_size=4))
def test_the_core_survives_mutated_answers_to_a_call_it_places(rng, statuses):
    """The UAC role (calls the SMA places): mutated responses with the right branch."""
    ep = SipEndpoint(HOST, 5080, "UDP")
    call_id = ep.invite("sip:+14345550101@127.0.0.1:5062", build_offer(HOST, 4000, 1), 0.0)
    (invite,) = [parse_message(t.data) for t in ep.take_transmits()]
    for n, status in enumerate(statuses):
        resp = invite.reply(status, to_tag="callee")
        resp.headers.add("Contact", "<sip:callee@127.0.0.1:5062>")
        if status in (183, 200):
            resp.headers.add("Content-Type", "application/sdp")
            resp.body = build_offer(HOST, 4002, 2)
        data = resp.serialize()
        for _ in range(rng.randint(0, 2)):
            data = rng.choice(fuzz.MUTATIONS)(rng, data)
        ep.receive(data, PEER, 0.1 * (n + 1))
        ep.take_events()
        ep.take_transmits()
    ep.hangup(call_id, 1.0)
    ep.handle_timers(100.0)
    ep.take_events()
    assert ep.active_dialogs() == 0


# ---- regressions: inputs that raised inside the SIP core ---------------------------------------
def message(start: str, headers: str, body: bytes = b"") -> bytes:
    return (f"{start}\r\n{headers}Content-Length: {len(body)}\r\n\r\n").encode() + body


BASE = ("Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-r{n}\r\nFrom: <sip:a@127.0.0.1>;tag=a\r\n"
        "To: <sip:+1434@127.0.0.1>\r\nCall-ID: reg-{n}\r\nCSeq: {cseq}\r\n"
        "Contact: <sip:a@127.0.0.1:5062>\r\n")


def sdp(media: str = "m=audio 4000 RTP/AVP 0", connection: str = "c=IN IP4 127.0.0.1",
        extra: str = "") -> bytes:
    return f"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\n{connection}\r\nt=0 0\r\n{media}\r\n{extra}".encode()


@pytest.mark.parametrize("transport", ["UDP", "TCP"])
@pytest.mark.parametrize("via", ["Via:", "Via: ", "Via: ,", "v: , ,"])
def test_an_empty_via_is_malformed_not_a_crash(transport, via):
    ep = SipEndpoint(HOST, 5080, transport)
    data = message("OPTIONS sip:sma@127.0.0.1 SIP/2.0",
                   BASE.format(n=1, cseq="1 OPTIONS").replace(
                       "Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-r1", via))
    ep.receive(data, PEER, 0.0)
    (event,) = ep.take_events()
    assert isinstance(event, MalformedMessage) and "Via" in event.reason and not event.answered


@pytest.mark.parametrize("body", [
    sdp("m=audio " + "9" * 5000 + " RTP/AVP 0"), sdp("m=audio 4000 RTP/AVP " + "1" * 4400),
    sdp("m=audio 65536 RTP/AVP 0"), sdp("m=audio 65535 RTP/AVP 0"),
    sdp("m=audio 99999999999 RTP/AVP 0"), sdp(connection="c=IN IP4 media.example.invalid"),
    sdp(connection="c=IN IP4 localhost"), sdp("m=audio 4000 RTP/AVP 128")])
def test_sdp_that_once_raised_or_sent_media_astray_is_an_sdp_error(body):
    with pytest.raises(SdpError):
        answer_offer(parse_sdp(body))


@pytest.mark.parametrize("line", ["a=rtpmap:" + "9" * 4400 + " PCMU/8000", "a=rtpmap:0 PCMU/" + "9" * 4400,
                                  "a=rtpmap:0", "a=fmtp:x 0-15"])
def test_a_malformed_rtpmap_or_fmtp_line_is_ignored_not_the_offer(line):
    assert answer_offer(parse_sdp(sdp(extra=line + "\r\n"))).codec == "PCMU"


@pytest.mark.parametrize("ptime", ["9" * 4400, "0", "100000", "-5", "x"])
def test_an_unusable_ptime_falls_back_to_20_ms(ptime):
    assert answer_offer(parse_sdp(sdp(extra=f"a=ptime:{ptime}\r\n"))).ptime == 20


def test_an_odd_rtp_port_is_usable_as_sipp_offers_one():
    assert answer_offer(parse_sdp(sdp("m=audio 38681 RTP/AVP 0"))).remote_port == 38681


def test_ipv6_and_hold_addresses_stay_usable():
    assert answer_offer(parse_sdp(sdp(connection="c=IN IP6 ::1"))).remote_host == "::1"
    assert answer_offer(parse_sdp(sdp(connection="c=IN IP4 0.0.0.0"))).direction == "recvonly"


def test_an_info_with_an_endless_duration_is_a_digit_of_unknown_length():
    core = Core("UDP")
    d = core.dialog
    info = message("INFO sip:sma@127.0.0.1 SIP/2.0",
                   f"Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-info\r\n"
                   f"From: <sip:+14255550199@127.0.0.1>;tag={d.from_tag}\r\n"
                   f"To: <sip:+14345550101@127.0.0.1>;tag={d.to_tag}\r\nCall-ID: {d.call_id}\r\n"
                   f"CSeq: 5 INFO\r\nContent-Type: application/dtmf-relay\r\n",
                   b"Signal=7\r\nDuration=" + b"9" * 5000 + b"\r\n")
    core.feed(info, PEER)
    assert [t.data.split(b"\r\n")[0] for t in core.sent] == [b"SIP/2.0 200 OK"]
    assert [(e.digit, e.duration_ms) for e in core.ua.events if isinstance(e, DtmfInfo)] == [("7", 0)]


def test_a_retransmitted_invite_after_the_call_ended_is_absorbed_not_a_new_call():
    """Found by the dialog-aware fuzzer: the INVITE sent again while its 200 was slow came in
    after the BYE and started a second call nobody would ever end."""
    core = Core("UDP")
    core.feed(fuzz._request("BYE", core.dialog, 99), PEER)
    core.feed(fuzz.TEMPLATES["INVITE"](fuzz.Ids("dialog@fuzz", "d1", "", "z9hG4bK-dialog", PEER[1], "UDP")), PEER)
    assert core.ep.active_dialogs() == 0 and not [e for e in core.ua.events if type(e).__name__ == "IncomingCall"][1:]
    core.pump(advance=40.0)  # timer L
    assert core.ep.active_transactions() == 0


@pytest.mark.parametrize("cseq", ["2147483648 INVITE", "4294967295 INVITE", "9999999999 INVITE"])
def test_a_cseq_of_2_to_the_31_or_more_is_malformed(cseq):
    with pytest.raises(SipParseError, match="bad CSeq"):
        parse_message(message("INVITE sip:a@127.0.0.1 SIP/2.0", BASE.format(n=1, cseq=cseq)))


INVITE_CRASHERS = [  # SDP that once made the stub's call task fail or its media tick raise
    sdp("m=audio " + "9" * 5000 + " RTP/AVP 0"), sdp("m=audio 70000 RTP/AVP 0"),
    sdp("m=audio 65535 RTP/AVP 0")]


def final_response(transport: str, port: int, data: bytes) -> bytes:
    """Send `data` to the stub; the start line of the first final response to it."""
    kind = socket.SOCK_STREAM if transport == "tcp" else socket.SOCK_DGRAM
    framer = StreamFramer()
    with socket.socket(socket.AF_INET, kind) as s:
        s.settimeout(10)
        s.connect((HOST, port))
        s.sendall(data)
        while True:
            chunk = s.recv(65536)
            for reply in framer.feed(chunk) if transport == "tcp" else [chunk]:
                if not reply.startswith(b"SIP/2.0 1"):
                    return reply.split(b"\r\n")[0]


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_the_live_stub_answers_what_once_crashed_it(stub, transport):
    empty_via = message("OPTIONS sip:sma@127.0.0.1 SIP/2.0", BASE.format(n=0, cseq="1 OPTIONS").replace(
        "Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-r0", "Via: "))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM if transport == "tcp" else socket.SOCK_DGRAM) as s:
        s.connect((HOST, stub.sip_port))
        s.sendall(empty_via)  # not answerable: nowhere to send the answer
        assert wait_until(lambda: any(e.reason == "empty Via header" for e in
                                      JournalView(stub.journal_json()).of(SipMalformed)))
    for n, body in enumerate(INVITE_CRASHERS, 1):
        invite = message("INVITE sip:+14345550101@127.0.0.1 SIP/2.0",
                         BASE.format(n=n, cseq="1 INVITE").replace(
                             "SIP/2.0/UDP", f"SIP/2.0/{transport.upper()}")
                         + "Content-Type: application/sdp\r\n", body)
        assert final_response(transport, stub.sip_port, invite) == b"SIP/2.0 488 Not Acceptable Here"
    assert not JournalView(stub.journal_json()).of(InternalError)


# ---- a bounded live run ------------------------------------------------------------------------
def test_fuzzing_the_live_stub_finds_no_crash_no_hang_no_leak_and_real_calls_succeed(stub, tmp_path):
    require_tool("sipp")

    def short_timers():  # T1 = 50 ms: the stub's SIP transactions run out within 3.2 s
        for transport in (stub.udp, stub.tcp):
            transport.endpoint.timers = Timers(t1=0.05)
    stub.run_in_loop(short_timers)
    with fuzz.SipFuzzer(stub, seed=20240611, workdir=tmp_path, calls_every=8, settle_s=15) as fuzzer:
        report = fuzzer.run(LIVE_CASES, max_seconds=30)
    r = report.to_json()
    assert (r["crashes"], r["tracebacks"], r["hangs"], r["errors"]) == (0, 0, 0, []), r
    assert r["cases"] == LIVE_CASES and r["udp_cases"] and r["tcp_cases"]
    assert r["calls_placed"] >= 3 and r["calls_succeeded"] == r["calls_placed"], r
    assert r["probes"] > r["batches"] and r["malformed_counted"] > LIVE_CASES / 4
    assert r["dialog_cases"] > LIVE_CASES / 10 and r["reinvites_answered"] > 0, r
    assert r["leaked"] == 0, r["leaks"]
    assert r["duration_s"] < 60
    assert not JournalView(stub.journal_json()).of(InternalError)


def test_cases_are_the_same_bytes_for_a_seed_and_stay_on_this_host():
    dialog = fuzz.Ids("c@h", "f", "t", "b", 5062, "UDP")
    first = [fuzz.case(7, i, dialog, 5062, "UDP") for i in range(300)]
    assert first == [fuzz.case(7, i, dialog, 5062, "UDP") for i in range(300)]
    assert first != [fuzz.case(8, i, dialog, 5062, "UDP") for i in range(300)]
    assert {name for name, _ in first} == set(fuzz.TEMPLATE_NAMES)
    assert not fuzz.sends_media_only_to_loopback(b"INVITE x\r\n\r\nv=0\r\nc=IN IP4 10.1.2.3\r\n")
    assert fuzz.sends_media_only_to_loopback(b"v=0\r\nc=IN IP4 127.0.0.9\r\nc=IN IP4 0.0.0.0\r\nc=IN IP6 ::1")
