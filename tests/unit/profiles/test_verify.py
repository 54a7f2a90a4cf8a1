"""Judging a run (`harness.run.verify`) without running one: a synthetic capture and journal
as the evidence, each expectation judged only when the profile sets it, in the order a run
reports its checks, and what the real service hides reported as not observable."""
from dataclasses import fields
from pathlib import Path
from types import SimpleNamespace

from harness.journal_view import JournalView
from harness.media.rtp import RtpPacket
from harness.run import verify
from harness.run.verify import Evidence, Expect, SwitchExpect
from harness.testing.captures import CaptureBuilder, sdp_body, sip_message
from harness.wire.analysis import analyze_pcap

STUB, CALLER = ("127.0.0.1", 5060), ("127.0.0.1", 5070)
TX = "tx-1"


def invocation(sequence: int, kind: str, status: str = "Connected") -> dict:
    return {"time": 100.0 + sequence, "kind": "invocation", "transaction_id": TX, "sequence": sequence,
            "event": {"InvocationEventType": kind, "Sequence": sequence, "ActionData": {},
                      "CallDetails": {"TransactionId": TX, "Participants": [{"Status": status}]}}}


JOURNAL = [{"time": 100.0, "kind": "call_arrived", "transaction_id": TX, "call_id": "leg-a",
            "sip_call_id": "call-1", "sip_media_application_id": "sma-1", "to": "+14345550101",
            "from": "+14255550199", "rtp_port": 12000},
           invocation(1, "NEW_INBOUND_CALL"), invocation(2, "HANGUP", "Disconnected")]


def capture(tmp_path: Path, bye_from=STUB) -> str:
    cb = CaptureBuilder()
    offer = sdp_body(CALLER[0], 40000, {0: "PCMU/8000"})
    cb.udp(0.0, CALLER, STUB, sip_message("INVITE sip:+14345550101@127.0.0.1 SIP/2.0", "call-1", "1 INVITE",
                                          CALLER, offer))
    cb.udp(0.1, STUB, CALLER, sip_message("SIP/2.0 200 OK", "call-1", "1 INVITE", STUB,
                                          sdp_body(STUB[0], 12000, {0: "PCMU/8000"})))
    cb.udp(0.2, CALLER, STUB, sip_message("ACK sip:127.0.0.1 SIP/2.0", "call-1", "1 ACK", CALLER))
    to = CALLER if bye_from == STUB else STUB
    cb.udp(1.0, bye_from, to, sip_message("BYE sip:127.0.0.1 SIP/2.0", "call-1", "2 BYE", bye_from))
    return cb.write(str(tmp_path / "capture.pcap"))


def evidence(tmp_path: Path, journal=JOURNAL, **kw) -> Evidence:
    calls = {"a": SimpleNamespace(call_id="call-1", last_status=200)}
    return Evidence(analyze_pcap(capture(tmp_path, kw.pop("bye_from", STUB))), JournalView(journal),
                    "127.0.0.1", frozenset({STUB[1]}), tmp_path, "a", calls.__getitem__, calls, **kw)


def test_only_the_expectations_a_profile_sets_are_judged_in_the_order_of_the_module(tmp_path):
    checks = verify.judge(evidence(tmp_path), Expect(bye_from="stub", events=["NEW_INBOUND_CALL", "HANGUP"],
                                                     final_status={"a": 200}))
    assert [c.name for c in checks] == ["handler events", "BYE", "final status of a",
                                        "nothing invoked after the last HANGUP", "nothing left behind"]
    assert all(c.passed for c in checks), [(c.name, c.detail) for c in checks]
    assert checks[1].detail == "first BYE sent by the stub"


def test_each_failed_check_says_what_was_expected_and_what_was_seen(tmp_path):
    checks = verify.judge(evidence(tmp_path, bye_from=CALLER, leftovers={"dialogs": 1}),
                          Expect(bye_from="stub", events=["NEW_INBOUND_CALL"]))
    failed = {c.name: c.detail for c in checks if not c.passed}
    assert failed == {"handler events": "expected ['NEW_INBOUND_CALL'], saw ['NEW_INBOUND_CALL', 'HANGUP']",
                      "BYE": "first BYE sent by the caller, expected the stub",
                      "nothing left behind": "left open: {'dialogs': 1}"}


def test_an_invocation_after_the_last_hangup_fails_the_run(tmp_path):
    late = JOURNAL + [invocation(3, "ACTION_SUCCESSFUL")]
    (check,) = [c for c in verify.judge(evidence(tmp_path, late), Expect())
                if c.name == "nothing invoked after the last HANGUP"]
    assert not check.passed and "ACTION_SUCCESSFUL (Sequence 3)" in check.detail


def test_against_the_service_what_only_the_emulator_sees_is_not_observable(tmp_path):
    run = evidence(tmp_path, local=False, unseen="give --trace")
    checks = {c.name: c for c in verify.judge(run, Expect(events=["NEW_INBOUND_CALL"], recording_tone_hz=440.0,
                                                          dynamodb={"T": [{"key": {"k": "v"}}]}))}
    for name in ("handler events", "recording", "DynamoDB table T", "nothing invoked after the last HANGUP"):
        assert checks[name].passed and checks[name].measured == {"observable": False}, name
        assert checks[name].detail.startswith("not observable: ")


def test_every_field_of_expect_is_an_expectation_or_an_option_of_one():
    keys = verify.keys()
    options = {o for opts in keys.values() for o in opts}
    assert {f.name for f in fields(Expect)} == set(keys) | options
    assert keys["prompts"] == ("prompts_call",) and keys["said"] == ("said_call",)


def test_the_prompts_the_expectations_name_are_listed_for_validate():
    expect = Expect(prompts=["a.wav"], heard={"b": ["c.wav"]},
                    switch=SwitchExpect(from_prompt="d.wav", to_prompt="e.wav"))
    assert verify.named_prompts(expect) == [(("prompts", 0), "a.wav"), (("heard", "b", 0), "c.wav"),
                                            (("switch", "from_prompt"), "d.wav"), (("switch", "to_prompt"), "e.wav")]


# ---- load mode: each call judged from the capture alone -----------------------------------------
PROXY, WORKERS = ("127.0.0.1", 5060), {"w0": ("127.0.0.2", 5060), "w1": ("127.0.0.3", 5060)}
SIPP, SIPP_MEDIA = ("127.0.0.1", 6000), ("127.0.0.1", 7000)


def proxied_call(cb: CaptureBuilder, t: float, call_id: str, worker: str, media_port: int, *,
                 lose: int | None = None, bye: bool = True) -> None:
    """A call from SIPp through a proxy, answered by `worker` (its Contact), 10 RTP packets
    from the worker's media to SIPp (packet `lose` missing), hung up by the far end."""
    media = (WORKERS[worker][0], media_port)
    cb.udp(t, SIPP, PROXY, sip_message("INVITE sip:+14345550101@127.0.0.1 SIP/2.0", call_id, "1 INVITE",
                                       SIPP, sdp_body(*SIPP_MEDIA, {0: "PCMU/8000"})))
    answer = sip_message("SIP/2.0 200 OK", call_id, "1 INVITE", PROXY, sdp_body(*media, {0: "PCMU/8000"}))
    cb.udp(t + 0.1, PROXY, SIPP, answer.replace(b"Contact: <sip:127.0.0.1:5060>",
                                                f"Contact: <sip:{WORKERS[worker][0]}:5060>".encode()))
    cb.udp(t + 0.2, SIPP, PROXY, sip_message("ACK sip:127.0.0.1 SIP/2.0", call_id, "1 ACK", SIPP))
    for i in range(10):
        if i != lose:
            cb.udp(t + 0.3 + 0.02 * i, media, SIPP_MEDIA, RtpPacket(0, i + 1, 160 * i, 0x1000 + media_port,
                                                                      b"\xff" * 160).build())
    if bye:
        cb.udp(t + 0.6, PROXY, SIPP, sip_message("BYE sip:127.0.0.1 SIP/2.0", call_id, "2 BYE", PROXY))
        cb.udp(t + 0.61, SIPP, PROXY, sip_message("SIP/2.0 200 OK", call_id, "2 BYE", SIPP))


def test_load_calls_are_judged_from_the_wire_and_counted_by_who_answered(tmp_path):
    cb = CaptureBuilder()
    proxied_call(cb, 0.0, "c1", "w0", 20000)
    proxied_call(cb, 1.0, "c2", "w1", 30000, lose=4)
    proxied_call(cb, 2.0, "c3", "w1", 30002, bye=False)
    wire = analyze_pcap(cb.write(str(tmp_path / "load.pcap")))
    calls = verify.wire_calls(wire, PROXY)
    assert [c.sip_call_id for c in calls] == ["c1", "c2", "c3"]
    assert verify.answered_by(calls) == {"127.0.0.2:5060": 1, "127.0.0.3:5060": 2}
    sample = verify.sampled_calls(wire, PROXY, sampled=lambda media: True)
    assert (sample["calls"], sample["verified"], sample["rtp_lost"]) == (3, 1, 1)
    assert sample["failures"] == ["c2: 1 RTP packets lost, 1 sequence errors", "c3: not on the wire: BYE, 200 BYE"]
    assert verify.sampled_calls(wire, PROXY, sampled=lambda media: media[1] == 20000)["verified"] == 1
    (caller_hung_up,) = verify.sampled_calls(wire, PROXY, sampled=lambda media: True, limit=1,
                                             bye_from_target=False)["failures"]
    assert caller_hung_up == "c1: the BYE came from the far end"
