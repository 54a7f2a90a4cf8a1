"""The `sip-harness` command: call, analyze, validate and their exit codes."""
from harness.cli import EXIT_OK, EXIT_USAGE, main
from harness.journal_entries import DtmfReceived
from harness.journal_view import JournalView

from conftest import PROFILES


def test_call_places_a_captured_call_and_prints_what_the_wire_shows(stub, tmp_path, capsys):
    code = main(["call", stub.sip_uri("+14345550101"), "--duration", "1.5", "--dtmf", "12",
                 "--bucket", str(PROFILES / "bucket"), "--out", str(tmp_path / "call")])
    out = capsys.readouterr().out
    assert code == EXIT_OK, out
    assert "INVITE" in out and "200 OK (INVITE)" in out and "BYE" in out
    assert "prompt tone-440hz.wav" in out
    assert "final status 200" in out
    assert (tmp_path / "call" / "capture.pcap").stat().st_size > 1000
    digits = [e.digit for e in JournalView(stub.journal_json()).of(DtmfReceived)]
    assert digits == ["1", "2"]


def test_analyze_of_a_file_that_is_not_a_capture_is_a_usage_error(tmp_path, capsys):
    bogus = tmp_path / "x.pcap"
    bogus.write_bytes(b"not a capture")
    assert main(["analyze", str(bogus)]) == EXIT_USAGE
    assert "x.pcap" in capsys.readouterr().err


def test_validate_names_file_line_and_field(tmp_path, capsys):
    broken = tmp_path / "broken.yaml"
    broken.write_text((PROFILES / "update_switches_prompt.yaml").read_text()
                      .replace("  events:", "  evnts:"))
    assert main(["validate", str(broken)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "broken.yaml:" in err and "evnts" in err and "did you mean 'events'" in err
