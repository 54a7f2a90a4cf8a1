"""The `analyze` report of a capture made here: ladder, tshark-like table, audio, DTMF."""
from __future__ import annotations

import subprocess

import numpy as np

from conftest import require_tool
from harness.media.g711 import ulaw_encode
from harness.media.rtp import RtpPacket, TelephoneEvent
from harness.wire.analysis import analyze_pcap
from harness.wire.report_text import render_analysis
from harness.testing.captures import CaptureBuilder, sdp_body, sip_message, tshark_stream_table

CALLER, CALLEE = ("127.0.0.1", 5060), ("127.0.0.1", 5080)
CALLER_RTP, CALLEE_RTP = ("127.0.0.1", 20000), ("127.0.0.1", 30000)
RTPMAP = {0: "PCMU/8000", 101: "telephone-event/8000"}
RATE = 8000


def frames(pcm: np.ndarray) -> list[bytes]:
    return [ulaw_encode(pcm[i:i + 160]) for i in range(0, len(pcm) - 159, 160)]


def call(tmp_path, hello: np.ndarray) -> str:
    """The callee plays 0.5 s of 440 Hz, 0.6 s of silence, hello.wav, then speech-like noise
    with a short pause; the caller sends silence with the digit 5 in it."""
    cb = CaptureBuilder()
    cb.udp(0.0, CALLER, CALLEE, sip_message("INVITE sip:+15550100@127.0.0.1 SIP/2.0", "c1",
                                            "1 INVITE", CALLER, sdp_body(*CALLER_RTP, RTPMAP)))
    cb.udp(0.01, CALLEE, CALLER, sip_message("SIP/2.0 200 OK", "c1", "1 INVITE", CALLEE,
                                             sdp_body(*CALLEE_RTP, RTPMAP)))
    cb.udp(0.02, CALLER, CALLEE, sip_message("ACK sip:+15550100@127.0.0.1 SIP/2.0", "c1", "1 ACK", CALLER))
    t = np.arange(int(0.5 * RATE)) / RATE
    noise = (np.random.default_rng(5).standard_normal(int(0.4 * RATE)) * 3000).astype(np.int16)
    noise[1600:2400] = 0                                        # a 100 ms pause in the "speech"
    plan = (frames((np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16))
            + [b"\xff" * 160] * 30 + frames(hello) + frames(noise))
    for i, payload in enumerate(plan):
        packet = RtpPacket(0, 100 + i, 160 * i, 0xCA11EE, payload)
        cb.udp(0.1 + 0.02 * i, CALLEE_RTP, CALLER_RTP, packet.build())
    for i in range(40):
        if 10 <= i < 15:
            event = TelephoneEvent(5, i == 14, 10, 160 * (i - 9)).build()
            packet = RtpPacket(101, i, 160 * 10, 0xCA11E4, event, marker=i == 10)
        else:
            packet = RtpPacket(0, i, 160 * i, 0xCA11E4, b"\xff" * 160)
        cb.udp(0.1 + 0.02 * i, CALLER_RTP, CALLEE_RTP, packet.build())
    cb.udp(3.0, CALLER, CALLEE, sip_message("BYE sip:+15550100@127.0.0.1 SIP/2.0", "c1", "2 BYE", CALLER))
    return cb.write(str(tmp_path / "call.pcap"))


def test_report_shows_ladder_table_audio_and_dtmf(tmp_path):
    hello = (np.random.default_rng(9).standard_normal(int(0.4 * RATE)) * 3000).astype(np.int16)
    path = call(tmp_path, hello)
    text = render_analysis(analyze_pcap(path), {"hello.wav": hello})
    assert "Call-ID: c1" in text and "INVITE (SDP)" in text and "BYE" in text
    tshark = subprocess.run([require_tool("tshark"), "-q", "-z", "rtp,streams", "-r", path],
                            capture_output=True, text=True, check=True).stdout
    assert tshark_stream_table(text) == tshark_stream_table(tshark)  # same layout, same numbers
    audio = text.split("\nAudio\n")[1].split("\n\n")[0].splitlines()
    assert audio[0].startswith("#1 127.0.0.1:30000 -> 127.0.0.1:20000  SSRC 0x00CA11EE  PCMU")
    assert audio[0].endswith("callee -> caller")
    assert [line.split(" s  ")[-1] for line in audio[1:5]] == [
        "tone 440 Hz (25 packets)", "silence (30 packets)",
        "prompt hello.wav from 0.000 s to 0.380 s of it (20 packets)", "other sound (20 packets)"]
    assert audio[1].lstrip().startswith("+0.100 s ..     +0.580 s")
    assert audio[5].endswith("callee")  # the caller's stream: silence around the event
    assert "silence (35 packets)" in audio[6]
    dtmf = text.split("DTMF digits (RFC 4733)\n")[1].splitlines()
    assert dtmf == ["        +0.300 s  '5'  100 ms  caller -> callee  127.0.0.1:20000 -> 127.0.0.1:30000"]


def test_report_without_prompts_or_sip(tmp_path):
    hello = (np.random.default_rng(9).standard_normal(int(0.4 * RATE)) * 3000).astype(np.int16)
    text = render_analysis(analyze_pcap(call(tmp_path, hello)))
    assert "prompt hello" not in text and "other sound (40 packets)" in text
    cb = CaptureBuilder()
    for i in range(10):
        packet = RtpPacket(8, i, 160 * i, 7, b"\xd5" * 160)
        cb.udp(0.02 * i, ("10.0.0.1", 4000), ("10.0.0.2", 4002), packet.build())
    text = render_analysis(analyze_pcap(cb.write(str(tmp_path / "bare.pcap"))))
    assert "SIP dialogs\n(none)" in text and "DTMF digits (RFC 4733)\n(none)" in text
    assert "#1 10.0.0.1:4000 -> 10.0.0.2:4002  SSRC 0x00000007  PCMA\n" in text
    assert "silence (10 packets)" in text
