"""What the API and a handler could smuggle through the stub: SIP headers with CR/LF (header
injection into a leg the stub places), route templates and dialled numbers (a URI pointing
elsewhere, `str.format` gadgets), bucket names that climb out of the bucket folder."""
from __future__ import annotations

import json
import socket

import pytest

from api_backend import SMA_ID as MODEL_SMA_ID, LiveApi, ModelBackend
from conftest import ROOT, stub_config, wait_until
from harness.journal_view import JournalView
from harness.media.sources import InvalidAudioSource
from harness.sma.routes import RouteError, check_template, expand
from harness.sma.actions import ActionFailure, parse_action
from harness.sma.buckets import object_path as _bucket_path, valid_bucket_name
from harness.stub import Stub
from webclient import call

JSON = {"Content-Type": "application/json"}
HEADER_CASES = [  # (SipHeaders, accepted)
    ({"X-Case": "ok", "User-to-User": "0a0b;encoding=hex", "Diversion": "<sip:+1@h>;reason=x"}, True),
    ({"x-lower": "fine"}, True),
    ({"X-Evil": "a\r\nVia: SIP/2.0/UDP 203.0.113.9"}, False),
    ({"X-Evil": "a\nContact: <sip:x@203.0.113.9>"}, False),
    ({"X-Evil": "a\rb"}, False),
    ({"X-Evil": "nul\x00byte"}, False),
    ({"X-Evil\r\nVia": "x"}, False),
    ({"X Spaced": "x"}, False),
    ({"Contact": "<sip:x@203.0.113.9>"}, False),
    ({"X-AMZN": "reserved"}, False),
    ({"x-amzn-trace": "reserved"}, False),
    ({"X-VC-Id": "internal"}, False),
    ({"X-Long": "v" * 2048}, True),
    ({"X-Long": "v" * 2049}, False),
    ({f"X-{n}": "v" for n in range(21)}, False),
    ({"X-Tab": "a\tb"}, True),
]


def bridge(headers: dict) -> dict:
    return {"Type": "CallAndBridge", "Parameters": {
        "CallerIdNumber": "+14255550199", "SipHeaders": headers, "Endpoints": [
            {"BridgeEndpointType": "AWS", "Uri": "+14345550199", "Arn": "arn:aws:chime:vc/1"}]}}


def action_accepts(headers: dict) -> bool:
    try:
        parse_action(bridge(headers))
        return True
    except ActionFailure as exc:
        assert exc.error_type == "InvalidActionParameter" and "SipHeaders" in exc.message.replace("SIP header", "SipHeaders")
        return False


@pytest.fixture(scope="module")
def model_api():
    with LiveApi(ModelBackend()) as api:
        yield api


@pytest.mark.parametrize("headers,accepted", HEADER_CASES)
def test_sip_headers_are_judged_alike_on_the_api_and_the_action_path(model_api, headers, accepted):
    port = int(model_api.url.rsplit(":", 1)[1])
    body = json.dumps({"FromPhoneNumber": "+14255550199", "ToPhoneNumber": "+14345550101",
                       "SipHeaders": headers}).encode()
    status, _, reply = call(port, "POST", f"/sip-media-applications/{MODEL_SMA_ID}/calls", body, JSON)
    assert (status == 201) is accepted, reply
    if not accepted:
        assert reply["Code"] == "BadRequest"
    assert action_accepts(headers) is accepted


class SipSink:
    """A UDP socket standing in for the far end of the legs the stub places."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]

    def received(self) -> list[bytes]:
        out = []
        try:
            while True:
                out.append(self.sock.recv(65536))
        except OSError:
            return out


def test_the_api_refuses_injected_headers_before_anything_is_sent(stub):
    sink = SipSink()
    stub.add_route("*", f"sip:{{user}}@127.0.0.1:{sink.port}")
    path = f"/sip-media-applications/{stub.config.applications[0].sip_media_application_id}/calls"
    evil = {"FromPhoneNumber": "+14255550199", "ToPhoneNumber": "+14345550101",
            "SipHeaders": {"X-Evil": "a\r\nVia: SIP/2.0/UDP 203.0.113.9:5060"}}
    status, _, reply = call(stub.api_port, "POST", path, json.dumps(evil).encode(), JSON)
    assert status == 400 and "Invalid SIP header(s) provided: X-Evil" in reply["Message"]
    assert stub.resources()["transactions"] == 0
    good = dict(evil, SipHeaders={"X-Case": "plain"})
    assert call(stub.api_port, "POST", path, json.dumps(good).encode(), JSON)[0] == 201
    invite = next(d for d in wait_until(sink.received, 5) if d.startswith(b"INVITE"))
    assert b"\r\nX-Case: plain\r\n" in invite and b"203.0.113.9" not in invite


def test_a_handler_cannot_inject_headers_into_a_bridged_leg(tmp_path, sipp_call):
    sink = SipSink()
    with Stub(stub_config(tmp_path, str(ROOT / "tests" / "data" / "handlers" / "security.py"))) as s:
        s.add_route("*", f"sip:{{user}}@127.0.0.1:{sink.port}")
        sipp_call(s, hold_ms=3000, to_user="+14345550122")
        failed = wait_until(lambda: JournalView(s.journal_json()).invocations("ACTION_FAILED"), 10)
        assert failed, s.journal_json()
        data = failed[0].action_data
        assert (data["ErrorType"], data["ErrorMessage"]) == (
            "InvalidActionParameter", "Invalid SIP header(s) provided: X-Case")
        assert not [d for d in sink.received() if d.startswith(b"INVITE")]


@pytest.mark.parametrize("dialled", ["x@203.0.113.9:5060", "a;maddr=203.0.113.9", "{user.__class__}",
                                     "+1\r\nVia: x", "", "a" * 65])
def test_a_number_that_would_change_the_route_cannot_be_dialled(dialled):
    with pytest.raises(RouteError):
        expand("sip:{user}@127.0.0.1:5090", dialled)


def test_route_templates_are_never_evaluated():
    template = check_template("sip:x{user.__class__.__mro__}y@127.0.0.1:5090")
    assert expand(template, "+14345550101") == template  # no `{user}`: the text as it is
    assert expand("sip:{user}@127.0.0.1:5090;transport=tcp", "+1434") == \
        "sip:+1434@127.0.0.1:5090;transport=tcp"


@pytest.mark.parametrize("uri", ["x@203.0.113.9", "a:b", "with space", "a" * 31])
def test_an_aws_endpoint_uri_outside_the_services_characters_is_invalid(uri):
    action = bridge({})
    action["Parameters"]["Endpoints"][0]["Uri"] = uri
    with pytest.raises(ActionFailure, match="Endpoints"):
        parse_action(action)


@pytest.mark.parametrize("name", ["../../..", "..", ".", "a", "ab", "UPPER", "under_score", "a..b",
                                  "-dash", "dash-", "192.168.5.4", "xn--bucket", "sthree-x",
                                  "amzn-s3-demo-x", "x-s3alias", "x--ol-s3", "x.mrap", "x--x-s3",
                                  "x--table-s3", "a" * 64, "a/b", "a\\b", ""])
def test_bucket_names_s3_refuses_are_refused(tmp_path, name):
    assert not valid_bucket_name(name)
    with pytest.raises(ActionFailure, match="RecordingDestination"):
        parse_action({"Type": "RecordAudio", "Parameters": {
            "RecordingDestination": {"Type": "S3", "BucketName": name}}})
    with pytest.raises(InvalidAudioSource):
        _bucket_path(tmp_path / "root", name, "x.wav", must_exist=False)


@pytest.mark.parametrize("name", ["abc", "my.bucket-1", "prompts", "a" * 63, "1bucket"])
def test_bucket_names_s3_accepts_are_accepted(tmp_path, name):
    assert valid_bucket_name(name)
    assert _bucket_path(tmp_path, name, "k.wav", must_exist=False) == (tmp_path / name / "k.wav").resolve()


def test_a_recording_to_a_climbing_bucket_fails_and_writes_nothing_outside(tmp_path, sipp_call):
    run = tmp_path / "a" / "b" / "run"
    before = set(tmp_path.rglob("*"))
    with Stub(stub_config(run, str(ROOT / "tests" / "data" / "handlers" / "security.py"))) as s:
        call_ = sipp_call(s, hold_ms=2000, to_user="+14345550121")
        failed = wait_until(lambda: JournalView(s.journal_json()).invocations("ACTION_FAILED"), 10)
        assert failed and failed[0].action_data["ErrorType"] == "InvalidActionParameter"
        call_.wait(30)
    created = {p for p in set(tmp_path.rglob("*")) - before
               if not p.is_relative_to(run) and p not in run.parents}
    assert not created and not list(tmp_path.rglob("escaped-*"))
