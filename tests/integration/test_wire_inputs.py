"""The inputs real captures have (tests/data/wire/, made by make_fixtures.py), each against
tshark: the RTP stream table (with heuristics where there is no SDP), the SIP list, RTCP."""
from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from conftest import TEST_DATA, require_tool
from harness.cli import EXIT_USAGE, main
from harness.wire.analysis import analyze_pcap
from harness.wire.audio import dtmf_events, stream_pcm, tone_frequency
from harness.wire.calls import find_calls
from harness.wire.pcap_records import read_records
from harness.testing.captures import stream_table, tshark_stream_table
from test_wire_tshark import assert_same_as_tshark

DATA = TEST_DATA / "wire"
CALLS = ["call-ethernet.pcap", "call-vlan.pcap", "call-sll.pcap", "call-sll2.pcap", "call-null.pcap",
         "call-raw.pcap", "call-ipv6.pcap", "call-two-interfaces.pcapng", "call-tshark.pcapng",
         "call-editcap-usec.pcap"]
OTHERS = ["fragments.pcap", "sip-tcp.pcap", "sip-any-port.pcap", "g722.pcap"]


def tshark_sip(path: Path) -> list[tuple]:
    """Per frame, the SIP messages tshark lists in it (Call-ID, method or status, CSeq
    method), sorted; ICMP errors quoting SIP left out."""
    out = subprocess.run([require_tool("tshark"), "-r", str(path), "-Y", "sip && !icmp && !icmpv6",
                          "-T", "fields", "-E", "occurrence=a", "-e", "frame.number", "-e", "sip.Call-ID",
                          "-e", "sip.Method", "-e", "sip.Status-Code", "-e", "sip.CSeq.method"],
                         capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        frame, call_ids, methods, codes, cseqs = (line.split("\t") + [""] * 5)[:5]
        names = [n for n in methods.split(",") + codes.split(",") if n]
        cseq = cseqs.split(",")
        rows.append((int(frame), sorted(zip(call_ids.split(",") * len(names) if len(set(call_ids.split(","))) == 1
                                            else call_ids.split(","), sorted(names), sorted(cseq)))))
    return rows


def our_sip(path: Path) -> list[tuple]:
    frames: dict[int, list] = {}
    for m in analyze_pcap(str(path)).sip:
        name = getattr(m.message, "method", None) or str(m.message.status)
        frames.setdefault(m.last_number, []).append((m.message.call_id, name, m.message.cseq[1]))
    return [(frame, sorted((c, n, q) for c, n, q in zip([x[0] for x in items], sorted(x[1] for x in items),
                                                            sorted(x[2] for x in items))))
            for frame, items in sorted(frames.items())]


@pytest.mark.parametrize("name", CALLS + OTHERS)
def test_stream_table_and_sip_list_equal_tsharks(name):
    path = DATA / name
    assert_same_as_tshark(str(path))
    theirs = tshark_sip(path)
    assert theirs and our_sip(path) == theirs


def test_rtp_without_sdp_any_payload_type_equals_tsharks_heuristics():
    path = DATA / "rtp-no-sdp.pcap"
    table = assert_same_as_tshark(str(path), heuristic=True)
    assert len(table) == 6
    streams = analyze_pcap(str(path)).rtp_streams
    assert sorted(s.payload_types[0] for s in streams) == [0, 3, 8, 9, 18, 96]
    assert {s.found_by for s in streams} == {"heuristic"}


def test_the_same_call_on_every_link_type_gives_the_same_streams_and_digits():
    first = None
    for name in CALLS:
        a = analyze_pcap(str(DATA / name))
        summary = sorted((s.ssrc, s.stats.packets, s.stats.lost, [(e.digit, e.duration_ms) for e in dtmf_events(s)])
                         for s in a.rtp_streams)
        assert summary == (first or summary), name
        first = summary
    assert first == [(0x1A2B3C4D, 97, 3, [("5", 80.0)]), (0x5E6F7081, 90, 0, [])]


def test_pcapng_with_two_interfaces_of_two_link_types():
    records = read_records(DATA / "call-two-interfaces.pcapng")
    assert set(records.linktype.tolist()) == {1, 113}     # Ethernet and Linux cooked
    assert len(analyze_pcap(str(DATA / "call-two-interfaces.pcapng")).rtp_streams) == 2


def test_fragmented_invite_and_ipv6_200_ok_are_reassembled():
    a = analyze_pcap(str(DATA / "fragments.pcap"))
    invite = next(m for m in a.sip if m.message.call_id == "fragmented@sip-harness")
    assert invite.summary == "INVITE (SDP)" and len(invite.raw) > 1500
    assert invite.message.body.count(b"a=fmtp:") == 20
    v6 = [m for m in a.sip if m.message.call_id == "fragmented-v6@sip-harness"]
    assert [m.summary for m in v6] == ["INVITE (SDP)", "200 OK (INVITE) (SDP)"]
    assert not a.warnings


def test_sip_over_tcp_segmented_retransmitted_and_two_messages_in_one_segment():
    a = analyze_pcap(str(DATA / "sip-tcp.pcap"))
    assert [(m.transport, m.summary) for m in a.sip] == [
        ("tcp", "INVITE (SDP)"), ("tcp", "100 Trying (INVITE)"), ("tcp", "200 OK (INVITE) (SDP)"),
        ("tcp", "ACK"), ("tcp", "BYE"), ("tcp", "200 OK (BYE)")]
    assert a.sip[0].number < a.sip[0].last_number                 # three segments
    assert len(a.rtp_streams) == 2


def test_sip_on_ports_no_dissector_expects():
    a = analyze_pcap(str(DATA / "sip-any-port.pcap"))
    assert {m.src[1] for m in a.sip} == {15060, 7070} and len(a.rtp_streams) == 2


def test_g722_is_decoded_at_16_khz():
    a = analyze_pcap(str(DATA / "g722.pcap"))
    heard = []
    for s in a.rtp_streams:
        pcm, rate, _ = stream_pcm(s)
        assert rate == 16000 and len(pcm) >= 15000
        heard.append(round(tone_frequency(pcm[4000:6048], rate)))
    assert heard == [1000, 3000]


def test_a_capture_cut_short_is_analysed_up_to_the_cut_with_a_warning(capsys):
    path = DATA / "call-truncated.pcap"
    a = analyze_pcap(str(path))
    [warning] = a.warnings
    assert "cut short" in warning and f"the {a.frames} frames before it" in warning
    tshark = subprocess.run([require_tool("tshark"), "-q", "-z", "rtp,streams", "-r", str(path)],
                            capture_output=True, text=True)
    assert "cut short in the middle of a packet" in tshark.stderr   # tshark reads up to the cut too
    assert stream_table(a.rtp_streams) == tshark_stream_table(tshark.stdout) != {}
    assert main(["analyze", str(DATA / "call-truncated.pcap")]) == 0
    assert "warning: the file is cut short" in capsys.readouterr().err


def test_a_file_that_is_not_a_capture_is_one_clear_error(capsys):
    assert main(["analyze", str(DATA / "not-a-capture.pcap")]) == EXIT_USAGE
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines() == [
        f"sip-harness: {DATA / 'not-a-capture.pcap'}: {DATA / 'not-a-capture.pcap'}: not a pcap or pcapng file"]
    assert captured.out == ""


def test_icmp_port_unreachable_after_an_invite_belongs_to_the_call():
    a = analyze_pcap(str(DATA / "icmp-unreachable.pcap"))
    assert [e.summary for e in a.icmp] == ["ICMP Destination unreachable (Port unreachable) for INVITE"] * 2
    assert {e.quoted_call_id for e in a.icmp} == {"unreachable@sip-harness"}
    assert a.icmp[0].original_dst == ("198.51.100.20", 5080) and a.icmp[0].reporter == "198.51.100.20"
    [call] = find_calls(a)
    assert len(call.icmp) == 2 and call.final_status is None
    frames = subprocess.run([require_tool("tshark"), "-r", str(DATA / "icmp-unreachable.pcap"), "-Y",
                             "icmp.type == 3 && icmp.code == 3", "-T", "fields", "-e", "frame.number"],
                            capture_output=True, text=True, check=True).stdout.split()
    assert [e.number for e in a.icmp] == [int(f) for f in frames]


def tshark_rtcp(path: Path) -> list[dict]:
    """Per report block (and XR VoIP metrics block) what tshark's rtcp dissector shows."""
    pdml = subprocess.run([require_tool("tshark"), "-r", str(path), "-Y", "rtcp", "-T", "pdml",
                           "-o", "rtcp.show_roundtrip_calculation:TRUE", "-o", "rtcp.roundtrip_min_threshhold:0"],
                          capture_output=True, text=True, check=True).stdout
    blocks = []
    for packet in ET.fromstring(pdml).iter("packet"):
        frame = int(next(f.get("show") for f in packet.iter("field") if f.get("name") == "frame.number"))
        for proto in packet.iter("proto"):
            if proto.get("name") != "rtcp":
                continue
            sender = next((f.get("show") for f in proto if f.get("name") == "rtcp.senderssrc"), None)
            for sub in proto:
                show = sub.get("show") or ""
                if not (show.startswith("Source ") or show.startswith("Block ")):
                    continue
                fields = {f.get("name"): f.get("show") for f in sub.iter("field") if f.get("name")}
                if "rtcp.ssrc.fraction" in fields and show.startswith("Source"):
                    blocks.append({"frame": frame, "sender": int(sender, 16),
                                   "ssrc": int(fields["rtcp.ssrc.identifier"], 16),
                                   "fraction": int(fields["rtcp.ssrc.fraction"]),
                                   "cumulative": int(fields["rtcp.ssrc.cum_nr"]),
                                   "jitter": int(fields["rtcp.ssrc.jitter"]),
                                   "lsr": int(fields["rtcp.ssrc.lsr"]), "dlsr": int(fields["rtcp.ssrc.dlsr"]),
                                   "rtt": int(fields["rtcp.roundtrip-delay"]) if "rtcp.roundtrip-delay" in fields else None})
                elif "rtcp.xr.voipmetrics.rfactor" in fields:
                    blocks.append({"frame": frame, "xr": True,
                                   "ssrc": int(fields["rtcp.xr.media_ssrc"], 16) if "rtcp.xr.media_ssrc" in fields
                                   else int(fields["rtcp.ssrc.identifier"], 16),
                                   "loss": int(fields["rtcp.ssrc.fraction"]),
                                   "burst": int(fields["rtcp.xr.voipmetrics.burstdensity"]),
                                   "rtdelay": int(fields["rtcp.xr.voipmetrics.rtdelay"]),
                                   "rfactor": int(fields["rtcp.xr.voipmetrics.rfactor"])})
    return blocks


@pytest.mark.parametrize("name", ["call-ethernet.pcap", "call-ipv6.pcap", "call-two-interfaces.pcapng"])
def test_rtcp_values_equal_tsharks_rtcp_fields(name):
    a = analyze_pcap(str(DATA / name))
    theirs = tshark_rtcp(DATA / name)
    ours = [{"frame": r.number, "sender": r.reporter_ssrc, "ssrc": r.ssrc, "fraction": r.fraction_lost,
             "cumulative": r.cumulative_lost, "jitter": r.jitter, "lsr": r.lsr, "dlsr": r.dlsr,
             "rtt": None if r.rtt_ms is None else r.rtt_ms} for r in a.rtcp.receptions]
    ours += [{"frame": v.number, "xr": True, "ssrc": v.metrics.ssrc, "loss": v.metrics.loss_rate,
              "burst": v.metrics.burst_density, "rtdelay": v.metrics.round_trip_delay_ms,
              "rfactor": v.metrics.r_factor} for v in a.rtcp.voip]
    ours.sort(key=lambda b: (b["frame"], "xr" in b))
    assert len(ours) == len(theirs) == 5
    for mine, tshark in zip(ours, theirs):
        if mine.get("rtt") is not None:       # tshark prints whole milliseconds
            assert tshark["rtt"] is not None and abs(mine.pop("rtt") - tshark.pop("rtt")) < 1
        assert mine == tshark
    rtt = [r.rtt_ms for r in a.rtcp.receptions if r.rtt_ms is not None]
    assert rtt == [pytest.approx(45.5 - 2458 / 65.536)]     # the SR->RR gap less the DLSR
    assert [v.rtt_ms for v in a.rtcp.voip] == [pytest.approx(20.5 - 819 / 65.536)]  # RRTR -> DLRR


def test_per_stream_rtcp_and_quality_of_the_fixture_call():
    from harness.wire.calls import stream_quality
    a = analyze_pcap(str(DATA / "call-ethernet.pcap"))
    [call] = find_calls(a)
    assert (call.from_uri, call.to_uri, call.final_status) == (
        "sip:+14255550199@192.0.2.10", "sip:+14345550101@198.51.100.20", 200)
    caller = next(s for s in call.streams if s.ssrc == 0x1A2B3C4D)
    q = stream_quality(a, caller, call)
    assert [r.cumulative_lost for r in q.reception_reports] == [3, 3]
    assert q.quality.loss_source == "capture" and q.quality.ppl == pytest.approx(300 / 100)
    assert q.quality.delay_source == "rtcp" and q.quality.network_delay_ms == pytest.approx(np.mean(q.rtt_ms) / 2)
    assert 1 < q.quality.mos < 4.5


def test_the_text_report_lists_quality_and_rtcp_per_stream(capsys):
    assert main(["analyze", str(DATA / "call-ethernet.pcap"), "--no-words"]) == 0
    out = capsys.readouterr().out
    quality = out.split("Quality (ITU-T G.107 E-model) and RTCP\n")[1].split("\n\n")[0].splitlines()
    assert quality[0].startswith("#1 198.51.100.20:30000 -> 192.0.2.10:20000  SSRC 0x5E6F7081  MOS 4.39")
    assert "loss 3.0 % from the capture" in quality[2]
    assert quality[3] == "    RTCP: 2 reports, last 0.8 % lost lately, 3 in all, jitter 5.0 ms, RTT 8.0-8.0 ms"
    assert "Words heard" not in out
