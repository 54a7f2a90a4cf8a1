"""Bad input on the wire: every refusal is a modeled restJson1 error, never an aiohttp page."""
from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request

import pytest

from api_backend import SMA_ID, LiveApi, ModelBackend
from harness.api.openapi import openapi_document


@pytest.fixture
def backend():
    return ModelBackend()


@pytest.fixture
def api(backend):
    with LiveApi(backend) as live:
        yield live


def request(api: LiveApi, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict, dict]:
    req = urllib.request.Request(api.url + path, data=body, method=method,
                                 headers=headers or {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


def raw(api: LiveApi, data: bytes) -> tuple[int, dict, dict]:
    """Send bytes no HTTP library would, and parse the one response."""
    host, port = api.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(data)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, json.loads(body)


def assert_error(result, status: int, shape: str, reason: str = "") -> None:
    got_status, headers, payload = result
    assert (got_status, headers["x-amzn-ErrorType"]) == (status, shape), payload
    assert headers["x-amzn-RequestId"] and headers["Content-Type"] == "application/json"
    assert payload["Code"] == shape.removesuffix("Exception").removesuffix("Client")
    assert reason in payload["Message"]


UPDATE = f"/sip-media-applications/{SMA_ID}/calls/t"


@pytest.mark.parametrize("body,reason", [
    (b"{not json", "not valid JSON"),
    (b"\xff\xfe", "not valid JSON"),
    (b"[" * 100_000, "not valid JSON"),
    (b"[]", "JSON object"),
    (b"{}", "Arguments is required"),
    (b'{"Arguments": null}', "Arguments is required"),
    (b'{"Arguments": []}', "map of string to string"),
    (b'{"Arguments": {"a": 1}}', "must be strings"),
    (b'{"Arguments": {"a": null}}', "must be strings"),
    (b'{"Arguments": {"a": "\\ud800"}}', "not valid UTF-8"),
])
def test_bad_update_bodies(api, body, reason):
    assert_error(request(api, "POST", UPDATE, body), 400, "BadRequestException", reason)


@pytest.mark.parametrize("body,reason", [
    (b'{"ToPhoneNumber": "+14255550199"}', "FromPhoneNumber is required"),
    (b'{"FromPhoneNumber": 12065550100, "ToPhoneNumber": "+14255550199"}', "E.164"),
    (b'{"FromPhoneNumber": "+12065550100", "ToPhoneNumber": "+14255550199\\n"}', "E.164"),
    (b'{"FromPhoneNumber": "+12065550100", "ToPhoneNumber": "+14255550199", '
     b'"ArgumentsMap": "x"}', "ArgumentsMap must be a map"),
])
def test_bad_create_bodies(api, body, reason):
    assert_error(request(api, "POST", f"/sip-media-applications/{SMA_ID}/calls", body),
                 400, "BadRequestException", reason)


def test_wrong_content_type(api):
    assert_error(request(api, "POST", UPDATE, b'{"Arguments": {}}',
                         {"Content-Type": "text/plain"}), 400, "BadRequestException", "not JSON")


def test_too_large_a_body(api):
    body = json.dumps({"Arguments": {"k": "v" * 300_000}}).encode()
    assert_error(request(api, "POST", UPDATE, body), 400, "BadRequestException", "larger than")


@pytest.mark.parametrize("method,path", [
    ("DELETE", UPDATE), ("PUT", "/sip-rules"), ("GET", UPDATE),
    ("POST", f"/sip-media-applications/{SMA_ID}")])
def test_wrong_method(api, method, path):
    assert_error(request(api, method, path, b"{}" if method != "GET" else None), 400,
                 "BadRequestException", "not allowed")


def test_unknown_route(api):
    assert_error(request(api, "GET", "/no/such/route"), 404, "NotFoundException")


@pytest.mark.parametrize("query,reason", [
    ("max-results=0", "MaxResults"), ("max-results=101", "MaxResults"),
    ("max-results=abc", "MaxResults"), ("max-results=" + "9" * 5000, "MaxResults"),
    ("next-token=bogus", "NextToken"), ("next-token=99", "NextToken"),
    ("next-token=" + "1" * 5000, "NextToken"),
])
def test_bad_paging(api, query, reason):
    assert_error(request(api, "GET", f"/sip-media-applications?{query}"), 400,
                 "BadRequestException", reason)


def test_blank_rule_filter(api):
    assert_error(request(api, "GET", "/sip-rules?sip-media-application=%20"), 400,
                 "BadRequestException", "blank")


def test_percent_encoded_non_utf8_id_is_just_unknown(api):
    assert_error(request(api, "GET", "/sip-media-applications/%FF%FE"), 404,
                 "NotFoundException")


@pytest.mark.parametrize("path", ["/sip-media-applications/é".encode(),
                                  b"/sip-media-applications/\xff\xfe"], ids=["utf8", "non-utf8"])
def test_raw_non_ascii_paths(api, path):
    # aiohttp's C parser refuses them (400), its pure-Python one routes them (404).
    status, headers, payload = raw(api, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n"
                                                         b"Connection: close\r\n\r\n")
    assert (status, headers["x-amzn-ErrorType"]) in {(400, "BadRequestException"),
                                                     (404, "NotFoundException")}, payload


@pytest.mark.parametrize("data", [
    b"GARBAGE\r\n\r\n",
    b"GET /sip-rules HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
    b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST " + UPDATE.encode()
    + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
], ids=["no-method", "bad-header", "long-line", "bad-chunk"])
def test_unparsable_requests(api, data):
    assert_error(raw(api, data), 400, "BadRequestException", "malformed HTTP request")


def test_ready_and_draining(api, backend):
    assert request(api, "GET", "/ready")[::2] == (200, {"status": "ready"})
    backend.draining = True
    assert_error(request(api, "GET", "/ready"), 503, "ServiceUnavailableException")


def test_openapi_document_is_served(api):
    status, headers, payload = request(api, "GET", "/openapi.json")
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert payload == openapi_document()


@pytest.mark.parametrize("body", [b'{"Arguments": ' + b"[" * 60_000 + b"]" * 60_000 + b"}",
                                  b'{"Arguments": {"k": ' + b'{"a":' * 20_000 + b"1" + b"}" * 20_001 + b"}"])
def test_deeply_nested_json_is_a_bad_request(api, body):
    status, headers, payload = request(api, "POST", f"/sip-media-applications/{SMA_ID}/calls/t", body)
    assert status == 400 and headers["x-amzn-ErrorType"] == "BadRequestException"


@pytest.mark.parametrize("tx", ["..%2F..%2Fetc%2Fpasswd", "%2E%2E", "x%00y", "%E2%98%8E%F0%9F%93%9E", "..;"])
def test_odd_ids_are_only_unknown(api, tx):
    status, headers, payload = request(api, "POST", f"/sip-media-applications/{SMA_ID}/calls/{tx}",
                                       b'{"Arguments": {"k": "\\u260e"}}')
    assert status == 404 and headers["x-amzn-ErrorType"] == "NotFoundException"
