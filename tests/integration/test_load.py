"""Load mode, small: 8 calls at 4/s from SIPp and 4 from pjsua2 into the embedded stub, each
hung up by the stub after its prompt; every call is in the sample and verified on the wire."""
import time

import pytest

from conftest import require_tool
from harness.journal_view import JournalView
from harness.media.sources import tone, write_wav
from harness.run.load import ASSETS, LoadError, LoadSpec, run_load
from harness.run.setup import handler_config
from harness.stub import Stub


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


def test_load_into_a_served_stub_judges_every_call_from_the_wire(tmp_path):
    """`--to`: no stub of its own; the served stub's handler answers, and the capture alone
    shows each call answered (by whom) and its prompt heard."""
    require_tool("sipp")
    bucket = tmp_path / "bucket"
    (bucket / "prompts").mkdir(parents=True)
    write_wav(bucket / "prompts" / "tone-1000hz.wav", tone(1000.0, 1.0))
    config = handler_config(str(ASSETS / "play_hangup.py"), bucket, tmp_path / "served", sma_id="served")
    with Stub(config) as stub:
        lines = []
        result = run_load(LoadSpec(sipp_calls=6, pjsua2_calls=2, rate=4, sample=8, max_seconds=30,
                                   target=("127.0.0.1", stub.sip_port), api_url=stub.api_url,
                                   bucket_dir=bucket, out_dir=tmp_path / "load"), progress=lines.append)
        arrived = len(JournalView(stub.journal_json()).arrivals())
    s = result.summary
    assert s["passed"], s
    assert arrived == 8 and "stub" not in s
    assert s["target"] == {"sip": f"127.0.0.1:{stub.sip_port}", "api": stub.api_url, "ready": {"status": "ready"}}
    assert s["wire"] == {"calls": 8, "answered": 8, "answered_by": {f"127.0.0.1:{stub.sip_port}": 8}}
    assert s["sample"]["calls"] == 8 and s["sample"]["verified"] == 8, s["sample"]
    assert lines[-1].startswith("[load") and "stub:" not in lines[-1]


def test_load_into_a_target_that_is_not_ready_starts_no_call(tmp_path):
    from webclient import free_port
    port = free_port()
    with pytest.raises(LoadError, match=f"http://127.0.0.1:{port} does not answer"):
        run_load(LoadSpec(sipp_calls=1, target=("127.0.0.1", 5060), api_url=f"http://127.0.0.1:{port}",
                          out_dir=tmp_path), progress=lambda line: None)
    assert not (tmp_path / "sipp-stats.csv").exists()
