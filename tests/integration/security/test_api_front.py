"""The chime-sdk-voice API's front door: bodies a web page could send cross-site without a
CORS preflight (text/plain, no Content-Type) change nothing, a JSON number too long to
convert is a 400, and `serve --credentials` makes every operation need SigV4."""
from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from api_backend import SMA_ID, LiveApi, ModelBackend
from conftest import ROOT
from webclient import call, free_port, wait_ready


@pytest.fixture
def model():
    backend = ModelBackend()
    with LiveApi(backend) as api:
        yield backend, int(api.url.rsplit(":", 1)[1])


@pytest.mark.parametrize("headers", [{}, {"Content-Type": "text/plain"},
                                     {"Content-Type": "text/plain;charset=UTF-8"},
                                     {"Content-Type": "application/x-www-form-urlencoded"}])
def test_an_update_whose_body_is_not_declared_json_changes_nothing(model, headers):
    backend, port = model
    tx_id = backend.new_call()
    before = backend.service.transactions[tx_id].sequence
    status, _, body = call(port, "POST", f"/sip-media-applications/{SMA_ID}/calls/{tx_id}",
                           b'{"Arguments": {"action": "hangup"}}', headers)
    assert (status, body["Code"]) == (400, "BadRequest") and "Content-Type" in body["Message"]
    assert backend.service.transactions[tx_id].sequence == before  # no CALL_UPDATE_REQUESTED


@pytest.mark.parametrize("number", ["1" * 5000, "-" + "9" * 4301])
def test_a_json_number_too_long_to_convert_is_a_400(model, number):
    backend, port = model
    tx_id = backend.new_call()
    status, headers, body = call(port, "POST", f"/sip-media-applications/{SMA_ID}/calls/{tx_id}",
                                 b'{"Arguments": {}, "Extra": ' + number.encode() + b"}",
                                 {"Content-Type": "application/json"})
    assert (status, headers["x-amzn-ErrorType"]) == (400, "BadRequestException"), body
    assert "not valid JSON" in body["Message"]


def test_serve_with_credentials_requires_sigv4_on_the_api(tmp_path):
    credentials = tmp_path / "credentials"
    credentials.write_text("[ops]\naws_access_key_id = AKIDSERVE\naws_secret_access_key = serve-secret\n")
    port = free_port()
    proc = subprocess.Popen([str(Path(sys.executable).parent / "sip-harness"), "serve",
                             "--profile", str(ROOT / "sip_profiles" / "update_switches_prompt.yaml"),
                             "--sip-port", "0", "--api-port", str(port), "--rtp-ports", "30930-30950",
                             "--out", str(tmp_path / "out"), "--credentials", str(credentials)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_ready(port, proc)
        status, _, body = call(port, "GET", "/sip-media-applications")
        assert (status, body["Code"]) == (401, "Unauthorized")

        def client(key: str, secret: str):
            return boto3.client("chime-sdk-voice", endpoint_url=f"http://127.0.0.1:{port}",
                                region_name="us-east-1", aws_access_key_id=key,
                                aws_secret_access_key=secret, config=Config(retries={"max_attempts": 1}))
        listed = client("AKIDSERVE", "serve-secret").list_sip_media_applications()
        assert len(listed["SipMediaApplications"]) == 1
        with pytest.raises(client("AKIDSERVE", "x").exceptions.UnauthorizedClientException):
            client("AKIDSERVE", "wrong").list_sip_media_applications()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0


def test_a_credentials_file_without_keys_is_a_usage_error(tmp_path):
    (tmp_path / "credentials").write_text("[ops]\nregion = us-east-1\n")
    done = subprocess.run([str(Path(sys.executable).parent / "sip-harness"), "serve",
                           "--credentials", str(tmp_path / "credentials"), "--out", str(tmp_path),
                           "--sip-port", str(free_port()), "--api-port", str(free_port())],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "needs aws_access_key_id" in done.stderr, done.stderr
