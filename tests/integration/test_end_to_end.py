"""The walking skeleton end to end: a real pjsua2 call into the stub, an update through the
real API, and the switch proven from the scapy capture (with tshark as an independent oracle)."""
import json
import subprocess

import jsonschema_rs  # comes with schemathesis (the test extra)
import pytest

from conftest import PROFILES, require_tool
from harness.journal_entries import SCHEMA_PATH
from harness.journal_view import JournalView
from harness.media.sources import read_wav
from harness.wire.analysis import analyze_pcap
from harness.wire.audio import tone_frequency


@pytest.fixture(scope="module")
def run(bundled_run):
    return bundled_run("update_switches_prompt").result


def test_profile_passes_with_every_check(run):
    assert run.verdict == "pass", (run.error, [(c.name, c.detail) for c in run.checks if not c.passed],
                                   run.run_dir)
    names = {c.name for c in run.checks}
    assert {"update response", "handler events", "switch", "BYE", "nothing left behind"} <= names
    assert 0 < run.update_to_switch_ms <= 200


def test_the_runs_journal_matches_its_schema_and_reads_typed(run):
    journal = json.loads(open(f"{run.run_dir}/journal.json").read())
    schema = json.loads(SCHEMA_PATH.read_text())
    assert [str(e) for e in jsonschema_rs.validator_for(schema).iter_errors(journal)] == []
    view = JournalView(journal)
    assert len(view.typed) == len(journal), "every kind the stub noted is a known one"
    assert {"call_arrived", "invocation", "response", "media_started", "api_request",
            "sip_ended", "transaction_ended"} <= {e.kind for e in view.typed}


def test_the_capture_holds_the_dialog_and_one_stream_each_way(run):
    wire = analyze_pcap(f"{run.run_dir}/capture.pcap")
    (dialog,) = wire.dialogs.values()
    ladder = [m.summary for m in dialog]
    for expected in ("INVITE", "100 Trying", "180 Ringing", "200 OK (INVITE)", "ACK", "BYE", "200 OK (BYE)"):
        assert any(line.startswith(expected) for line in ladder), (expected, ladder)
    assert len(wire.rtp_streams) == 2
    directions = {(s.src, s.dst) for s in wire.rtp_streams}
    (a, b), = {tuple(sorted(d)) for d in directions}
    assert directions == {(a, b), (b, a)}
    assert all(s.stats.lost == 0 for s in wire.rtp_streams)
    assert len(wire.update_requests()) == 1


def test_tshark_reads_the_same_ladder_and_streams(run):
    tshark = require_tool("tshark")
    pcap = f"{run.run_dir}/capture.pcap"
    sip = subprocess.run([tshark, "-r", pcap, "-Y", "sip", "-T", "fields", "-e", "sip.Method",
                          "-e", "sip.Status-Code"], capture_output=True, text=True, check=True).stdout
    seen = [tuple(line.split("\t")) for line in sip.splitlines()]
    assert ("INVITE", "") in seen and ("", "200") in seen and ("ACK", "") in seen and ("BYE", "") in seen
    streams = subprocess.run([tshark, "-q", "-z", "rtp,streams", "-r", pcap],
                             capture_output=True, text=True, check=True).stdout
    rows = [line for line in streams.splitlines() if "g711U" in line]
    assert len(rows) == 2, streams


def test_the_caller_heard_the_first_prompt_then_the_second(run):
    heard = read_wav(open(f"{run.run_dir}/caller-a-heard.wav", "rb").read())
    frames = [tone_frequency(heard[i:i + 160]) for i in range(0, len(heard) - 160, 160)]
    tones = [round(f / 10) * 10 if f else None for f in frames]
    first_1000 = tones.index(1000)
    assert 440 in tones[:first_1000]
    assert 440 not in tones[first_1000:]
    assert tones.count(1000) >= 90  # the 2 s prompt played out (100 packets) before the BYE


def wire_result(run):
    """What a run shows on the wire: the SIP ladder and the prompts the stub played."""
    from harness.wire.audio import label_packets, load_prompts, segments
    wire = analyze_pcap(f"{run.run_dir}/capture.pcap")
    (dialog,) = wire.dialogs.values()
    port = JournalView.read(f"{run.run_dir}/journal.json").arrivals()[0].rtp_port
    (stub_stream,) = wire.streams(src=("127.0.0.1", port))
    prompts = load_prompts(PROFILES / "bucket")
    played = [seg.prompt for seg in segments(label_packets(stub_stream, prompts)) if seg.kind == "prompt"]
    return [m.summary for m in dialog], played


def test_a_node_handler_drives_the_profile_to_the_same_wire_result(run, bundled_run):
    node = bundled_run("update_switches_prompt_node").result
    assert node.verdict == "pass", [(c.name, c.detail) for c in node.checks if not c.passed]
    assert wire_result(node) == wire_result(run)
