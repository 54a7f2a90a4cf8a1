"""The SIP torture-test rules of RFC 4475 the stub must follow, each on a message written here
in the spirit of the RFC's (the section each one exercises is named): what the sans-IO core
answers, and what the live stub answers over UDP."""
from __future__ import annotations

import socket

import pytest

from harness.sip.endpoint import SipEndpoint
from harness.sip.events import IncomingCall, MalformedMessage
from harness.sip.message import parse_head, split_head
from harness.sip.sdp import answer_offer, build_answer, parse_sdp

HOST = "127.0.0.1"
PEER = (HOST, 5072)
SDP_BODY = ("v=0\r\no=torture 4410 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            "m=audio 41000 RTP/AVP 0 12\r\n")


def invite(*, start: str = "INVITE sip:+14345550101@127.0.0.1 SIP/2.0", extra: str = "",
           via: str | None = None, call_id: str = "torture-1",
           from_: str = '"Torture" <sip:+14255550199@127.0.0.1>;tag=t1',
           to: str = "<sip:+14345550101@127.0.0.1>", contact: str = "<sip:t@127.0.0.1:5072>",
           ctype: str | None = "application/sdp", body: str = SDP_BODY) -> bytes:
    via = via or f"SIP/2.0/UDP 127.0.0.1:5072;rport;branch=z9hG4bK-{call_id}"
    head = (f"{start}\r\nVia: {via}\r\nMax-Forwards: 70\r\nFrom: {from_}\r\nTo: {to}\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: {contact}\r\n{extra}")
    if ctype is not None:
        head += f"Content-Type: {ctype}\r\n"
    return (head + f"Content-Length: {len(body.encode())}\r\n\r\n" + body).encode()


def answer(data: bytes) -> tuple[int | None, Reply | None, list]:
    """Feed one datagram to a fresh core: (status of its final answer or None, that answer, events)."""
    ep = SipEndpoint(HOST, 5080, "UDP")
    ep.receive(data, PEER, 0.0)
    finals = [r for r in map(Reply, ep.take_transmits()) if r.status >= 200]
    return (finals[0].status if finals else None), (finals[0] if finals else None), ep.take_events()


class Reply:
    """A response as sent (read leniently: a 400 echoes the bad headers it refuses)."""

    def __init__(self, transmit):
        head = split_head(transmit.data)[0]
        start, self.headers = parse_head(head, strict=False)
        _, status, self.reason = start.split(" ", 2)
        self.status = int(status)


# ---- RFC 4475 §3.4.6: several values in a header that allows one ------------------------------
@pytest.mark.parametrize("name,value", [
    ("Call-ID", "torture-other"), ("CSeq", "2 INVITE"),
    ("From", "<sip:+14255550100@127.0.0.1>;tag=t2"), ("To", "<sip:+14345550102@127.0.0.1>"),
    ("Max-Forwards", "69")])
def test_a_single_valued_header_given_twice_is_a_400(name, value):
    status, resp, events = answer(invite(extra=f"{name}: {value}\r\n"))
    assert status == 400 and f"more than one {name}" in resp.reason
    assert [type(e) for e in events] == [MalformedMessage]


def test_two_values_in_one_to_line_are_a_400():
    status, _, _ = answer(invite(to="<sip:+14345550101@127.0.0.1>, <sip:+14345550102@127.0.0.1>"))
    assert status == 400


# ---- §3.1.2.6: unterminated quoted display name -----------------------------------------------
def test_an_unterminated_quoted_display_name_is_a_400():
    status, resp, _ = answer(invite(from_='"Torture <sip:+14255550199@127.0.0.1>;tag=t1'))
    assert status == 400 and "unterminated quoted display name" in resp.reason


# ---- §3.1.2.16: another protocol version ---------------------------------------------------------
def test_sip_7_0_is_answered_505():
    status, resp, events = answer(invite(start="INVITE sip:+14345550101@127.0.0.1 SIP/7.0"))
    assert (status, resp.reason.split(" (")[0]) == (505, "Version Not Supported")
    assert events[0].kind == "unsupported SIP version"


# ---- §3.4.4: a body that is not SDP; §3.4.14: an Accept without SDP ------------------------------
def test_an_invite_whose_body_is_not_sdp_gets_415_with_accept():
    status, resp, events = answer(invite(ctype="application/unknownformat", body="<xml/>"))
    assert status == 415 and resp.headers.get("accept") == "application/sdp"
    assert not [e for e in events if isinstance(e, IncomingCall)]


def test_a_compressed_body_gets_415_with_accept_encoding():
    status, resp, _ = answer(invite(extra="Content-Encoding: gzip\r\n"))
    assert status == 415 and resp.headers.get("accept-encoding") == "identity"


@pytest.mark.parametrize("accept", ["text/nobodyKnowsThis", "application/json, text/plain", ""])
def test_an_accept_that_excludes_sdp_gets_406(accept):
    status, resp, _ = answer(invite(extra=f"Accept: {accept}\r\n"))
    assert status == 406 and resp.headers.get("accept") == "application/sdp"


@pytest.mark.parametrize("accept", ["application/sdp", "application/*;q=0.5", "*/*",
                                    "text/html, Application/SDP;level=1"])
def test_an_accept_that_allows_sdp_reaches_the_application(accept):
    status, _, events = answer(invite(extra=f"Accept: {accept}\r\n"))
    assert status is None and [type(e) for e in events] == [IncomingCall]


# ---- §3.1.2.1: extraneous header field separators -------------------------------------------------
@pytest.mark.parametrize("kw", [{"via": "SIP/2.0/UDP 127.0.0.1:5072;branch=z9hG4bK-t;;,;,,"},
                                {"via": "SIP/2.0/UDP 127.0.0.1:5072;;branch=z9hG4bK-t"},
                                {"contact": '"T" <sip:t@127.0.0.1:5072>;;;;'},
                                {"from_": "<sip:+14255550199@127.0.0.1>;tag=t1;"}])
def test_extraneous_separators_are_a_400_or_dropped(kw):
    status, _, events = answer(invite(**kw))
    assert status in (400, None) and [type(e) for e in events] == [MalformedMessage]


# ---- §3.1.1.1: a short tortuous INVITE is valid; its odd SDP rejects only the video ----------------
TORTUOUS = (
    "INVITE sip:+14345550101;user=phone@127.0.0.1 SIP/2.0\r\n"
    "TO :\r\n sip:+14345550101@127.0.0.1 ;   x-odd    = 8a7b6c\r\n"
    "from   : \"T \\\"o\\\" R\" <sip:+14255550199@127.0.0.1>\r\n  ;\r\n tag = 3f3f\r\n"
    "Max-Forwards: 0068\r\ncall-id: tortuous.4475@127.0.0.1\r\nContent-Length   : {length}\r\n"
    "cseq: 0009\r\n  INVITE\r\nVia  : SIP  /   2.0\r\n /UDP\r\n    127.0.0.1:5072;rport;branch=z9hG4bK-tort\r\n"
    "s :\r\nNewFangledHeader:   newfangled value\r\n continued newfangled value\r\n"
    "UnknownHeaderWithUnusualValue: ;;,,;;,;\r\nContent-Type: application/sdp\r\n"
    "m:\"Quoted\\\\\" <sip:t@127.0.0.1:5072;transport=udp>\r\n\r\n{body}")
TORTUOUS_SDP = ("v=0\r\no=torture 29739 7272939 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
                "t=0 0\r\nm=audio 41000 RTP/AVP 0 12\r\nm=video 3227 RTP/AVP 31\r\na=rtpmap:31 LPC\r\n")


def tortuous() -> bytes:
    return TORTUOUS.format(length=len(TORTUOUS_SDP), body=TORTUOUS_SDP).encode()


def test_the_tortuous_invite_reaches_the_application_and_its_audio_is_answered():
    status, _, events = answer(tortuous())
    assert status is None and [type(e) for e in events] == [IncomingCall]
    offer = parse_sdp(events[0].request.body)
    audio = answer_offer(offer)
    assert (audio.codec, audio.remote_port) == ("PCMU", 41000)
    lines = build_answer(offer, audio, HOST, 20000, 1, 1).decode().splitlines()
    assert [l for l in lines if l.startswith("m=")] == ["m=audio 20000 RTP/AVP 0",
                                                        "m=video 0 RTP/AVP 31"]


# ---- the live stub, over UDP -------------------------------------------------------------------------
def final_over_udp(port: int, data: bytes) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(10)
        s.connect((HOST, port))
        s.sendall(data)
        while True:
            reply = s.recv(65536)
            if not reply.startswith(b"SIP/2.0 1"):
                return reply


def test_the_live_stub_answers_the_torture_rules(stub):
    cases = [(invite(call_id="live-1", extra="CSeq: 2 INVITE\r\n"), b"SIP/2.0 400"),
             (invite(call_id="live-2", start="INVITE sip:+14345550101@127.0.0.1 SIP/7.0"), b"SIP/2.0 505"),
             (invite(call_id="live-3", ctype="text/plain", body="hello"), b"SIP/2.0 415"),
             (invite(call_id="live-4", extra="Accept: text/plain\r\n"), b"SIP/2.0 406"),
             (invite(call_id="live-5", from_='"Open <sip:a@127.0.0.1>;tag=x'), b"SIP/2.0 400")]
    for data, expected in cases:
        assert final_over_udp(stub.sip_port, data).startswith(expected), data[:60]
    reply = final_over_udp(stub.sip_port, tortuous())
    assert reply.startswith(b"SIP/2.0 200"), reply[:200]
    assert b"m=video 0 RTP/AVP 31" in reply
