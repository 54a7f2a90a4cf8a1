"""The switch check on synthetic captures with controlled packet times."""
from __future__ import annotations

import numpy as np

from harness.media.g711 import ulaw_encode
from harness.media.rtp import RtpPacket
from harness.wire.analysis import analyze_pcap
from harness.wire.switch import check_switch
from harness.testing.captures import CaptureBuilder, sdp_body, sip_message

CALLER, STUB = ("127.0.0.1", 5060), ("127.0.0.1", 5080)
CALLER_RTP, STUB_RTP = ("127.0.0.1", 20000), ("127.0.0.1", 20002)
HTTP_CLIENT, API = ("127.0.0.1", 41000), ("127.0.0.1", 8080)
UPDATE = (b"POST /sip-media-applications/sma-1/calls/tx-1 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
          b"Content-Length: 2\r\n\r\n{}")


def prompt(seed: int, seconds: float, lead_silence: float) -> np.ndarray:
    x = (np.random.default_rng(seed).standard_normal(int(seconds * 8000)) * 3000).astype(np.int16)
    x[:int(lead_silence * 8000)] = 0
    return x


PROMPTS = {"welcome.wav": prompt(1, 0.6, 0.04), "goodbye.wav": prompt(2, 0.5, 0.1)}


def frames(name: str) -> list[bytes]:
    pcm = PROMPTS[name]
    pcm = np.concatenate([pcm, np.zeros(-len(pcm) % 160, np.int16)])
    return [ulaw_encode(pcm[i:i + 160]) for i in range(0, len(pcm), 160)]


def capture(tmp_path, plan: list[bytes], request_at: float, ssrc_change_at: int | None = None,
            seq_jump_at: int | None = None, drop: set[int] = frozenset()):
    """The stub->caller stream carries `plan` from t=0.1 s, one packet every 20 ms; the
    packets numbered in `drop` are lost on the wire."""
    cb = CaptureBuilder()
    cb.udp(0.0, CALLER, STUB, sip_message("INVITE sip:x@127.0.0.1 SIP/2.0", "c", "1 INVITE", CALLER,
                                          sdp_body(*CALLER_RTP, {0: "PCMU/8000"})))
    cb.udp(0.01, STUB, CALLER, sip_message("SIP/2.0 200 OK", "c", "1 INVITE", STUB,
                                           sdp_body(*STUB_RTP, {0: "PCMU/8000"})))
    ssrc, seq = 0x51A5, 4000
    for i, payload in enumerate(plan):
        if i == ssrc_change_at:
            ssrc = 0xBEEF
        if i == seq_jump_at:
            seq += 5
        packet = RtpPacket(0, seq + i, 800 + 160 * i, ssrc, payload)
        if i not in drop:
            cb.udp(0.1 + 0.02 * i, STUB_RTP, CALLER_RTP, packet.build())
    cb.tcp(request_at, HTTP_CLIENT, API, UPDATE)
    cb.tcp(request_at + 0.003, API, HTTP_CLIENT, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    a = analyze_pcap(cb.write(str(tmp_path / "switch.pcap")))
    [request] = a.update_requests("tx-1")
    return a, a.streams(src=STUB_RTP)[0], request


def test_switch_detected_with_latency_from_the_request_packet(tmp_path):
    welcome = frames("welcome.wav")                     # 30 frames
    plan = welcome + welcome[:12] + frames("goodbye.wav") + [b"\xff" * 160] * 5
    # packet 42 (the first of goodbye.wav) leaves at 0.1 + 0.84 = 0.94 s
    a, stream, request = capture(tmp_path, plan, request_at=0.9137)
    result = check_switch(a, stream, request, "welcome.wav", "goodbye.wav", PROMPTS)
    assert result.ok, result.reason
    assert abs(result.latency_ms - 26.3) < 1e-6
    assert result.first_new_ts_ns - a.start_ns == 940_000_000
    assert result.last_old_ts_ns - a.start_ns == 900_000_000
    assert not result.old_reappears and result.continuous and result.discontinuities == ()
    assert "26.3 ms after the update request" in result.reason


def test_new_prompt_never_arrives(tmp_path):
    welcome = frames("welcome.wav")
    a, stream, request = capture(tmp_path, welcome * 3, request_at=0.7)
    result = check_switch(a, stream, request, "welcome.wav", "goodbye.wav", PROMPTS)
    assert not result.ok and result.first_new_ts_ns is None and result.latency_ms is None
    assert "'goodbye.wav' never arrived after the update request" in result.reason
    assert "prompt:welcome.wav" in result.reason


def test_old_prompt_reappearing_fails(tmp_path):
    welcome, goodbye = frames("welcome.wav"), frames("goodbye.wav")
    plan = welcome + goodbye[:10] + welcome[5:15]
    a, stream, request = capture(tmp_path, plan, request_at=0.69)
    result = check_switch(a, stream, request, "welcome.wav", "goodbye.wav", PROMPTS)
    assert not result.ok and result.old_reappears
    assert result.old_reappears_ts_ns - a.start_ns == 900_000_000
    assert "'welcome.wav' reappeared 200.0 ms after 'goodbye.wav' started" in result.reason


def test_old_prompt_not_playing_before_the_request_fails(tmp_path):
    plan = [b"\xff" * 160] * 10 + frames("goodbye.wav")
    a, stream, request = capture(tmp_path, plan, request_at=0.25)
    result = check_switch(a, stream, request, "welcome.wav", "goodbye.wav", PROMPTS)
    assert not result.ok and result.last_old_ts_ns is None
    assert result.latency_ms is not None
    assert "'welcome.wav' was not playing before the update request" in result.reason


def test_ssrc_change_and_sequence_jump_across_the_switch_are_reported(tmp_path):
    welcome, goodbye = frames("welcome.wav"), frames("goodbye.wav")
    a, stream, request = capture(tmp_path, welcome + goodbye, request_at=0.69, ssrc_change_at=30)
    result = check_switch(a, stream, request, "welcome.wav", "goodbye.wav", PROMPTS)
    assert result.first_new_ts_ns is not None and not result.continuous and not result.ok
    assert result.discontinuities == ("frame 32 -> 35: SSRC changed 0x000051A5 -> 0x0000BEEF",)
    a, stream, request = capture(tmp_path, welcome + goodbye, request_at=0.69, seq_jump_at=30)
    result = check_switch(a, stream, request, "welcome.wav", "goodbye.wav", PROMPTS)
    assert result.discontinuities == ("frame 32 -> 35: sequence 4029 -> 4035, expected 4030",)


def test_packets_lost_on_the_wire_at_the_switch_are_not_a_discontinuity(tmp_path):
    welcome, goodbye = frames("welcome.wav"), frames("goodbye.wav")
    a, stream, request = capture(tmp_path, welcome + goodbye, request_at=0.69, drop={30})
    result = check_switch(a, stream, request, "welcome.wav", "goodbye.wav", PROMPTS)
    assert result.ok and result.continuous, result.reason
