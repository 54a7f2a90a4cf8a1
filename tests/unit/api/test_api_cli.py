"""The API as the AWS CLI (`aws chime-sdk-voice ... --endpoint-url`) sees it."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from api_backend import CREDENTIALS, SMA_ID, LiveApi, ModelBackend
from harness.api.server import ApiSettings

AWS_CLI = (sys.executable, "-m", "awscli")


@pytest.fixture(scope="module")
def backend():
    return ModelBackend()


@pytest.fixture(scope="module")
def api(backend):
    if importlib.util.find_spec("awscli") is None:
        pytest.fail("setup: awscli is missing; install the test extra: pip install -e '.[test]'",
                    pytrace=False)
    with LiveApi(backend, ApiSettings(credentials=CREDENTIALS)) as live:
        yield live


def aws(api: LiveApi, tmp_path: Path, *args: str,
        secret: str = "owner-secret") -> subprocess.CompletedProcess:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path),
           "AWS_CONFIG_FILE": str(tmp_path / "config"),
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
           "AWS_ACCESS_KEY_ID": "AKIDOWNER", "AWS_SECRET_ACCESS_KEY": secret,
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "1",
           "AWS_EC2_METADATA_DISABLED": "true"}
    return subprocess.run([*AWS_CLI, "chime-sdk-voice", *args, "--endpoint-url", api.url],
                          env=env, capture_output=True, text=True, timeout=60)


def test_update_call(api, backend, tmp_path):
    tx_id = backend.new_call()
    out = aws(api, tmp_path, "update-sip-media-application-call",
              "--sip-media-application-id", SMA_ID, "--transaction-id", tx_id,
              "--arguments", "prompt=goodbye,k=v")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"SipMediaApplicationCall": {"TransactionId": tx_id}}
    (invoke,) = backend.service.transactions[tx_id].take_commands()
    assert invoke.event["ActionData"]["Parameters"]["Arguments"] == {"prompt": "goodbye",
                                                                      "k": "v"}


def test_create_call(api, backend, tmp_path):
    out = aws(api, tmp_path, "create-sip-media-application-call",
              "--sip-media-application-id", SMA_ID, "--from-phone-number", "+12065550100",
              "--to-phone-number", "+14255550199", "--arguments-map", "FirstName=John")
    assert out.returncode == 0, out.stderr
    created = backend.created[-1]
    assert json.loads(out.stdout)["SipMediaApplicationCall"]["TransactionId"] == \
        created["TransactionId"]
    assert created["Arguments"] == {"FirstName": "John"}


def test_list_rules_pages_through_the_stub(api, tmp_path):
    out = aws(api, tmp_path, "list-sip-rules", "--page-size", "1")
    assert out.returncode == 0, out.stderr
    assert [r["SipRuleId"] for r in json.loads(out.stdout)["SipRules"]] == ["rule-owner"]


@pytest.mark.parametrize("args,secret,shape", [
    (("update-sip-media-application-call", "--sip-media-application-id", SMA_ID,
      "--transaction-id", "no-such-call", "--arguments", "{}"), "owner-secret",
     "NotFoundException"),
    (("update-sip-media-application-call", "--sip-media-application-id", SMA_ID,
      "--transaction-id", "t", "--arguments", ",".join(f"k{i}=v" for i in range(21))),
     "owner-secret", "BadRequestException"),
    (("get-sip-media-application", "--sip-media-application-id", SMA_ID), "wrong-secret",
     "UnauthorizedClientException"),
], ids=["not-found", "21-arguments", "bad-signature"])
def test_errors_name_the_modeled_exception(api, tmp_path, args, secret, shape):
    out = aws(api, tmp_path, *args, secret=secret)
    assert out.returncode == 255, (out.returncode, out.stderr)
    assert f"An error occurred ({shape}) when calling the" in out.stderr
