"""`sip-harness analyze --html/--json` on a capture from elsewhere, the page checked in
headless Chromium (driven by Playwright): click a ladder arrow, see the message."""
from __future__ import annotations

import base64
import io
import json
import wave
from pathlib import Path

import jsonschema_rs  # comes with schemathesis (the test extra)
import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import sync_playwright

from conftest import TEST_DATA, require_tool
from harness.cli import EXIT_OK, EXIT_USAGE, main
from harness.report.capture_report import CAPTURE_SCHEMA_PATH

DATA = TEST_DATA / "wire"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture(scope="module")
def browser():
    chromium = require_tool("chromium")
    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        yield instance
        instance.close()


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    out = tmp_path_factory.mktemp("analyze")
    html, js = out / "call.html", out / "call.json"
    code = main(["analyze", str(DATA / "call-ethernet.pcap"), "--html", str(html), "--json", str(js),
                 "--said", "thank you for calling", "--said", "please hold the line"])
    assert code == EXIT_OK
    return html, json.loads(js.read_text())


def open_page(browser, path: Path):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(path.as_uri())
    return page, errors


def test_the_json_follows_the_capture_schema_and_holds_the_facts(analysed):
    _, doc = analysed
    schema = json.loads(CAPTURE_SCHEMA_PATH.read_text())
    assert [str(e) for e in jsonschema_rs.validator_for(schema).iter_errors(doc)] == []
    [call] = doc["calls"]
    assert (call["final_status"], call["from"], len(call["streams"])) == (200, "sip:+14255550199@192.0.2.10", 2)
    assert call["worst_loss_percent"] == 3.0 and 3.5 < call["worst_mos"] < 4.4
    callee = next(s for s in doc["streams"] if s["ssrc"] == "0x5E6F7081")
    assert [p["found"] for p in callee["audio"]["said"]] == [True, False]
    assert [g["kind"] for g in callee["audio"]["segments"]] == ["silence", "speech", "silence"]
    caller = next(s for s in doc["streams"] if s["ssrc"] == "0x1A2B3C4D")
    assert len(caller["series"]["delta_ms"]) == caller["stats"]["packets"]
    assert max(caller["series"]["jitter_ms"]) == caller["stats"]["max_jitter_ms"]
    assert [d["digit"] for d in caller["dtmf"]] == ["5"]
    assert [r["cumulative_lost"] for r in caller["rtcp"]["reception_reports"]] == [3, 3]
    assert doc["messages"][0]["text"].startswith("INVITE sip:+14345550101@198.51.100.20 SIP/2.0\r\n")
    assert "m=audio 20000 RTP/AVP 0 8 101" in doc["messages"][0]["sdp"]


def test_clicking_a_ladder_arrow_shows_the_message_and_its_sdp(browser, analysed, tmp_path):
    html, _ = analysed
    page, errors = open_page(browser, html)
    assert not page.locator("#message-panel").is_visible()
    page.locator("#ladder-0 g[data-msg]").nth(3).click()       # the 200 OK
    panel = page.locator("#message-panel")
    assert panel.is_visible()
    text = page.locator("#message-text").inner_text()
    assert text.startswith("SIP/2.0 200 OK") and "Call-ID: fixture-call-1@sip-harness" in text
    assert "m=audio 30000 RTP/AVP 0 8 101" in page.locator("#message-sdp").inner_text()
    assert "198.51.100.20:5080 → 192.0.2.10:5060" in page.locator("#message-title").inner_text()
    shot = tmp_path / "page.png"
    page.screenshot(path=str(shot))
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    box = panel.bounding_box()
    inside = pixels[int(box["y"]) + 40:int(box["y"] + box["height"]) - 10, int(box["x"]) + 10:int(box["x"] + box["width"]) - 10]
    assert (inside.min(axis=2) < 100).mean() > 0.01                       # text drawn in the panel
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 300
    page.locator("#message-close").click()
    assert not panel.is_visible()
    assert errors == []


def test_the_page_plays_each_direction_and_draws_graphs_and_spectrograms(browser, analysed):
    html, doc = analysed
    page, errors = open_page(browser, html)
    for s in doc["streams"]:
        src = page.locator(f"#audio-{s['index']}").get_attribute("src")
        with wave.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as w:
            assert w.getframerate() == 8000 and abs(w.getnframes() / 8000 - s["audio"]["seconds"]) < 0.01
        duration = page.locator(f"#audio-{s['index']}").evaluate(
            "a => new Promise(r => { a.onloadedmetadata = () => r(a.duration); a.load(); })")
        assert duration == pytest.approx(s["audio"]["seconds"], abs=0.01)
        picture = page.locator(f"#spectrogram-{s['index']}")
        assert picture.evaluate("img => img.naturalWidth") > 100
        assert page.locator(f"#graph-{s['index']} polyline").count() == 2
        assert page.locator(f"#lane-{s['index']}").count() == 1
    assert "MOS" in page.locator("#quality-0").inner_text()
    assert errors == []


def test_icmp_errors_are_arrows_in_the_ladder(browser, tmp_path):
    html = tmp_path / "icmp.html"
    assert main(["analyze", str(DATA / "icmp-unreachable.pcap"), "--html", str(html), "--no-words"]) == EXIT_OK
    page, errors = open_page(browser, html)
    texts = page.locator("#ladder-0 g.icmp text").all_text_contents()
    assert texts == ["ICMP Destination unreachable (Port unreachable) for INVITE"] * 2
    assert errors == []


def test_call_id_and_time_window_select_what_is_reported(tmp_path, capsys):
    out = tmp_path / "sel.json"
    assert main(["analyze", str(DATA / "fragments.pcap"), "--json", str(out), "--no-words",
                 "--call-id", "fragmented-v6@sip-harness"]) == EXIT_OK
    doc = json.loads(out.read_text())
    assert [c["call_id"] for c in doc["calls"]] == ["fragmented-v6@sip-harness"]
    assert {m["call_id"] for m in doc["messages"]} == {"fragmented-v6@sip-harness"} and doc["streams"] == []
    assert main(["analyze", str(DATA / "fragments.pcap"), "--json", str(out), "--no-words", "--until", "1.0"]) == EXIT_OK
    assert [c["call_id"] for c in json.loads(out.read_text())["calls"]] == ["fragmented@sip-harness"]
    assert main(["analyze", str(DATA / "fragments.pcap"), "--json", str(out), "--since", "2026-01-01T00:00:01.4Z",
                 "--no-words"]) == EXIT_OK
    assert [c["call_id"] for c in json.loads(out.read_text())["calls"]] == ["fragmented-v6@sip-harness"]
    capsys.readouterr()
    assert main(["analyze", str(DATA / "fragments.pcap"), "--call-id", "nope"]) == EXIT_USAGE
    assert "no dialog with Call-ID 'nope'" in capsys.readouterr().err
    assert main(["analyze", str(DATA / "fragments.pcap"), "--since", "yesterday"]) == EXIT_USAGE
