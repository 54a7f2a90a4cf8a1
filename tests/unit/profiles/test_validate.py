"""`sip-harness validate` checks everything it can before anything runs, and reports every
fault of every file in one pass, each at its file:line:col; the command's own help."""
import re

from harness.cli import EXIT_USAGE, main

from conftest import PROFILES

HANDLER = '''\
def lambda_handler(event, context):
    if event["InvocationEventType"] == "NEW_INBOUND_CALL":
        return {"SchemaVersion": "1.0", "Actions": [
            {"Type": "CallAndBridge", "Parameters": {"CallTimeoutSeconds": 10,
             "Endpoints": [{"BridgeEndpointType": "PSTN", "Uri": "+15555550199"}]}}]}
    return {"SchemaVersion": "1.0", "Actions": []}
'''

FAULTY = f'''\
name: everything wrong that the machine can tell
stub:
  handler: handlers/bridge.py
  bucket_dir: {PROFILES / "bucket"}
callees:
  - {{number: "+15555550100", name: b, play: no-such.wav}}
steps:
  - call: {{to: "+14345550101", play: missing-too.wav}}
  - create_call: {{to: "+15555550111"}}
expect:
  prompts: [tone-440hz.wav, welcom.wav]
  switch: {{from_prompt: tone-440hz.wav, to_prompt: tone-1001hz.wav}}
'''

NO_FILES = '''\
name: nothing there
stub:
  handler: handlers/absent.py
  bucket_dir: no-bucket
steps:
  - call: {to: "+14345550101"}
'''


def faults(err: str) -> list[str]:
    return [line for line in err.splitlines() if re.match(r"^\S+:\d+:\d+: ", line)]


def test_every_fault_of_every_file_in_one_pass(tmp_path, capsys):
    (tmp_path / "handlers").mkdir()
    (tmp_path / "handlers" / "bridge.py").write_text(HANDLER)
    (tmp_path / "faulty.yaml").write_text(FAULTY)
    (tmp_path / "no_files.yaml").write_text(NO_FILES)
    (tmp_path / "ruby.yaml").write_text(NO_FILES.replace("handlers/absent.py", "handlers/bridge.rb")
                                        .replace("no-bucket", str(PROFILES / "bucket")))
    (tmp_path / "handlers" / "bridge.rb").write_text("")
    (tmp_path / "nofunc.yaml").write_text(NO_FILES.replace("handlers/absent.py", "handlers/bridge.py:main")
                                          .replace("no-bucket", str(PROFILES / "bucket")))
    (tmp_path / "typos.yaml").write_text((PROFILES / "update_switches_prompt.yaml").read_text()
                                         .replace("sleep_ms: 1500", "sleep_ms: soon")
                                         .replace("  events:", "  evnts:"))
    assert main(["validate", str(tmp_path), str(PROFILES / "update_switches_prompt.yaml")]) == EXIT_USAGE
    out, err = capsys.readouterr()
    found = faults(err)
    expected = [
        ("faulty.yaml:6:", "callees[0].play: no such file"),
        ("faulty.yaml:8:", "steps[0].call.play: no such file"),
        ("faulty.yaml:9:", "steps[1].create_call.to: no callee answers +15555550111"),
        ("faulty.yaml:11:", "expect.prompts[1]: no prompt 'welcom.wav'"),
        ("faulty.yaml:12:", "expect.switch.to_prompt: no prompt 'tone-1001hz.wav'"),
        ("bridge.py:5:", "no callee answers +15555550199 in faulty.yaml"),
        ("no_files.yaml:3:", "stub.handler: no such handler file"),
        ("no_files.yaml:4:", "stub.bucket_dir: no such folder"),
        ("ruby.yaml:3:", "no runtime runs .rb handlers"),
        ("nofunc.yaml:3:", "bridge.py defines no function main"),
        ("bridge.py:5:", "no callee answers +15555550199 in nofunc.yaml"),
        ("typos.yaml:14:", "steps[2].sleep_ms: expected an integer"),
        ("typos.yaml:18:", "expect.evnts: unknown key 'evnts' (did you mean 'events'?)"),
    ]
    for where, what in expected:
        assert any(where in line and what in line for line in found), (where, what, found)
    assert len(found) == len(expected), found
    assert f"sip-harness: {len(expected)} problems found" in err
    assert "ok  " in out and "update_switches_prompt.yaml" in out  # the good file is still listed


def test_version_and_help_show_defaults_and_every_command(capsys):
    import pytest
    with pytest.raises(SystemExit):
        main(["--version"])
    assert re.match(r"sip-harness \d+\.\d+", capsys.readouterr().out)
    with pytest.raises(SystemExit):
        main(["--help"])
    top = capsys.readouterr().out
    description = top.split("options:")[0]
    for command in ("run", "report", "validate", "serve", "calls", "call", "analyze", "load", "fidelity"):
        assert re.search(rf"\b{command}\b", description), command
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    serve = capsys.readouterr().out
    assert "(default: 5060)" in serve and "(default: artifacts/serve)" in serve and "(default: text)" in serve


def test_the_readme_counts_the_bundled_profiles():
    from conftest import ROOT
    (count,) = re.findall(r"\((\d+) bundled profiles\)", (ROOT / "README.md").read_text())
    assert int(count) == len(list(PROFILES.glob("*.yaml")))
