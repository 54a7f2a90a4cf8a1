"""SIP message parsing and serialization (RFC 3261 §7, §20), and SDP offer/answer."""
import pytest

from harness.sip.message import SipParseError, SipRequest, SipResponse, parse_message
from harness.sip.sdp import SdpError, answer_offer, build_sdp, parse_sdp

INVITE = (b"INVITE sip:+14345550101@127.0.0.1:5080 SIP/2.0\r\n"
          b"v: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-1;rport\r\n"
          b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-0,\r\n"
          b" SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK-00\r\n"
          b"f: \"Alice, A.\" <sip:+14255550199@127.0.0.1>;tag=abc\r\n"
          b"t: <sip:+14345550101@127.0.0.1>\r\n"
          b"i: call-1@127.0.0.1\r\n"
          b"CSeq: 7 INVITE\r\n"
          b"X-Test-Value: String\r\n"
          b"c: application/sdp\r\n"
          b"l: 4\r\n\r\nv=0\r\n")


def test_compact_forms_folding_and_comma_lists():
    msg = parse_message(INVITE)
    assert isinstance(msg, SipRequest) and msg.method == "INVITE"
    assert msg.call_id == "call-1@127.0.0.1"
    assert msg.cseq == (7, "INVITE")
    assert msg.headers.get("CONTENT-TYPE") == "application/sdp"
    assert msg.headers.get_all("via") == [
        "SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-1;rport",
        "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-0",
        "SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK-00"]
    assert msg.headers.get_all("from") == ['"Alice, A." <sip:+14255550199@127.0.0.1>;tag=abc']
    assert msg.body == b"v=0\r"[:4]


def test_round_trip():
    msg = parse_message(INVITE)
    assert parse_message(msg.serialize()) == msg
    resp = SipResponse(status=486, reason="Busy Here", headers=msg.headers.copy(), body=msg.body)
    assert parse_message(resp.serialize()) == resp


@pytest.mark.parametrize("data,reason", [
    (b"INVITE sip:a SIP/2.0\r\nCall-ID: x\r\n", "no blank line"),
    (b"INVITE sip:a SIP/3.0\r\nCall-ID: x\r\n\r\n", "bad request line"),
    (b"SIP/2.0 99 Odd\r\nCall-ID: x\r\n\r\n", "bad status code"),
    (INVITE.replace(b"CSeq: 7 INVITE", b"CSeq: seven INVITE"), "bad CSeq"),
    (INVITE.replace(b"i: call-1@127.0.0.1\r\n", b""), "missing Call-ID"),
    (INVITE.replace(b"l: 4", b"l: 40"), "Content-Length 40"),
    (INVITE.replace(b"X-Test-Value: String", b"X Test Value"), "malformed header"),
])
def test_malformed_messages_name_the_fault(data, reason):
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    assert reason in info.value.reason


def test_stream_transport_requires_content_length():
    with pytest.raises(SipParseError, match="Content-Length"):
        parse_message(INVITE.replace(b"l: 4\r\n", b""), stream=True)


OFFER = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
         b"m=audio 4000 RTP/AVP 96 8 0 120\r\na=rtpmap:96 opus/48000/2\r\n"
         b"a=rtpmap:120 telephone-event/8000\r\na=fmtp:120 0-16\r\na=ptime:20\r\na=sendrecv\r\n")


def test_answer_picks_the_offerers_first_supported_codec_and_telephone_event():
    answer = answer_offer(parse_sdp(OFFER))
    assert (answer.codec, answer.payload_type, answer.dtmf_payload_type) == ("PCMA", 8, 120)
    assert (answer.remote_host, answer.remote_port, answer.direction) == ("127.0.0.1", 4000, "sendrecv")
    body = build_sdp("127.0.0.1", 30000, 1, 1, answer.payload_type, answer.codec,
                     answer.dtmf_payload_type)
    again = parse_sdp(body).audio()
    assert again.formats == [8, 120] and again.codec_name(120) == "telephone-event"


def test_hold_offer_is_answered_recvonly():
    answer = answer_offer(parse_sdp(OFFER.replace(b"a=sendrecv", b"a=sendonly")))
    assert answer.direction == "recvonly"


def test_no_common_codec_is_refused():
    offer = OFFER.replace(b"96 8 0 120", b"96 120")
    with pytest.raises(SdpError, match="no common audio codec"):
        answer_offer(parse_sdp(offer))
