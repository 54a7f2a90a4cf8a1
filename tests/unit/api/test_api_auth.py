"""SigV4 checking against requests botocore signed (then altered), and the token buckets."""
from __future__ import annotations

import hashlib
import json
import time
import urllib.error
import urllib.request

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from api_backend import CREDENTIALS, OTHER_SMA_ID, SMA_ID, FakeClock, LiveApi, ModelBackend
from harness.api.server import ApiSettings
from harness.api.throttle import TokenBuckets


class Offset:
    """The server's wall clock, `seconds` away from ours."""

    def __init__(self):
        self.seconds = 0.0

    def __call__(self) -> float:
        return time.time() + self.seconds


@pytest.fixture
def wall():
    return Offset()


@pytest.fixture
def backend():
    return ModelBackend()


@pytest.fixture
def api(backend, wall):
    with LiveApi(backend, ApiSettings(credentials=CREDENTIALS, wall_clock=wall)) as live:
        yield live


def signed(api: LiveApi, method: str, path: str, body: bytes = b"", key: str = "AKIDOWNER",
           secret: str = "owner-secret", service: str = "chime") -> AWSRequest:
    req = AWSRequest(method=method, url=api.url + path, data=body,
                     headers={"Content-Type": "application/json"} if body else {})
    SigV4Auth(Credentials(key, secret), service, "us-east-1").add_auth(req)
    return req


def send(api: LiveApi, req: AWSRequest, path: str | None = None) -> tuple[int, dict]:
    url = req.url if path is None else api.url + path
    http = urllib.request.Request(url, data=req.body or None, method=req.method,
                                  headers=dict(req.headers.items()))
    try:
        with urllib.request.urlopen(http, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        assert exc.headers["x-amzn-ErrorType"] in ("UnauthorizedClientException",
                                                   "ForbiddenException"), exc.headers
        return exc.code, json.loads(exc.read())


def test_signed_requests_with_query_and_body_pass(api, backend):
    assert send(api, signed(api, "GET", "/sip-media-applications?max-results=1&next-token=0"))[0] \
        == 200
    tx_id = backend.new_call()
    body = json.dumps({"Arguments": {"a b": "c/d?e"}}).encode()
    req = signed(api, "POST", f"/sip-media-applications/{SMA_ID}/calls/{tx_id}", body)
    assert send(api, req) == (202, {"SipMediaApplicationCall": {"TransactionId": tx_id}})


def test_a_header_outside_signed_headers_may_be_added(api):
    req = signed(api, "GET", "/sip-rules")
    req.headers["X-Extra"] = "not signed"
    assert send(api, req)[0] == 200


def unauthorized(api, req, reason: str, path: str | None = None) -> None:
    status, payload = send(api, req, path)
    assert (status, payload["Code"]) == (401, "Unauthorized")
    assert reason in payload["Message"], payload


def test_an_altered_body_fails(api):
    req = signed(api, "POST", f"/sip-media-applications/{SMA_ID}/calls/t",
                 b'{"Arguments": {"a": "1"}}')
    req.data = b'{"Arguments": {"a": "2"}}'
    unauthorized(api, req, "does not match the signature")


def test_an_altered_path_or_query_fails(api):
    unauthorized(api, signed(api, "GET", "/sip-rules"), "does not match the signature",
                 path="/sip-media-applications")
    unauthorized(api, signed(api, "GET", "/sip-rules?max-results=1"),
                 "does not match the signature", path="/sip-rules?max-results=2")


def test_an_altered_signed_header_fails(api):
    req = signed(api, "POST", f"/sip-media-applications/{SMA_ID}/calls/t", b"{}")
    req.headers.replace_header("Content-Type", "application/x-amz-json-1.1")
    unauthorized(api, req, "does not match the signature")


def test_a_missing_signed_header_fails(api):
    req = AWSRequest(method="GET", url=f"{api.url}/sip-rules", headers={"X-Custom": "1"})
    SigV4Auth(Credentials("AKIDOWNER", "owner-secret"), "chime", "us-east-1").add_auth(req)
    del req.headers["X-Custom"]
    unauthorized(api, req, "'x-custom' is not in the request")


def test_a_wrong_payload_hash_header_fails(api):
    req = signed(api, "POST", f"/sip-media-applications/{SMA_ID}/calls/t", b"{}")
    req.headers["X-Amz-Content-SHA256"] = hashlib.sha256(b"other").hexdigest()
    unauthorized(api, req, "X-Amz-Content-SHA256")


def test_a_matching_payload_hash_header_is_honoured(api, backend):
    tx_id = backend.new_call()
    body = b'{"Arguments": {}}'
    req = AWSRequest(method="POST", url=f"{api.url}/sip-media-applications/{SMA_ID}/calls/{tx_id}",
                     data=body, headers={"Content-Type": "application/json",
                                         "X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()})
    SigV4Auth(Credentials("AKIDOWNER", "owner-secret"), "chime", "us-east-1").add_auth(req)
    assert send(api, req)[0] == 202


def test_the_wrong_service_scope_fails(api):
    unauthorized(api, signed(api, "GET", "/sip-rules", service="s3"), "scoped to service")


@pytest.mark.parametrize("offset", [-20 * 60, 20 * 60])
def test_a_signature_older_or_newer_than_15_minutes_is_expired(api, wall, offset):
    req = signed(api, "GET", "/sip-rules")
    assert send(api, req)[0] == 200
    wall.seconds = offset
    unauthorized(api, req, "Signature expired")


@pytest.mark.parametrize("header,reason", [
    ("Bearer abc", "must use AWS4-HMAC-SHA256"),
    ("AWS4-HMAC-SHA256 Credential=AKIDOWNER/20240101/us-east-1/chime/aws4_request",
     "lacks SignedHeaders, Signature"),
    ("AWS4-HMAC-SHA256 Credential=AKIDOWNER/x, SignedHeaders=host, Signature=00",
     "Credential must be"),
])
def test_malformed_authorization(api, header, reason):
    req = signed(api, "GET", "/sip-rules")
    req.headers.replace_header("Authorization", header)
    unauthorized(api, req, reason)


def test_missing_date_and_mismatched_scope_date(api):
    req = signed(api, "GET", "/sip-rules")
    date = req.headers["X-Amz-Date"]
    del req.headers["X-Amz-Date"]
    unauthorized(api, req, "X-Amz-Date must be present")
    req.headers["X-Amz-Date"] = "20000101" + date[8:]
    unauthorized(api, req, "does not match X-Amz-Date")


def test_a_non_ascii_signature_is_refused_not_a_fault(api):
    req = signed(api, "GET", "/sip-rules")
    auth = req.headers["Authorization"]
    req.headers.replace_header("Authorization", auth[:-1] + "é")
    unauthorized(api, req, "does not match the signature")


def test_the_callers_account_decides_ownership(api, backend):
    tx_id = backend.new_call(OTHER_SMA_ID)
    path = f"/sip-media-applications/{OTHER_SMA_ID}/calls/{tx_id}"
    status, payload = send(api, signed(api, "POST", path, b'{"Arguments": {}}'))
    assert (status, payload["Code"]) == (403, "Forbidden")
    req = signed(api, "POST", path, b'{"Arguments": {}}', "AKIDOTHER", "other-secret")
    assert send(api, req)[0] == 202


# ---- token buckets ---------------------------------------------------------------------------
def test_bucket_allows_a_burst_then_the_rate():
    clock = FakeClock()
    buckets = TokenBuckets(rate=2.0, burst=3, clock=clock)
    assert [buckets.take("a") for _ in range(4)] == [True, True, True, False]
    clock.now += 0.25  # half a token
    assert buckets.take("a") is False
    clock.now += 0.25
    assert [buckets.take("a"), buckets.take("a")] == [True, False]


def test_bucket_refills_no_further_than_the_burst_and_keys_are_separate():
    clock = FakeClock()
    buckets = TokenBuckets(rate=1.0, burst=2, clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [True, True, False]
    assert buckets.take("b") is True
    clock.now += 3600
    assert [buckets.take("a") for _ in range(3)] == [True, True, False]


def test_bucket_survives_a_clock_going_backwards():
    clock = FakeClock()
    buckets = TokenBuckets(rate=1.0, burst=1, clock=clock)
    assert buckets.take("a") is True
    clock.now -= 10
    assert buckets.take("a") is False


def test_bucket_settings_are_checked():
    with pytest.raises(ValueError):
        TokenBuckets(rate=0, burst=1, clock=FakeClock())
    with pytest.raises(ValueError):
        TokenBuckets(rate=1, burst=0, clock=FakeClock())
