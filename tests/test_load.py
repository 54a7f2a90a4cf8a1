"""Load mode, small: 8 calls at 4/s from SIPp and 4 from pjsua2 into the embedded stub, each
hung up by the stub after its prompt; every call is in the sample and verified on the wire."""
import time

from conftest import require_tool
from harness.run.load import LoadSpec, run_load


def test_load_mode_smoke(tmp_path):
    require_tool("sipp")
    lines = []
    start = time.monotonic()
    result = run_load(LoadSpec(sipp_calls=8, pjsua2_calls=4, rate=4, sample=16, max_seconds=30,
                               out_dir=tmp_path), progress=lines.append)
    s = result.summary
    assert time.monotonic() - start < 40
    assert lines and lines[-1].startswith("[load")
    assert s["sources"]["sipp"]["succeeded"] == 8 and s["sources"]["sipp"]["failed"] == 0, s["sources"]
    assert s["sources"]["pjsua2"]["succeeded"] == 4, s["sources"]["pjsua2"]
    assert s["stub"]["hung_up_by_stub"] == 12 and not s["stub"]["left_open"], s["stub"]
    assert s["sample"]["calls"] == 12 and s["sample"]["verified"] == 12, s["sample"]
    assert s["sample"]["rtp_lost"] == 0
    assert s["passed"]
    assert (tmp_path / "summary.json").is_file() and (tmp_path / "capture.pcap").is_file()


def test_the_load_command_names_what_it_lacks_before_it_starts_anything(tmp_path, capsys):
    from harness.cli import main
    assert main(["load", "--prompt", "welcome.wav", "--out", str(tmp_path)]) == 2
    assert "the prompt 'welcome.wav' needs the bucket folder it is in" in capsys.readouterr().err
    assert main(["load", "--bucket", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert f"no prompt {tmp_path / 'prompts' / 'tone-1000hz.wav'}" in capsys.readouterr().err
