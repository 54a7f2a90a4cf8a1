"""The control plane (`/_harness/*`) driven as an unauthenticated or hostile client would:
it is off unless enabled, and when enabled every route wants the token or a SigV4 signature,
`configure` loads only profiles from the operator's folders and never quotes a file, bodies
must be JSON and the Host must name this stub."""
from __future__ import annotations

import dataclasses
import json
import logging
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import PROFILES, ROOT, stub_config
from harness.api.server import ApiSettings
from harness.control import ControlSettings
from harness.journal_entries import UpdateRequested
from harness.profiles.schema import load_profile
from harness.run.setup import stub_config as profile_stub_config
from harness.stub import Stub
from webclient import call, free_port, wait_ready

TOKEN = "s3cr3t-control-token"
KEY, SECRET, ACCOUNT = "AKIDCONTROL", "control-secret", "111122223333"
ROUTES = [("GET", "/_harness/info"), ("GET", "/_harness/journal"), ("GET", "/_harness/malformed"),
          ("GET", "/_harness/resources"), ("POST", "/_harness/routes"), ("POST", "/_harness/configure")]
JSON = {"Content-Type": "application/json"}
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def folders(tmp_path):
    served, outside = tmp_path / "profiles", tmp_path / "elsewhere"
    for folder in (served, outside):
        folder.mkdir()
    profile = (PROFILES / "update_switches_prompt.yaml").read_text().replace(
        "handlers/update_prompt.py", str(PROFILES / "handlers" / "update_prompt.py")).replace(
        "bucket_dir: bucket", f"bucket_dir: {PROFILES / 'bucket'}")
    (served / "good.yaml").write_text(profile)
    (outside / "evil.yaml").write_text(profile.replace("update switches the prompt", "evil"))
    (served / "broken.yaml").write_text("name: x\nstub: {handler: 1, password: hunter2-secret}\n")
    (served / "notes.txt").write_text("not a profile")
    return served, outside


@pytest.fixture
def guarded(tmp_path, folders):
    served, _ = folders
    config = dataclasses.replace(
        stub_config(tmp_path / "run"), control=ControlSettings(TOKEN, (served,)),
        api=ApiSettings(credentials={KEY: (SECRET, ACCOUNT)}))
    with Stub(config, lambda path: profile_stub_config(load_profile(path), tmp_path / "run")) as s:
        yield s


def signed(port: int, method: str, path: str, body: bytes = b"", secret: str = SECRET) -> dict:
    req = AWSRequest(method=method, url=f"http://127.0.0.1:{port}{path}", data=body,
                     headers={"Content-Type": "application/json"} if body else {})
    SigV4Auth(Credentials(KEY, secret), "chime", "us-east-1").add_auth(req)
    return {k: v for k, v in req.headers.items() if k.lower() != "host"}


def test_an_embedded_stub_serves_no_control_route_unless_enabled(stub):
    for method, path in ROUTES:
        status, headers, body = call(stub.api_port, method, path, b"{}", JSON)
        assert (status, headers["x-amzn-ErrorType"]) == (404, "NotFoundException"), path


def test_serve_without_control_serves_no_control_route(tmp_path):
    port = free_port()
    proc = subprocess.Popen([str(Path(sys.executable).parent / "sip-harness"), "serve",
                             "--sip-port", "0", "--api-port", str(port), "--rtp-ports", "30900-30920",
                             "--out", str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        wait_ready(port, proc)
        for method, path in ROUTES:
            assert call(port, method, path, b"{}", JSON)[0] == 404, path
        assert not (tmp_path / "control-token").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0


@pytest.mark.parametrize("method,path", ROUTES)
@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", f"Basic {TOKEN}",
                                           "Bearer ", f"Bearer {TOKEN}x"])
def test_every_control_route_refuses_a_request_without_the_token(guarded, method, path, authorization):
    headers = {**JSON, **({"Authorization": authorization} if authorization else {})}
    status, resp_headers, body = call(guarded.api_port, method, path,
                                      b'{"number": "*", "uri": "sip:{user}@127.0.0.9:5060"}'
                                      if path.endswith("routes") else b"{}", headers)
    assert (status, resp_headers["x-amzn-ErrorType"]) == (401, "UnauthorizedClientException"), body
    assert TOKEN not in json.dumps(body)
    assert guarded.config.routes == {}


def test_the_token_or_a_sigv4_signature_opens_the_control_routes(guarded):
    port = guarded.api_port
    assert call(port, "GET", "/_harness/info", headers=BEARER)[0] == 200
    assert call(port, "GET", "/_harness/info", headers=signed(port, "GET", "/_harness/info"))[0] == 200
    status, _, body = call(port, "GET", "/_harness/info",
                           headers=signed(port, "GET", "/_harness/info", secret="wrong"))
    assert status == 401 and "signature" in body["Message"]
    route = b'{"number": "+14345550111", "uri": "sip:{user}@127.0.0.1:5099"}'
    assert call(port, "POST", "/_harness/routes", route,
                {**JSON, **signed(port, "POST", "/_harness/routes", route)})[0] == 200
    assert guarded.config.routes == {"+14345550111": "sip:{user}@127.0.0.1:5099"}


def test_configure_loads_only_profiles_from_the_operators_folders(guarded, folders):
    served, outside = folders
    port, before = guarded.api_port, guarded.config.applications

    def configure(profile: str) -> tuple[int, dict]:
        status, _, body = call(port, "POST", "/_harness/configure",
                               json.dumps({"profile": profile}).encode(), {**JSON, **BEARER})
        return status, body
    for attempt in (str(outside / "evil.yaml"), str(served / ".." / "elsewhere" / "evil.yaml"),
                    "../elsewhere/evil.yaml", "/etc/passwd"):
        status, body = configure(attempt)
        assert status == 403 and "outside the folders" in body["Message"], (attempt, body)
    assert configure("notes.txt")[0] == 404
    assert guarded.config.applications is before
    status, body = configure("good.yaml")
    assert status == 200 and body["applications"] == [before[0].sip_media_application_id]
    assert guarded.config.applications is not before


def test_a_broken_profile_is_refused_without_quoting_the_file(guarded, folders, caplog):
    caplog.set_level(logging.DEBUG)
    status, _, body = call(guarded.api_port, "POST", "/_harness/configure",
                           b'{"profile": "broken.yaml"}', {**JSON, **BEARER})
    assert status == 400 and "broken.yaml:2:" in body["Message"], body
    assert "hunter2" not in body["Message"] and "password" not in body["Message"]
    assert "hunter2" not in caplog.text


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x"])
def test_control_bodies_must_be_json(guarded, content_type):
    headers = {**BEARER, **({"Content-Type": content_type} if content_type else {})}
    status, _, body = call(guarded.api_port, "POST", "/_harness/routes",
                           b'{"number": "*", "uri": "sip:{user}@127.0.0.9:5060"}', headers)
    assert status == 400 and ("Content-Type" in body["Message"]), body
    assert guarded.config.routes == {}


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "127.0.0.1.evil.example",
                                  "localhost.evil.example", ""])
@pytest.mark.parametrize("method,path", [("GET", "/_harness/info"), ("POST", "/_harness/routes"),
                                         ("GET", "/ready"), ("GET", "/sip-media-applications")])
def test_a_foreign_host_is_refused_on_every_route(guarded, host, method, path):
    status, headers, body = call(guarded.api_port, method, path,
                                 b'{"number": "*", "uri": "sip:{user}@127.0.0.9:5060"}'
                                 if method == "POST" else None, {**JSON, **BEARER}, host=host)
    assert (status, headers["x-amzn-ErrorType"]) == (403, "ForbiddenException"), body
    assert "--allowed-host" in body["Message"]
    assert guarded.config.routes == {}


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost:1234", "[::1]:8080", "10.1.2.3"])
def test_ip_literals_and_localhost_are_this_stubs_names(guarded, host):
    assert call(guarded.api_port, "GET", "/_harness/info", headers=BEARER, host=host)[0] == 200


def test_an_operator_named_host_is_allowed(tmp_path):
    config = dataclasses.replace(stub_config(tmp_path), control=ControlSettings(TOKEN),
                                 api=ApiSettings(allowed_hosts=frozenset({"stub.internal"})))
    with Stub(config) as s:
        assert call(s.api_port, "GET", "/_harness/info", headers=BEARER, host="Stub.Internal:80")[0] == 200
        assert call(s.api_port, "GET", "/_harness/info", headers=BEARER, host="other.internal")[0] == 403


@pytest.mark.parametrize("uri", ["{user.__class__.__mro__}", "sip:{user}@{user.__init__}",
                                 "http://127.0.0.1/{user}", "sip:{user}@127.0.0.1:5060\r\nX: y"])
def test_a_route_that_is_not_a_sip_uri_template_is_refused(guarded, uri):
    status, _, body = call(guarded.api_port, "POST", "/_harness/routes",
                           json.dumps({"number": "*", "uri": uri}).encode(), {**JSON, **BEARER})
    assert status == 400 and "not a SIP URI template" in body["Message"], body
    assert guarded.config.routes == {}


def test_the_journal_is_served_in_pages(guarded):
    for n in range(25):
        guarded.run_in_loop(lambda n=n: guarded._note(UpdateRequested(arguments={"n": str(n)})))
    seen, since = [], 0
    while True:
        status, _, page = call(guarded.api_port, "GET", f"/_harness/journal?since={since}&limit=10",
                               headers=BEARER)
        assert status == 200 and len(page["entries"]) <= 10
        seen += [int(e["arguments"]["n"]) for e in page["entries"] if e["kind"] == "update_requested"]
        if page["next"] >= page["total"]:
            break
        since = page["next"]
    assert seen == list(range(25))
    for query in ("limit=0", "limit=10001", "since=-1", "since=x"):
        assert call(guarded.api_port, "GET", f"/_harness/journal?{query}", headers=BEARER)[0] == 400


def test_a_control_plane_without_token_or_credentials_does_not_start(tmp_path):
    with pytest.raises(ValueError, match="token or API credentials"):
        Stub(dataclasses.replace(stub_config(tmp_path), control=ControlSettings(None))).start()
