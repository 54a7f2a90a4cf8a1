"""SIP message parsing and serialization (RFC 3261 §7, §20, §25), URIs, TCP framing, and
SDP offer/answer; hypothesis properties over the parser."""
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.sip.endpoint import SipEndpoint
from harness.sip.framing import StreamFramer
from harness.sip.message import (SINGLE_VALUED, Headers, SipParseError, SipRequest, SipResponse,
                                 canonical_name, parse_message)
from harness.sip.sdp import (SdpError, answer_offer, answer_reoffer, build_answer, build_offer,
                             build_sdp, parse_sdp, read_answer)
from harness.sip.uri import NameAddr, SipUri, UriError, tag_of, uri_of
from harness.sip.via import Via, stamp_received

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
    (b"INVITE sip:a SIP/2.0 x\r\nCall-ID: x\r\n\r\n", "bad request line"),
    (b"INVITE sip:a HTTP/1.1\r\nCall-ID: x\r\n\r\n", "bad request line"),
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


# ---- headers, URIs, Via ---------------------------------------------------------------------
def test_repeated_headers_folding_and_case():
    raw = (b"OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nVIA: SIP/2.0/UDP h:1;branch=z9hG4bK-a\r\n"
           b"via: SIP/2.0/UDP h:2;branch=z9hG4bK-b\r\nfrom: <sip:x@h>;tag=1\r\nTo: <sip:a@h>\r\n"
           b"call-id: c\r\ncseq: 1 OPTIONS\r\nSubject: one\r\n\t two\r\n   three\r\n"
           b"Route: <sip:p1;lr>, <sip:p2;lr>\r\nRoute: <sip:p3;lr>\r\n\r\n")
    msg = parse_message(raw)
    assert [v.split(";")[0] for v in msg.headers.get_all("Via")] == ["SIP/2.0/UDP h:1", "SIP/2.0/UDP h:2"]
    assert msg.headers.get("subject") == "one two three"
    assert msg.headers.get_all("route") == ["<sip:p1;lr>", "<sip:p2;lr>", "<sip:p3;lr>"]
    assert msg.body == b""


def test_name_addr_and_uris():
    value = '"Alice <A>; \\"x\\"" <sip:+1425@127.0.0.1:5062;transport=tcp?subject=x>;tag=ab;lr'
    na = NameAddr.parse(value)
    assert na.display == '"Alice <A>; \\"x\\""' and na.tag == "ab" and dict(na.params)["lr"] is None
    uri = SipUri.parse(na.uri)
    assert (uri.user, uri.host, uri.port, uri.param("transport")) == ("+1425", "127.0.0.1", 5062, "tcp")
    assert uri.address == ("127.0.0.1", 5062)
    spec = NameAddr.parse("sip:bob@example.com;tag=9")  # addr-spec: the tag is a header param
    assert (spec.uri, spec.tag) == ("sip:bob@example.com", "9")
    assert SipUri.parse("sips:[::1]").address == ("::1", 5061)
    assert uri_of("<sip:a@b>") == "sip:a@b" and tag_of("<sip:a@b;tag=x>") is None
    with pytest.raises(UriError):
        SipUri.parse("tel:+1425")


def test_via_parsing_and_received_stamping():
    via = Via.parse("SIP/2.0/TCP 10.0.0.1:5070 ;branch=z9hG4bK-7;rport")
    assert (via.transport, via.sent_by, via.branch) == ("TCP", "10.0.0.1:5070", "z9hG4bK-7")
    msg = parse_message(INVITE)
    stamp_received(msg.headers, ("192.0.2.9", 40000))
    assert msg.headers.get_all("via")[0] == (
        "SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-1;rport=40000;received=192.0.2.9")
    assert len(msg.headers.get_all("via")) == 3


# ---- TCP framing ------------------------------------------------------------------------------
def test_framer_splits_and_joins_segments():
    one = parse_message(INVITE).serialize()
    framer = StreamFramer()
    assert framer.feed(one[:10]) == [] and framer.feed(one[10:] + b"\r\n" + one + one[:5]) == [one, one]
    assert framer.feed(one[5:]) == [one] and framer.error is None


@pytest.mark.parametrize("data,status", [
    (INVITE.replace(b"l: 4\r\n", b""), 400),
    (INVITE.replace(b"l: 4", b"l: 999999"), 513),
    (b"X" * 70000, 513),
])
def test_framer_refuses_unframeable_streams(data, status):
    framer = StreamFramer()
    assert framer.feed(data) == [] and framer.error.status == status
    assert framer.feed(INVITE) == []  # nothing after it can be trusted


# ---- SDP offer/answer -------------------------------------------------------------------------
def test_answer_rejects_other_streams_with_port_zero_in_the_offers_order():
    offer = parse_sdp(b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                      b"m=video 5000 RTP/AVP 31\r\nm=audio 0 RTP/AVP 0\r\n"
                      b"m=audio 4000 RTP/AVP 98 0\r\na=rtpmap:98 PCMU/16000\r\na=ptime:30\r\n"
                      b"m=image 6000 udptl t38\r\n")
    answer = answer_offer(offer)
    assert (answer.payload_type, answer.ptime, answer.dtmf_payload_type) == (0, 30, None)
    body = parse_sdp(build_answer(offer, answer, "127.0.0.1", 30000, 5, 2))
    assert [(m.media, m.port) for m in body.media] == [("video", 0), ("audio", 0), ("audio", 30000), ("image", 0)]
    assert body.media[3].format_text == "t38" and body.media[2].ptime == 30


def test_dynamic_telephone_event_and_old_style_hold():
    offer = OFFER.replace(b"c=IN IP4 127.0.0.1", b"c=IN IP4 0.0.0.0").replace(
        b"a=rtpmap:120 telephone-event/8000", b"a=rtpmap:120 telephone-event/8000\r\n"
                                              b"a=rtpmap:121 telephone-event/48000")
    answer = answer_offer(parse_sdp(offer))
    assert (answer.dtmf_payload_type, answer.direction, answer.sending) == (120, "recvonly", False)


def test_our_offer_and_the_answer_to_it():
    offer = build_offer("127.0.0.1", 40000, 1)
    assert parse_sdp(offer).audio().formats == [0, 8, 101]
    answer = parse_sdp(b"v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                       b"m=audio 7000 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendonly\r\n")
    got = read_answer(parse_sdp(offer), answer)
    assert (got.codec, got.dtmf_payload_type, got.remote_port, got.direction) == ("PCMA", 101, 7000, "recvonly")
    with pytest.raises(SdpError, match="rejected"):
        read_answer(parse_sdp(offer), parse_sdp(bytes(answer_body := b"v=0\r\nm=audio 0 RTP/AVP 0\r\n")))
    assert answer_body


def test_reoffer_keeps_codec_address_and_bumps_the_version():
    first = build_sdp("127.0.0.1", 30000, 77, 1, 0, "PCMU", 120)
    audio, body = answer_reoffer(parse_sdp(OFFER.replace(b"a=sendrecv", b"a=inactive")), first, "PCMU")
    again = parse_sdp(body)
    assert again.origin.split()[1:3] == ["77", "2"] and again.audio().port == 30000
    assert again.audio().direction == "inactive" and audio.codec == "PCMU"
    with pytest.raises(SdpError):
        answer_reoffer(parse_sdp(OFFER), first, "G722")


# ---- properties (hypothesis) ------------------------------------------------------------------
TOKEN_CHARS = string.ascii_letters + string.digits + ".!%*_+`'~-"
tokens = st.text(TOKEN_CHARS, min_size=1, max_size=10)
#: any character but CR and LF, among them controls and multi-byte UTF-8 (no surrogates)
line_chars = st.characters(min_codepoint=0, max_codepoint=0x3FFF, exclude_characters="\r\n")
values = st.text(line_chars, max_size=30).map(lambda v: v.strip(" \t"))
header_names = tokens.filter(lambda n: canonical_name(n).lower() not in SINGLE_VALUED)


@st.composite
def messages(draw):
    headers = Headers([("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-" + draw(tokens)),
                       ("From", f"<sip:{draw(tokens)}@h>;tag={draw(tokens)}"), ("To", "<sip:b@h>"),
                       ("Call-ID", draw(tokens))])
    method = draw(st.sampled_from(["INVITE", "ACK", "BYE"]) | tokens)
    headers.add("CSeq", f"{draw(st.integers(0, 2**31 - 1))} {method}")
    for name, value in draw(st.lists(st.tuples(header_names, values), max_size=6)):
        headers.add(name, value)
    headers.add("Content-Length", "0")
    body = draw(st.binary(max_size=64))
    headers.set("Content-Length", str(len(body)))
    if draw(st.booleans()):
        uri = draw(st.from_regex(r"sips?:[A-Za-z0-9@.:;=+-]{1,20}", fullmatch=True))
        return SipRequest(headers=headers, body=body, method=method, uri=uri)
    reason = draw(st.text(line_chars, max_size=20))
    return SipResponse(headers=headers, body=body, status=draw(st.integers(100, 699)), reason=reason)


@given(messages(), st.booleans())
def test_parse_inverts_serialize(msg, stream):
    assert parse_message(msg.serialize(), stream=stream) == msg


@given(st.binary(max_size=300))
def test_any_bytes_parse_or_raise_the_parsers_own_error(data):
    try:
        parse_message(data)
    except SipParseError:
        pass


@given(messages(), st.data())
def test_damaged_messages_parse_or_raise_the_parsers_own_error(msg, data):
    raw = bytearray(msg.serialize())
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(raw)))
        edit = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        byte = data.draw(st.sampled_from(b"\r\n :;<>\",\x00\xff0aZ"))
        if edit == "insert":
            raw.insert(pos, byte)
        elif pos < len(raw):
            if edit == "delete":
                del raw[pos]
            else:
                raw[pos] = byte
    for stream in (False, True):
        try:
            parse_message(bytes(raw), stream=stream)
        except SipParseError:
            pass
    endpoint = SipEndpoint("127.0.0.1", 5060)
    endpoint.receive(bytes(raw), ("127.0.0.1", 5062), 0.0)  # never raises either


@given(st.lists(messages(), min_size=1, max_size=4), st.data())
def test_framer_reassembles_any_segmentation(msgs, data):
    stream = b"".join(m.serialize() for m in msgs)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    framer, out = StreamFramer(), []
    for start, end in zip([0] + cuts, cuts + [len(stream)]):
        out += framer.feed(stream[start:end])
    assert [parse_message(m, stream=True) for m in out] == msgs


@given(st.text(max_size=300))
def test_any_text_parses_as_sdp_or_raises_sdp_error(text):
    try:
        parse_sdp(text)
    except SdpError:
        pass
