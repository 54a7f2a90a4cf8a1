"""Reports: report.json against its schema, report.html in headless Chromium, the timeline
PNG, and JUnit XML. The main input is a real run of the bundled switch profile."""
from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import jsonschema_rs  # comes with schemathesis (the test extra)
import numpy as np
import pytest
from PIL import Image  # comes with matplotlib

from conftest import PROFILES
from harness.journal_entries import CallArrived, HandlerInvoked, MediaStarted
from harness.media.g711 import ulaw_encode
from harness.media.rtp import RtpPacket, TelephoneEvent
from harness.report import write_profile_reports, write_junit
from harness.report.json_report import build_report
from harness.report.capture_report import CAPTURE_SCHEMA_PATH
from harness.report.json_report import SCHEMA_PATH
from harness.results import Check, ProfileResult
from harness.wire.audio import load_prompts
from harness.wire.analysis import analyze_pcap
from harness.testing.captures import CaptureBuilder, sdp_body, sip_message

SCHEMA = json.loads(SCHEMA_PATH.read_text())
CAPTURE_SCHEMA = json.loads(CAPTURE_SCHEMA_PATH.read_text())


def validate(report: dict) -> list[str]:
    return [str(e) for e in jsonschema_rs.validator_for(SCHEMA).iter_errors(report)]


def validate_capture(document: dict) -> list[str]:
    return [str(e) for e in jsonschema_rs.validator_for(CAPTURE_SCHEMA).iter_errors(document)]


@pytest.fixture(scope="module")
def run(bundled_run):
    """The bundled switch profile run for real, then reported from the files it left."""
    profile_run = bundled_run("update_switches_prompt")
    result = profile_run.result
    run_dir = Path(result.run_dir)
    journal = json.loads((run_dir / "journal.json").read_text())
    wire = analyze_pcap(str(run_dir / "capture.pcap"))
    paths = write_profile_reports(result, wire, journal, run_dir, profile_run.updates,
                                  load_prompts(PROFILES / "bucket"))
    return result, paths


def test_the_api_writes_the_three_files(run):
    result, paths = run
    assert result.verdict == "pass", (result.error, [c for c in result.checks if not c.passed])
    assert set(paths) == {"report_json", "report_html", "timeline"}
    assert all(p.parent == Path(result.run_dir) and p.stat().st_size > 0 for p in paths.values())


def test_report_json_follows_its_schema_and_holds_the_run(run):
    _, paths = run
    report = json.loads(paths["report_json"].read_text())
    assert validate(report) == []
    assert report["verdict"] == "pass" and report["schema_version"] == 4
    assert validate_capture(report["capture"]) == []
    assert [c["final_status"] for c in report["capture"]["calls"]] == [200]
    assert sorted(s["direction"] for s in report["capture"]["streams"]) == ["caller → stub", "stub → caller"]
    assert [m["summary"] for m in report["sip"]][:2] == ["INVITE (SDP)", "100 Trying (INVITE)"]
    assert any(m["summary"] == "BYE" and report["endpoints"][m["src"]] == "stub" for m in report["sip"])
    assert sorted(s["direction"] for s in report["rtp_streams"]) == ["caller → stub", "stub → caller"]
    assert all(s["lost"] == 0 and s["codec"] == "PCMU" for s in report["rtp_streams"])
    assert [e["invocation_event_type"] for e in report["events"]] == [
        "NEW_INBOUND_CALL", "CALL_UPDATE_REQUESTED", "ACTION_INTERRUPTED", "ACTION_SUCCESSFUL", "HANGUP"]
    assert report["events"][0]["response"] == "PlayAudio(Repeat=5, Key=tone-440hz.wav)"
    [update] = report["updates"]
    assert update["status"] == 202 and update["arguments"] == {"action": "switch"}
    assert update["time"] <= update["wire_time"] < update["time"] + 1
    assert [m["label"] for m in report["media"]] == ["tone-440hz.wav", "tone-1000hz.wav"]
    [audio] = report["audio"]
    prompts = [s["prompt"] for s in audio["segments"] if s["kind"] == "prompt"]
    assert prompts == ["tone-440hz.wav", "tone-1000hz.wav"]
    assert report["artifacts"]["capture"] == "capture.pcap"
    assert report["artifacts"]["recordings"] == ["caller-a-heard.wav"]


def test_the_schema_is_valid_and_rejects_broken_reports(run):
    _, paths = run
    jsonschema_rs.meta.validate(SCHEMA)
    report = json.loads(paths["report_json"].read_text())
    assert validate({k: v for k, v in report.items() if k != "verdict"})
    assert validate({**report, "verdict": "maybe"})
    assert validate({**report, "rtp_streams": [{**report["rtp_streams"][0], "ssrc": 12}]})
    assert validate({**report, "schema_version": 3})
    jsonschema_rs.meta.validate(CAPTURE_SCHEMA)
    assert validate_capture({**report["capture"], "calls": [{"call_id": 1}]})


class _Dom(HTMLParser):
    """The ladders' texts and the <img> sources of a page."""

    def __init__(self):
        super().__init__()
        self.images: dict[str, str] = {}
        self.ladder_texts: list[str] = []
        self._in_ladder = self._in_text = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images[attrs.get("id", "")] = attrs.get("src", "")
        if tag == "svg" and "ladder" in (attrs.get("class") or ""):
            self._in_ladder = True
        self._in_text = self._in_ladder and tag == "text"

    def handle_endtag(self, tag):
        if tag == "svg":
            self._in_ladder = False
        self._in_text = False

    def handle_data(self, data):
        if self._in_text:
            self.ladder_texts.append(data)


def chromium(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("chromium")
    if exe is None:
        pytest.fail("setup: 'chromium' is not installed; run `bash scripts/setup-system.sh`",
                    pytrace=False)
    return subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         f"--user-data-dir={tmp_path / 'chromium-profile'}", *args],
        capture_output=True, text=True, timeout=40, check=True, cwd=tmp_path)


def test_report_html_in_headless_chromium_has_the_ladder_and_the_picture(run, tmp_path):
    _, paths = run
    dom = _Dom()
    dom.feed(chromium("--dump-dom", paths["report_html"].as_uri(), tmp_path=tmp_path).stdout)
    for label in ("INVITE (SDP)", "180 Ringing (INVITE)", "ACK", "BYE", "200 OK (BYE)", "stub", "caller"):
        assert label in dom.ladder_texts, (label, dom.ladder_texts)
    assert any(t.startswith("UpdateSipMediaApplicationCall → HTTP 202") for t in dom.ladder_texts)
    src = dom.images["timeline"]
    assert src.startswith("data:image/png;base64,")
    picture = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
    assert picture.format == "PNG" and 1000 <= picture.width <= 2000 and 400 <= picture.height <= 1500
    assert picture.tobytes() == Image.open(paths["timeline"]).tobytes()
    assert np.asarray(picture.convert("L"), dtype=float).std() > 20  # not blank

    shot = tmp_path / "shot.png"
    chromium("--window-size=1400,2000", f"--screenshot={shot}", paths["report_html"].as_uri(),
             tmp_path=tmp_path)
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape[:2] == (2000, 1400)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 500  # text, ladder and picture drawn


def test_each_invocation_links_to_its_lines_of_the_handler_log(run):
    result, paths = run
    report = json.loads(paths["report_json"].read_text())
    log = (Path(result.run_dir) / "handler-sip-harness-sma.log").read_text()
    page = paths["report_html"].read_text()
    for event in report["events"]:
        [attempt] = event["requests"]
        rid, lines = attempt["request_id"], attempt["log"]
        assert f"START RequestId: {rid} Version: $LATEST" in lines
        assert lines[-2] == f"END RequestId: {rid}" and lines[-1].startswith(f"REPORT RequestId: {rid}\t")
        assert "\n".join(lines) in log  # the same lines, in one block, in the handler's log file
        assert f'<a href="#log-{rid}">{rid}</a>' in page
        block = re.search(rf'<pre id="log-{rid}">(.*?)</pre>', page, re.S).group(1)
        assert f"START RequestId: {rid}" in block and f"REPORT RequestId: {rid}" in block


def synthetic_capture(tmp_path: Path) -> tuple[Path, list[dict], list[dict]]:
    """A call whose caller sends DTMF '5', with an update request; its journal and update record."""
    caller, stub, caller_rtp, stub_rtp = (("127.0.0.1", 5060), ("127.0.0.1", 5080),
                                          ("127.0.0.1", 20000), ("127.0.0.1", 20002))
    api_client, api = ("127.0.0.1", 41000), ("127.0.0.1", 8080)
    cb = CaptureBuilder()
    offer = {0: "PCMU/8000", 101: "telephone-event/8000"}
    cb.udp(0.0, caller, stub, sip_message("INVITE sip:+1@127.0.0.1 SIP/2.0", "c1", "1 INVITE", caller,
                                          sdp_body(*caller_rtp, offer)))
    cb.udp(0.01, stub, caller, sip_message("SIP/2.0 200 OK", "c1", "1 INVITE", stub,
                                           sdp_body(*stub_rtp, offer)))
    tone = (np.sin(2 * np.pi * 440 * np.arange(8000) / 8000) * 8000).astype(np.int16)
    for i in range(50):
        cb.udp(0.02 + 0.02 * i, stub_rtp, caller_rtp,
               RtpPacket(0, i, 160 * i, 7, ulaw_encode(tone[160 * i:160 * i + 160])).build())
        cb.udp(0.02 + 0.02 * i, caller_rtp, stub_rtp,
               RtpPacket(0, 100 + i, 160 * i, 8, b"\xff" * 160).build())
    for k, end in enumerate((False, False, True, True)):
        cb.udp(0.5 + 0.02 * k, caller_rtp, stub_rtp,
               RtpPacket(101, 200 + k, 4000, 8, TelephoneEvent(5, end, 10, 160 * min(k + 1, 3)).build(),
                         marker=k == 0).build())
    cb.tcp(0.7, api_client, api, b"POST /sip-media-applications/sma/calls/tx1 HTTP/1.1\r\n"
                                 b"Content-Length: 2\r\n\r\n{}")
    cb.tcp(0.71, api, api_client, b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
    cb.udp(1.1, caller, stub, sip_message("BYE sip:+1@127.0.0.1 SIP/2.0", "c1", "2 BYE", caller))
    pcap = Path(cb.write(str(tmp_path / "capture.pcap")))
    t0 = cb.t0_ns / 1e9
    journal = [CallArrived(time=t0 + 0.002, transaction_id="tx1", sip_call_id="c1", call_id="leg-a",
                           sip_media_application_id="sma", to="+1", from_="+2", rtp_port=20002).to_json(),
               MediaStarted(time=t0 + 0.015, transaction_id="tx1", call_id="leg-a", token=1,
                            media="audio", key="tone-440hz.wav").to_json()]
    updates = [{"time": t0 + 0.699, "transaction_id": "tx1", "arguments": {},
                "status": 202, "error": None}]
    return pcap, journal, updates


def test_dtmf_update_and_roles_from_a_synthetic_capture(tmp_path):
    pcap, journal, updates = synthetic_capture(tmp_path)
    result = ProfileResult("dtmf", "sip_profiles/dtmf.yaml", str(tmp_path), "pass",
                           [Check("BYE", True, "first BYE sent by the caller")])
    paths = write_profile_reports(result, analyze_pcap(str(pcap)), journal, tmp_path, updates)
    report = json.loads(paths["report_json"].read_text())
    assert validate(report) == []
    [dtmf] = report["dtmf"]
    assert (dtmf["digit"], dtmf["src"], dtmf["duration_ms"], dtmf["ended"]) == ("5", "127.0.0.1:20000", 60.0, True)
    assert dtmf["time"] == pytest.approx(0.5)
    assert report["updates"][0]["wire_time"] == pytest.approx(0.7)
    assert report["endpoints"] == {"127.0.0.1:5080": "stub", "127.0.0.1:5060": "caller",
                                   "127.0.0.1:20002": "stub", "127.0.0.1:20000": "caller"}
    assert [s["label"] for s in report["audio"][0]["segments"]] == ["tone:440Hz"]
    assert report["media"][0]["end"] is None
    assert "caller → stub" in {s["direction"] for s in report["rtp_streams"]}


def test_an_error_run_without_capture_is_reported_and_escaped(tmp_path):
    result = ProfileResult("<script>alert(1)</script>", "p.yaml", str(tmp_path), "error",
                           error="OSError: <no capture> & \x07")
    paths = write_profile_reports(result, None, [], tmp_path, [])
    report = json.loads(paths["report_json"].read_text())
    assert validate(report) == []
    assert report["sip"] == [] and report["artifacts"].get("capture") is None
    page = paths["report_html"].read_text()
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;no capture&gt; &amp;" in page
    assert Image.open(paths["timeline"]).format == "PNG"


def test_junit_xml_counts_failures_and_errors(tmp_path):
    results = [
        ProfileResult("passes", "sip_profiles/a.yaml", "/out/a", "pass", [Check("BYE", True, "ok")],
                      duration_s=1.5, update_to_switch_ms=12.5),
        ProfileResult("fails", "sip_profiles/b.yaml", "/out/b", "fail",
                      [Check("BYE", True, "ok"), Check("switch", False, "no <switch> & \x01 seen")],
                      duration_s=2.25),
        ProfileResult("errs", "sip_profiles/c.yaml", "/out/c", "error", error="CallerError: boom"),
    ]
    path = write_junit(results, tmp_path / "junit.xml")
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    [suite] = root
    for element in (root, suite):
        assert {k: element.get(k) for k in ("tests", "failures", "errors", "time")} == \
            {"tests": "3", "failures": "1", "errors": "1", "time": "3.750"}
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert cases["passes"].get("classname") == "sip_profiles.a" and cases["passes"].get("time") == "1.500"
    assert cases["passes"].find("failure") is None and cases["passes"].find("error") is None
    failure = cases["fails"].find("failure")
    assert failure.get("message") == "switch: no <switch> & \ufffd seen"
    assert "/out/b" in failure.text and "BYE" not in failure.get("message")
    error = cases["errs"].find("error")
    assert error.get("message") == "CallerError: boom" and "/out/c" in error.text
    assert re.search(r"update-to-switch 12\.5 ms", cases["passes"].find("system-out").text)


def test_timeline_labels_never_overlap(tmp_path):
    """A crowded run: many short segments and marks close together."""
    from harness.report.timeline import timeline_figure
    pcap, journal, updates = synthetic_capture(tmp_path)
    result = ProfileResult("crowded", "p.yaml", str(tmp_path), "pass")
    t0 = json.loads(write_profile_reports(result, analyze_pcap(str(pcap)), journal, tmp_path, updates)
                    ["report_json"].read_text())["t0"]
    journal += [MediaStarted(time=t0 + 0.1 + 0.01 * k, transaction_id="tx1", call_id="leg-a", token=k,
                             media="audio", key=f"prompt-with-a-long-name-{k}.wav").to_json()
                for k in range(30)]
    journal += [HandlerInvoked(time=t0 + 0.3 + 0.005 * k, transaction_id="tx1", sequence=k, event={
        "InvocationEventType": "ACTION_SUCCESSFUL", "Sequence": k}).to_json() for k in range(12)]
    report = build_report(result, analyze_pcap(str(pcap)), journal, tmp_path, updates * 5)
    figure = timeline_figure(report, analyze_pcap(str(pcap)))
    renderer = figure.canvas.get_renderer()
    labels = [t for ax in figure.axes for t in ax.texts if t.get_gid() in ("mark-label", "bar-label")]
    shown = [t.get_window_extent(renderer) for t in labels if t.get_visible()]
    assert len(labels) > 40 and 5 <= len(shown) < len(labels)
    assert not [(a, b) for i, a in enumerate(shown) for b in shown[i + 1:] if a.overlaps(b)]
