"""The root cause in front of the user: each first-handler mistake of issue 17's table is named
in the console under its profile, in junit.xml and in report.json (and marked in report.html);
a profile that crashes never aborts the suite."""
import html
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import PROFILES, ROOT, TEST_DATA, require_capture

BIN = Path(sys.executable).parent
CASES = TEST_DATA / "root_cause"

#: profile file -> texts its root cause must show
ROWS = {
    "handler_missing": ["no such handler file", "no_such_handler.py"],
    "handler_import_error": ["Runtime.ImportModuleError",
                             "No module named 'sip_harness_example_dependency'"],
    "handler_exception": ["RuntimeError", "no greeting configured for +14345550205"],
    "handler_timeout": ["Sandbox.Timedout", "Task timed out after 1.00 seconds"],
    "schema_version": ["INVALID_LAMBDA_RESPONSE", "SchemaVersionMismatch", "SchemaVersion '2.0'"],
    "action_type": ["INVALID_LAMBDA_RESPONSE", "InvalidActionType", "'PlayAudo'"],
    "missing_prompt": ["ACTION_FAILED", "InvalidAudioSource",
                       "s3://prompts/welcome-typo.wav not found"],
    "response_too_large": ["Function.ResponseSizeTooLarge", "6291456 bytes"],
    "response_not_json": ["Runtime.MarshalError", "Unable to marshal response: Object of type set"],
}


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "sip-harness"), "run", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def console_blocks(stdout: str) -> dict[str, str]:
    """Each profile's block of the final summary (its verdict line and the lines under it)."""
    blocks, current = {}, None
    for line in stdout.splitlines():
        if line[:5].strip() in ("PASS", "FAIL", "ERROR") and "artifacts" in line:
            current = line[6:].split("  update-to-switch")[0].strip()
            blocks[current] = line + "\n"
        elif current and line.startswith("      "):
            blocks[current] += line + "\n"
        else:
            current = None
    return blocks


def junit_cases(path: Path) -> dict[str, ET.Element]:
    return {case.get("name"): case for case in ET.parse(path).getroot().iter("testcase")}


@pytest.fixture(scope="module")
def table_run(tmp_path_factory):
    require_capture()
    out = tmp_path_factory.mktemp("root-cause")
    done = run_cli(str(CASES), "--out", str(out))
    return done, out


@pytest.mark.parametrize("row", sorted(ROWS))
def test_each_mistake_is_named_in_console_junit_and_report(table_run, row):
    done, out = table_run
    assert done.returncode == 1, done.stdout + done.stderr
    name = f"root cause {row}"
    block = console_blocks(done.stdout)[name]
    case = junit_cases(out / "junit.xml")[name]
    (error,) = case.findall("error")
    report = json.loads((out / f"root-cause-{row.replace('_', '-')}" / "report.json").read_text())
    in_report = json.dumps([report["error"], [p["summary"] for p in report["problems"]]])
    for text in ROWS[row]:
        assert text in block, block
        assert text in error.get("message"), error.get("message")
        assert text in in_report, in_report
    assert block.startswith("ERROR") and report["verdict"] == "error"
    page = (out / f"root-cause-{row.replace('_', '-')}" / "report.html").read_text()
    if report["problems"]:  # a marked row of the "What went wrong" table, and of the events
        assert 'id="problems"' in page and html.escape(report["problems"][0]["summary"]) in page
        assert '<span class="bad">' in page.split('id="events"')[1].split("</table>")[0]
    else:
        assert html.escape(report["error"]) in page.split('id="error"')[1]


@pytest.mark.parametrize("row", sorted(set(ROWS) - {"handler_missing"}))
def test_an_error_run_still_has_its_ladder_and_analysis(table_run, row):
    """The capture of an ERROR run is analysed like any other: its INVITE and the stub's
    answers are in ladder.txt, report.json and the page's ladder."""
    _, out = table_run
    folder = out / f"root-cause-{row.replace('_', '-')}"
    assert "INVITE" in (folder / "ladder.txt").read_text()
    report = json.loads((folder / "report.json").read_text())
    assert any(m["summary"].startswith("INVITE") for m in report["sip"])
    assert report["problems"] and all(p["time"] is not None for p in report["problems"])
    assert "no SIP in the capture" not in (folder / "report.html").read_text()


def test_a_handler_exception_shows_its_stack_trace(table_run):
    done, out = table_run
    source = (CASES / "handlers" / "mistakes.py").read_text().splitlines()
    line = next(n for n, text in enumerate(source, 1) if "raise RuntimeError" in text)
    frame = f"mistakes.py\", line {line}, in lambda_handler"
    block = console_blocks(done.stdout)["root cause handler_exception"]
    assert frame in block
    (error,) = junit_cases(out / "junit.xml")["root cause handler_exception"].findall("error")
    assert frame in error.text


def test_a_crashing_profile_between_two_good_ones_does_not_abort_the_suite(tmp_path):
    require_capture()
    suite = [PROFILES / "hangup_codes.yaml", CASES / "suite" / "create_call_refused.yaml",
             PROFILES / "update_argument_counts.yaml", CASES / "suite" / "wrong_events.yaml"]
    done = run_cli(*map(str, suite), "--out", str(tmp_path))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "2/4 profiles passed" in done.stdout
    blocks = console_blocks(done.stdout)
    crash = blocks["a create_call the API refuses"]
    assert crash.startswith("ERROR")
    assert "step 1/2 (create_call): BadRequestException" in crash and "FromPhoneNumber" in crash
    wrong = blocks["events the handler does not get"]
    assert wrong.startswith("FAIL")
    assert ("expected ['NEW_INBOUND_CALL', 'ACTION_SUCCESSFUL', 'HANGUP'], "
            "saw ['NEW_INBOUND_CALL', 'HANGUP']") in wrong
    cases = junit_cases(tmp_path / "junit.xml")
    assert len(cases) == 4
    assert cases["a create_call the API refuses"].find("error") is not None
    assert cases["events the handler does not get"].find("failure") is not None
    for name in ("Hangup with each SipResponseCode", "update with 0 and with 20 arguments"):
        assert blocks[name].startswith("PASS"), blocks[name]
