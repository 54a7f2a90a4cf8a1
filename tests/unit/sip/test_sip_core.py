"""The sans-IO SIP core on a virtual clock: transactions and timers A–K, dialogs of both
roles, CANCEL, re-INVITE, INFO, refusals (400/405/415/416/420/481/488/491/500/501/513)
and TCP framing. Every test runs in microseconds of real time."""
from __future__ import annotations

import pytest

from harness.sip.endpoint import SipEndpoint
from harness.sip.events import (CallAnswered, CallConfirmed, CallEnded, CallProgress,
                                DtmfInfo, IncomingCall, MalformedMessage, MediaUpdated, Transmit)
from harness.sip.message import SipRequest, SipResponse, parse_message
from harness.sip.sdp import build_answer, build_offer, answer_offer, parse_sdp
from harness.sip.transactions import Timers

PEER = ("127.0.0.1", 5062)
T1 = 0.5
OFFER = build_offer("127.0.0.1", 4000, 1, codecs=("PCMU",), dtmf_payload_type=120)


def request(method: str, *, call_id="c1", cseq=1, branch="z9hG4bK-1", to_tag=None,
            from_tag="peer", body=b"", extra: str = "", cseq_method=None,
            ctype="application/sdp") -> bytes:
    to = "<sip:+14345550101@127.0.0.1>" + (f";tag={to_tag}" if to_tag else "")
    head = (f"{method} sip:+14345550101@127.0.0.1:5060 SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:5062;branch={branch};rport\r\n"
            f"From: <sip:+14255550199@127.0.0.1>;tag={from_tag}\r\n"
            f"To: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {cseq_method or method}\r\n"
            f"Contact: <sip:peer@127.0.0.1:5062>\r\nMax-Forwards: 70\r\n{extra}")
    if body:
        head += f"Content-Type: {ctype}\r\n"
    return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


def response_to(req: SipRequest, status: int, reason="OK", to_tag="callee", body=b"") -> bytes:
    resp = req.reply(status, reason, to_tag)
    if status < 300 and req.method == "INVITE":
        resp.headers.add("Contact", "<sip:callee@127.0.0.1:5062>")
    resp.body = body
    return resp.serialize()


class Harness:
    """An endpoint with a virtual clock; `sent()` parses what it transmitted since last time."""

    def __init__(self, transport="UDP"):
        self.ep = SipEndpoint("127.0.0.1", 5060, transport, timers=Timers(t1=T1))
        self.now = 100.0

    def feed(self, data: bytes, source=PEER):
        self.ep.receive(data, source, self.now)
        return self.sent()

    def sent(self) -> list:
        return [parse_message(t.data) for t in self.ep.take_transmits() if t.data]

    def advance_to(self, t: float) -> list:
        """Run every timer up to `t`; return [(time, message)] in the order sent."""
        out = []
        while (deadline := self.ep.next_deadline()) is not None and deadline <= t:
            self.now = deadline
            self.ep.handle_timers(deadline)
            out += [(deadline, m) for m in self.sent()]
        self.now = t
        return out

    def events(self, kind=object) -> list:
        return [e for e in self.ep.take_events() if isinstance(e, kind)]

    def incoming(self, **kw) -> SipRequest:
        """Deliver an INVITE; returns it as the endpoint saw it."""
        self.feed(request("INVITE", body=OFFER, **kw))
        (event,) = self.events(IncomingCall)
        return event.request

    def answered(self, **kw) -> list:
        self.incoming(**kw)
        offer = parse_sdp(OFFER)
        answer = build_answer(offer, answer_offer(offer), "127.0.0.1", 30000, 1, 1)
        self.ep.answer(kw.get("call_id", "c1"), answer, self.now)
        return self.sent()

    def confirmed(self, **kw) -> str:
        (ok,) = self.answered(**kw)
        tag = parse_message(ok.serialize()).headers.get("to").split("tag=")[1]
        self.feed(request("ACK", branch="z9hG4bK-ack", to_tag=tag, **kw))
        assert self.events(CallConfirmed)
        return tag


def statuses(messages) -> list:
    return [m.status if isinstance(m, SipResponse) else m.method for m in messages]


# ---- UAS: server INVITE transaction and dialog ---------------------------------------------
def test_invite_gets_100_then_rings():
    h = Harness()
    (trying,) = h.feed(request("INVITE", body=OFFER))
    assert trying.status == 100 and "tag=" not in trying.headers.get("to")
    (event,) = h.events(IncomingCall)
    assert event.source == PEER
    assert event.request.headers.get("via").endswith(";rport=5062")
    h.ep.ring("c1")
    (ringing,) = h.sent()
    assert ringing.status == 180 and "tag=" in ringing.headers.get("to")
    assert ringing.headers.get("contact") == "<sip:sma@127.0.0.1:5060;transport=udp>"


def test_answer_is_retransmitted_on_timer_g_until_the_ack():
    h = Harness()
    (ok,) = h.answered()
    assert ok.status == 200 and ok.body.startswith(b"v=0")
    retransmits = h.advance_to(100 + 4.0)
    # T1, 2T1, 4T1, then every T2 (4 s): at 0.5, 1.5, 3.5
    assert [round(t - 100, 3) for t, _ in retransmits] == [0.5, 1.5, 3.5]
    assert all(m.status == 200 for _, m in retransmits)
    tag = ok.headers.get("to").split("tag=")[1]
    h.feed(request("ACK", branch="z9hG4bK-ack", to_tag=tag))
    assert h.events(CallConfirmed) == [CallConfirmed("c1")]
    assert h.advance_to(200) == []


def test_timer_h_ends_the_call_with_a_bye_and_tells_the_layer_above():
    h = Harness()
    h.answered()
    sent = h.advance_to(100 + 64 * T1)
    assert [m.status for _, m in sent if isinstance(m, SipResponse)] == [200] * 10
    assert [m.method for _, m in sent if isinstance(m, SipRequest)] == ["BYE"]
    assert h.events(CallEnded) == [CallEnded("c1", "local", "no ACK (timer H)", 408)]
    (_, bye) = sent[-1]
    h.feed(response_to(bye, 200))
    assert h.events() == [] and h.ep.active_dialogs() == 0


def test_tcp_retransmits_nothing_but_timer_h_still_applies():
    h = Harness("TCP")
    h.feed(request("INVITE", body=OFFER).replace(b"UDP", b"TCP"))
    h.events()
    h.ep.answer("c1", OFFER, h.now)
    h.sent()
    sent = h.advance_to(100 + 64 * T1)
    assert statuses(m for _, m in sent) == ["BYE"]
    assert h.events(CallEnded)[0].reason == "no ACK (timer H)"


def test_invite_retransmission_gets_the_last_response_again():
    h = Harness()
    h.incoming()
    h.sent()
    h.ep.ring("c1")
    h.sent()
    assert statuses(h.feed(request("INVITE", body=OFFER))) == [180]
    assert h.events() == []


def test_reject_then_ack_is_absorbed_by_the_transaction():
    h = Harness()
    h.incoming()
    h.sent()
    h.ep.reject("c1", 486, h.now)
    (busy,) = h.sent()
    assert busy.status == 486 and h.events(CallEnded) == [CallEnded("c1", "local", "rejected 486", 486)]
    tag = busy.headers.get("to").split("tag=")[1]
    assert h.feed(request("ACK", to_tag=tag)) == []  # same branch: the INVITE's transaction
    assert h.advance_to(200) == []  # no timer G after the ACK
    assert h.ep.active_transactions() == 0


def test_cancel_gets_200_and_the_invite_487():
    h = Harness()
    h.incoming()
    h.sent()
    sent = h.feed(request("CANCEL"))
    assert [(m.status, m.cseq[1]) for m in sent] == [(200, "CANCEL"), (487, "INVITE")]
    assert sent[0].headers.get("to") == sent[1].headers.get("to")
    assert h.events(CallEnded) == [CallEnded("c1", "remote", "CANCEL", 487)]
    assert statuses(h.feed(request("CANCEL"))) == [200]  # retransmission, same answer
    assert statuses(h.feed(request("CANCEL", branch="z9hG4bK-other"))) == [481]


def test_a_cancel_with_an_unsupported_require_is_not_refused_with_420():
    """RFC 3261 §8.2.2.3: a UAS must not answer a CANCEL with 420 for its Require."""
    h = Harness()
    h.incoming()
    h.sent()
    sent = h.feed(request("CANCEL", extra="Require: 100rel\r\n"))
    assert [(m.status, m.cseq[1]) for m in sent] == [(200, "CANCEL"), (487, "INVITE")]
    assert h.events(CallEnded) == [CallEnded("c1", "remote", "CANCEL", 487)]


def test_bye_ends_the_call_and_its_retransmission_is_answered_by_timer_j():
    h = Harness()
    tag = h.confirmed()
    bye = request("BYE", cseq=2, branch="z9hG4bK-bye", to_tag=tag)
    assert statuses(h.feed(bye)) == [200]
    assert h.events(CallEnded) == [CallEnded("c1", "remote", "BYE", 0)]
    assert statuses(h.feed(bye)) == [200]
    h.advance_to(100 + 64 * T1 + 1)
    assert statuses(h.feed(bye)) == [481]


def test_bye_on_an_early_dialog_gets_200_and_the_invite_487():
    h = Harness()
    h.incoming()
    h.ep.ring("c1")
    ringing = h.sent()[-1]
    tag = ringing.headers.get("to").split("tag=")[1]
    sent = h.feed(request("BYE", cseq=2, branch="z9hG4bK-bye", to_tag=tag))
    assert [(m.status, m.cseq[1]) for m in sent] == [(200, "BYE"), (487, "INVITE")]


def test_hangup_before_the_answer_rejects_with_480():
    h = Harness()
    h.incoming()
    h.sent()
    h.ep.hangup("c1", h.now)
    assert statuses(h.sent()) == [480]
    assert h.events() == [CallEnded("c1", "local", "rejected 480", 480)]


def test_hangup_waits_for_the_ack_before_its_bye():
    h = Harness()
    (ok,) = h.answered()
    h.ep.hangup("c1", h.now)
    assert h.sent() == []
    tag = ok.headers.get("to").split("tag=")[1]
    (bye,) = h.feed(request("ACK", branch="z9hG4bK-ack", to_tag=tag))
    assert bye.method == "BYE" and bye.uri == "sip:peer@127.0.0.1:5062"
    assert h.events() == []
    h.feed(response_to(bye, 200))
    assert h.events() == [CallEnded("c1", "local", "BYE", 200)]


def test_our_bye_is_retransmitted_on_timer_e_and_given_up_on_timer_f():
    h = Harness()
    h.confirmed()
    h.ep.hangup("c1", h.now)
    (bye,) = h.sent()
    assert bye.cseq == (1, "BYE") and bye.headers.get("to").endswith("tag=peer")
    sent = h.advance_to(100 + 64 * T1)
    assert [round(t - 100, 3) for t, _ in sent] == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5,
                                                    23.5, 27.5, 31.5]
    assert h.events() == [CallEnded("c1", "local", "BYE not answered (timer F)", 408)]


# ---- re-INVITE, INFO, OPTIONS ------------------------------------------------------------------
def reinvite(tag, cseq, direction=b"sendrecv", body=None, branch=None):
    sdp = OFFER.replace(b"a=sendrecv", b"a=" + direction) if body is None else body
    return request("INVITE", cseq=cseq, branch=branch or f"z9hG4bK-re{cseq}", to_tag=tag, body=sdp)


def test_hold_and_resume():
    h = Harness()
    tag = h.confirmed()
    (ok,) = h.feed(reinvite(tag, 2, b"sendonly"))
    answer = parse_sdp(ok.body)
    assert ok.status == 200 and answer.audio().direction == "recvonly"
    assert answer.audio().port == 30000 and answer.origin.split()[2] == "2"
    (update,) = h.events(MediaUpdated)
    assert update.held and update.audio.direction == "recvonly" and update.sdp.endswith(b"a=sendonly\r\n")
    h.feed(request("ACK", cseq=2, branch="z9hG4bK-ack2", to_tag=tag))
    assert h.advance_to(110) == []  # that 200 was acknowledged
    (ok,) = h.feed(reinvite(tag, 3, b"inactive"))
    assert parse_sdp(ok.body).audio().direction == "inactive"
    (ok,) = h.feed(reinvite(tag, 4))
    assert parse_sdp(ok.body).audio().direction == "sendrecv"
    assert [e.held for e in h.events(MediaUpdated)] == [True, False]


def test_reinvite_with_another_codec_gets_488_and_the_call_goes_on():
    h = Harness()
    tag = h.confirmed()
    pcma = build_offer("127.0.0.1", 4000, 1, codecs=("PCMA",))
    (resp,) = h.feed(reinvite(tag, 2, body=pcma))
    assert resp.status == 488 and "no common audio codec" in resp.reason
    assert h.ep.dialog_state("c1") == "confirmed" and h.events() == []


def test_reinvite_before_the_ack_gets_491_and_without_sdp_gets_our_offer():
    h = Harness()
    (ok,) = h.answered()
    tag = ok.headers.get("to").split("tag=")[1]
    assert statuses(h.feed(reinvite(tag, 2))) == [491]
    h.feed(request("ACK", branch="z9hG4bK-ack", to_tag=tag))
    (again,) = h.feed(request("INVITE", cseq=3, branch="z9hG4bK-re3", to_tag=tag))
    assert again.status == 200 and again.body == ok.body
    assert h.events(MediaUpdated) == []


def test_reinvite_unacknowledged_ends_the_call_at_timer_h():
    h = Harness()
    tag = h.confirmed()
    h.feed(reinvite(tag, 2, b"sendonly"))
    sent = h.advance_to(h.now + 64 * T1)
    assert statuses(m for _, m in sent)[-1] == "BYE"
    assert h.events(CallEnded) == [CallEnded("c1", "local", "no ACK (timer H)", 408)]


def test_info_dtmf_relay_and_unsupported_bodies():
    h = Harness()
    tag = h.confirmed()
    info = request("INFO", cseq=2, branch="z9hG4bK-i2", to_tag=tag,
                   ctype="application/dtmf-relay", body=b"Signal=5\r\nDuration=160\r\n")
    assert statuses(h.feed(info)) == [200]
    assert h.events() == [DtmfInfo("c1", "5", 160)]
    other = request("INFO", cseq=3, branch="z9hG4bK-i3", to_tag=tag, ctype="text/plain", body=b"hi")
    (resp,) = h.feed(other)
    assert resp.status == 415 and "application/dtmf-relay" in resp.headers.get("accept")


def test_out_of_order_cseq_gets_500():
    h = Harness()
    tag = h.confirmed()
    (resp,) = h.feed(request("INFO", cseq=1, branch="z9hG4bK-old", to_tag=tag))
    assert resp.status == 500


@pytest.mark.parametrize("data,status,check", [
    (request("OPTIONS"), 200, ("allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO")),
    (request("REGISTER"), 405, ("allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO")),
    (request("SUBSCRIBE"), 405, None),
    (request("FOO"), 501, None),
    (request("INVITE", extra="Require: 100rel, timer\r\n", body=OFFER), 420,
     ("unsupported", "100rel, timer")),
    (request("OPTIONS").replace(b"OPTIONS sip:+14345550101@127.0.0.1:5060", b"OPTIONS tel:+14345550101"),
     416, None),
    (request("BYE", to_tag="nobody"), 481, None),
    (request("INFO", to_tag="nobody"), 481, None),
])
def test_refusals(data, status, check):
    h = Harness()
    (resp,) = h.feed(data)
    assert resp.status == status
    if check:
        assert resp.headers.get(check[0]) == check[1]
    assert h.events() == []


# ---- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize("data,reason", [
    (request("INVITE").replace(b"Call-ID: c1\r\n", b""), "missing Call-ID header"),
    (request("INVITE").replace(b"CSeq: 1 INVITE", b"CSeq: 1 BYE"), "CSeq method BYE does not match"),
    (request("INVITE").replace(b"CSeq: 1 INVITE", b"CSeq: x INVITE"), "bad CSeq"),
    (request("INVITE").replace(b"Max-Forwards: 70", b"Max Forwards 70"), "malformed header line"),
    (request("INVITE").replace(b"From: <sip:+14255550199@127.0.0.1>", b"From: <sip:unclosed"),
     "malformed From header"),
    (request("INVITE").replace(b"Content-Length: 0", b"Content-Length: 99"), "Content-Length 99"),
])
def test_malformed_requests_get_400_naming_the_fault(data, reason):
    h = Harness()
    h.ep.receive(data, PEER, h.now)
    (out,) = h.ep.take_transmits()
    status_line, _, rest = out.data.partition(b"\r\n")
    assert status_line.startswith(b"SIP/2.0 400 Bad Request (") and reason.encode() in status_line
    assert b"Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-1;rport" in rest
    (event,) = h.events()
    assert isinstance(event, MalformedMessage) and event.answered and reason in event.reason
    assert h.ep.malformed_count == 1


def test_garbage_is_dropped_and_counted_and_other_calls_go_on():
    h = Harness()
    tag = h.confirmed()
    for junk in (b"\x00\xff" * 50, b"hello", b"SIP/2.0 200 OK\r\n\r\n",
                 request("ACK").replace(b"Call-ID: c1\r\n", b"")):
        assert h.feed(junk) == []
    assert h.ep.malformed_count == 4
    assert all(not e.answered for e in h.events(MalformedMessage))
    assert statuses(h.feed(request("BYE", cseq=2, branch="z9hG4bK-b", to_tag=tag))) == [200]


def test_oversized_message_gets_513():
    h = Harness()
    h.ep.max_message_bytes = 2000
    (resp,) = h.feed(request("OPTIONS", extra="X-Pad: " + "a" * 3000 + "\r\n"))
    assert resp.status == 513 and "exceeds 2000" in resp.reason


# ---- TCP framing --------------------------------------------------------------------------------
def tcp(data: bytes) -> bytes:
    return data.replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP")


def test_tcp_several_messages_in_one_segment_and_one_across_segments():
    h = Harness("TCP")
    two = tcp(request("OPTIONS", branch="z9hG4bK-a")) + b"\r\n\r\n" + tcp(request("OPTIONS", branch="z9hG4bK-b"))
    assert statuses(h.feed(two)) == [200, 200]
    invite = tcp(request("INVITE", body=OFFER))
    for i in range(len(invite)):
        h.ep.receive(invite[i:i + 1], PEER, h.now)
    assert [type(e) for e in h.events()] == [IncomingCall]
    assert statuses(h.sent()) == [100]


def test_tcp_stream_without_content_length_gets_400_and_is_closed():
    h = Harness("TCP")
    h.ep.receive(tcp(request("OPTIONS")).replace(b"Content-Length: 0\r\n", b""), PEER, h.now)
    out = h.ep.take_transmits()
    assert parse_message(out[0].data).status == 400 and out[-1] == Transmit(b"", PEER, close=True)
    assert "missing Content-Length" in parse_message(out[0].data).reason


# ---- UAC ----------------------------------------------------------------------------------------
class Uac(Harness):
    def call(self) -> tuple[str, SipRequest]:
        call_id = self.ep.invite("sip:+15550100@127.0.0.1:5062", OFFER, self.now,
                                 from_uri="sip:+14255550199@127.0.0.1",
                                 headers=[("X-Leg", "B")])
        (invite,) = self.sent()
        return call_id, invite


def test_uac_call_answered_acked_and_hung_up():
    h = Uac()
    call_id, invite = h.call()
    assert invite.headers.get("x-leg") == "B" and invite.body == OFFER
    assert h.feed(response_to(invite, 100, "Trying", to_tag=None)) == []
    h.feed(response_to(invite, 180, "Ringing"))
    assert h.events() == [CallProgress(call_id, 180, "Ringing", b"")]
    answer = build_answer(parse_sdp(OFFER), answer_offer(parse_sdp(OFFER)), "127.0.0.1", 6000, 9, 1)
    ok = response_to(invite, 200, body=answer).replace(b"Content-Length", b"Record-Route: <sip:p1;lr>\r\nContent-Length")
    (ack,) = h.feed(ok)
    assert ack.method == "ACK" and ack.uri == "sip:callee@127.0.0.1:5062"
    assert ack.headers.get("route") == "<sip:p1;lr>" and ack.cseq == (1, "ACK")
    (answered,) = h.events()
    assert isinstance(answered, CallAnswered) and answered.audio.remote_port == 6000
    assert answered.audio.dtmf_payload_type == 120
    assert statuses(h.feed(ok)) == ["ACK"]  # 2xx retransmitted: ACK again
    h.ep.hangup(call_id, h.now)
    (bye,) = h.sent()
    assert bye.cseq == (2, "BYE") and bye.headers.get("to").endswith("tag=callee")
    h.feed(response_to(bye, 200))
    assert h.events() == [CallEnded(call_id, "local", "BYE", 200)]


def test_uac_invite_retransmitted_on_timer_a_until_timer_b():
    h = Uac()
    call_id, _ = h.call()
    sent = h.advance_to(h.now + 64 * T1)
    assert [round(t - 100, 3) for t, _ in sent] == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert h.events() == [CallEnded(call_id, "local", "no answer (timer B)", 408)]


def test_uac_failure_is_acked_on_the_invite_branch():
    h = Uac()
    call_id, invite = h.call()
    busy = response_to(invite, 486, "Busy Here")
    (ack,) = h.feed(busy)
    assert ack.method == "ACK" and ack.headers.get("via") == invite.headers.get("via")
    assert h.events() == [CallEnded(call_id, "remote", "486 Busy Here", 486)]
    assert statuses(h.feed(busy)) == ["ACK"]  # timer D absorbs the retransmission


def test_uac_cancel_waits_for_a_provisional_response():
    h = Uac()
    call_id, invite = h.call()
    h.ep.hangup(call_id, h.now)
    assert h.sent() == []
    (cancel,) = h.feed(response_to(invite, 100, "Trying", to_tag=None))
    assert cancel.method == "CANCEL" and cancel.headers.get("via") == invite.headers.get("via")
    h.feed(response_to(cancel, 200))
    (ack,) = h.feed(response_to(invite, 487, "Request Terminated"))
    assert ack.method == "ACK"
    assert h.events() == [CallEnded(call_id, "local", "CANCEL", 487)]


def test_uac_answer_crossing_the_cancel_is_acked_then_hung_up():
    h = Uac()
    call_id, invite = h.call()
    h.feed(response_to(invite, 180, "Ringing"))
    h.events()
    h.ep.hangup(call_id, h.now)
    assert statuses(h.sent()) == ["CANCEL"]
    answer = build_offer("127.0.0.1", 6000, 1, codecs=("PCMU",))
    sent = h.feed(response_to(invite, 200, body=answer))
    assert statuses(sent) == ["ACK", "BYE"]
    h.feed(response_to(sent[1], 200))
    assert h.events() == [CallEnded(call_id, "local", "BYE", 200)]


def test_uac_cancel_never_answered_ends_on_timer_b():
    h = Uac()
    call_id, invite = h.call()
    h.feed(response_to(invite, 180, "Ringing"))
    h.events()
    h.ep.hangup(call_id, h.now)
    h.sent()
    h.advance_to(h.now + 64 * T1)
    assert h.events() == [CallEnded(call_id, "local", "CANCEL not answered (timer B)", 408)]


def test_uac_unusable_answer_is_hung_up():
    h = Uac()
    call_id, invite = h.call()
    pcma = build_offer("127.0.0.1", 6000, 1, codecs=("PCMA",))
    assert statuses(h.feed(response_to(invite, 200, body=pcma))) == ["ACK", "BYE"]
    (ended,) = h.events()
    assert ended.status == 488 and "unusable SDP answer" in ended.reason
