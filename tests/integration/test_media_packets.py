"""Wire formats of RTP, RFC 4733 and RTCP, pinned by the hand-written fixtures in
tests/data/media (valid, truncated, invalid), and cross-checked with tshark's dissectors."""
from __future__ import annotations

import math
import subprocess

import pytest

from conftest import TEST_DATA, require_tool
from harness.media.rtcp import (Bye, ReceiverReport, ReportBlock, RtcpError, SenderReport,
                                SourceDescription, UnknownRtcp, build_compound, ntp_middle,
                                ntp_timestamp, parse_compound, rtcp_interval)
from harness.media.rtp import RtpError, RtpPacket, TelephoneEvent

DATA = TEST_DATA / "media"
E = math.e - 1.5  # RFC 3550 A.7 compensation


def fixture(name: str) -> bytes:
    return (DATA / name).read_bytes()


# ---- RTP ----------------------------------------------------------------------------------
def test_plain_pcmu_packet():
    data = fixture("rtp_pcmu.bin")
    p = RtpPacket.parse(data)
    assert (p.payload_type, p.sequence, p.timestamp, p.ssrc, p.marker) == (0, 0x1234, 1000, 0xDEADBEEF, False)
    assert p.payload == b"\xff" * 160 and p.csrc == () and p.extension is None
    assert p.build() == data


def test_marker_csrc_and_header_extension():
    data = fixture("rtp_marker_csrc_extension.bin")
    p = RtpPacket.parse(data)
    assert p.marker and p.payload_type == 8
    assert (p.sequence, p.timestamp) == (0xFFFF, 0xFFFFFFFF)
    assert p.csrc == (0x0A0B0C0D, 0x11121314)
    assert p.extension == (0xBEDE, bytes.fromhex("10aa0000"))
    assert p.payload == b"\xd5" * 4
    assert p.build() == data


def test_padding_is_stripped_and_rebuilt():
    data = fixture("rtp_padding.bin")
    p = RtpPacket.parse(data)
    assert p.payload == b"\x01\x02\x03" and p.padding == 4
    assert p.build() == data


@pytest.mark.parametrize("name, message", [
    ("rtp_truncated_header.bin", "too short"),
    ("rtp_truncated_csrc.bin", "CSRC"),
    ("rtp_truncated_extension.bin", "extension"),
    ("rtp_bad_version.bin", "version"),
    ("rtp_bad_padding.bin", "padding"),
])
def test_invalid_rtp_is_rejected_with_a_reason(name, message):
    with pytest.raises(RtpError, match=message):
        RtpPacket.parse(fixture(name))


def test_extension_must_be_whole_words():
    with pytest.raises(RtpError):
        RtpPacket(0, 1, 2, 3, extension=(0xBEDE, b"abc")).build()


# ---- RFC 4733 -----------------------------------------------------------------------------
def test_telephone_event_start_and_end():
    start = RtpPacket.parse(fixture("rtpevent_start.bin"))
    end = RtpPacket.parse(fixture("rtpevent_end.bin"))
    assert start.marker and start.payload_type == 101 and not end.marker
    assert start.timestamp == end.timestamp == 2000
    assert TelephoneEvent.parse(start.payload) == TelephoneEvent(5, False, 10, 160)
    ev = TelephoneEvent.parse(end.payload)
    assert ev == TelephoneEvent(5, True, 10, 800) and ev.digit == "5"
    assert ev.build() == end.payload


def test_truncated_telephone_event():
    with pytest.raises(RtpError):
        TelephoneEvent.parse(RtpPacket.parse(fixture("rtpevent_truncated.bin")).payload)


def test_non_dtmf_event_has_no_digit():
    assert TelephoneEvent(16, False, 0, 0).digit is None
    assert [TelephoneEvent(i, False, 0, 0).digit for i in range(16)] == list("0123456789*#ABCD")


# ---- RTCP ---------------------------------------------------------------------------------
def test_sender_report_with_block_and_cname():
    data = fixture("rtcp_sr_sdes.bin")
    sr, sdes = parse_compound(data)
    assert isinstance(sr, SenderReport) and isinstance(sdes, SourceDescription)
    assert (sr.ssrc, sr.ntp_timestamp, sr.rtp_timestamp, sr.packet_count, sr.octet_count) == \
        (0x11223344, 0xE3E2E1E080000000, 1000, 50, 8000)
    assert sr.reports == (ReportBlock(0x55667788, 64, 5, 0x10010, 12, 0xE1E08000, 65536),)
    assert sdes.cname(0x11223344) == b"a@127.0.0.1"
    assert build_compound([sr, sdes]) == data


def test_receiver_report_and_bye():
    data = fixture("rtcp_rr_bye.bin")
    rr, bye = parse_compound(data)
    assert rr == ReceiverReport(0x55667788, ())
    assert bye == Bye((0x55667788,), b"bye")
    assert build_compound([rr, bye]) == data


@pytest.mark.parametrize("name, message", [
    ("rtcp_truncated.bin", "longer than the datagram"),
    ("rtcp_bad_length.bin", "longer than the datagram"),
    ("rtcp_sdes_first.bin", "must start with SR or RR"),
    ("rtcp_bad_version.bin", "version"),
    ("rtcp_padding_not_last.bin", "padding"),
])
def test_invalid_rtcp_is_rejected_with_a_reason(name, message):
    with pytest.raises(RtcpError, match=message):
        parse_compound(fixture(name))


def test_negative_cumulative_loss_and_unknown_packets_round_trip():
    block = ReportBlock(1, 0, -3, 70000, 5, 0, 0)
    packets = [ReceiverReport(9, (block,)), UnknownRtcp(204, 1, b"\x00\x00\x00\x09name")]
    assert parse_compound(build_compound(packets)) == packets


def test_ntp_conversion():
    ntp = ntp_timestamp(1.5)  # 1970-01-01T00:00:01.5
    assert ntp >> 32 == 2208988801 and ntp & 0xFFFFFFFF == 1 << 31
    assert ntp_middle(ntp) == ((2208988801 & 0xFFFF) << 16) | 0x8000


def test_report_interval_follows_rfc3550_a7():
    # two members, both sending, 500 octets/s of RTCP, 100-octet reports: the 5 s minimum rules
    assert rtcp_interval(2, 2, 500, True, 100, False, 0.5) == pytest.approx(5 / E)
    assert rtcp_interval(2, 2, 500, True, 100, True, 0.5) == pytest.approx(2.5 / E)
    lo, hi = (rtcp_interval(2, 2, 500, True, 100, False, r) for r in (0.0, 0.999999))
    assert lo == pytest.approx(0.5 * 5 / E) and hi == pytest.approx(1.5 * 5 / E)
    # a large session is bandwidth-bound: 1000 members x 100 octets / (0.75 x 500 octets/s)
    assert rtcp_interval(1000, 1, 500, False, 100, False, 0.5) == \
        pytest.approx(999 * 100 / 375 / E)


# ---- the same bytes through tshark's dissectors -------------------------------------------
def test_tshark_dissects_the_fixtures_the_same_way(tmp_path):
    tshark = require_tool("tshark")
    from scapy.all import IP, UDP, Ether, wrpcap
    names = ["rtp_pcmu.bin", "rtp_marker_csrc_extension.bin", "rtpevent_end.bin",
             "rtcp_sr_sdes.bin", "rtcp_rr_bye.bin"]
    frames = [Ether() / IP(src="127.0.0.1", dst="127.0.0.1") /
              UDP(sport=7000, dport=5005 if name.startswith("rtcp") else 5004) / fixture(name)
              for name in names]
    pcap = tmp_path / "fixtures.pcap"
    wrpcap(str(pcap), frames)
    fields = ["rtp.seq", "rtp.timestamp", "rtp.ssrc", "rtp.marker", "rtp.cc", "rtpevent.event_id",
              "rtpevent.end_of_event", "rtpevent.duration", "rtcp.senderssrc", "rtcp.timestamp.rtp",
              "rtcp.sender.packetcount", "rtcp.ssrc.fraction", "rtcp.ssrc.cum_nr", "rtcp.ssrc.jitter",
              "rtcp.sdes.text", "rtcp.bye_reason_not_padded"]
    out = subprocess.run(
        [tshark, "-r", str(pcap), "-d", "udp.port==5004,rtp", "-d", "udp.port==5005,rtcp",
         "-o", "rtpevent.event_payload_type_value:101", "-T", "fields", "-E", "separator=|"]
        + [arg for f in fields for arg in ("-e", f)], capture_output=True, text=True, timeout=60)
    rows = [dict(zip(fields, line.split("|"))) for line in out.stdout.splitlines()]
    assert len(rows) == len(names), out.stderr
    pcmu, csrc, event, sr, rr = rows
    assert (pcmu["rtp.seq"], pcmu["rtp.timestamp"], pcmu["rtp.ssrc"]) == ("4660", "1000", "0xdeadbeef")
    assert (csrc["rtp.marker"], csrc["rtp.cc"], csrc["rtp.seq"]) == ("1", "2", "65535")
    assert (event["rtpevent.event_id"], event["rtpevent.end_of_event"], event["rtpevent.duration"]) == \
        ("5", "1", "800")
    assert (sr["rtcp.senderssrc"], sr["rtcp.timestamp.rtp"], sr["rtcp.sender.packetcount"]) == \
        ("0x11223344", "1000", "50")
    assert (sr["rtcp.ssrc.fraction"], sr["rtcp.ssrc.cum_nr"], sr["rtcp.ssrc.jitter"]) == ("64", "5", "12")
    assert sr["rtcp.sdes.text"] == "a@127.0.0.1"
    assert rr["rtcp.bye_reason_not_padded"] in ("bye", "")
