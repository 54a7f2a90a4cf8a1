"""UpdateSipMediaApplicationCall as boto3 users call it, and the service's error format."""
import json
import urllib.request

import boto3
import pytest

from conftest import SMA_ID, live_transaction, wait_until
from harness.journal_view import JournalView


@pytest.fixture
def client(stub):
    return boto3.client("chime-sdk-voice", endpoint_url=stub.api_url, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


def raw_post(stub, path: str, body: bytes, content_type="application/json"):
    req = urllib.request.Request(stub.api_url + path, data=body, method="POST",
                                 headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


def test_update_returns_202_and_the_handler_gets_call_update_requested(stub, client, sipp_call):
    sipp_call(stub, hold_ms=4000)
    tx = live_transaction(stub)
    resp = client.update_sip_media_application_call(
        SipMediaApplicationId=SMA_ID, TransactionId=tx, Arguments={"action": "none", "k": "v"})
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert resp["SipMediaApplicationCall"] == {"TransactionId": tx}
    assert resp["ResponseMetadata"]["RequestId"]

    def update_event():
        return [i.event for i in JournalView(stub.journal_json()).invocations("CALL_UPDATE_REQUESTED")]
    (event,) = wait_until(update_event)
    assert event["ActionData"] == {"Type": "CallUpdateRequest",
                                   "Parameters": {"Arguments": {"action": "none", "k": "v"}}}
    assert event["CallDetails"]["TransactionId"] == tx


def test_unknown_transaction_raises_not_found(stub, client):
    with pytest.raises(client.exceptions.NotFoundException) as info:
        client.update_sip_media_application_call(
            SipMediaApplicationId=SMA_ID, TransactionId="0d6c8a3e-0000-4000-8000-000000000000",
            Arguments={})
    err = info.value.response
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert err["Error"]["Message"]


def test_unknown_sma_raises_not_found(stub, client):
    with pytest.raises(client.exceptions.NotFoundException):
        client.update_sip_media_application_call(
            SipMediaApplicationId="no-such-sma", TransactionId="t", Arguments={})


def test_more_than_20_arguments_is_a_bad_request(stub, client, sipp_call):
    sipp_call(stub, hold_ms=3000)
    tx = live_transaction(stub)
    with pytest.raises(client.exceptions.BadRequestException):
        client.update_sip_media_application_call(
            SipMediaApplicationId=SMA_ID, TransactionId=tx,
            Arguments={f"k{i}": "v" for i in range(21)})


def test_blank_id_is_a_bad_request(stub, client):
    with pytest.raises(client.exceptions.BadRequestException):
        client.update_sip_media_application_call(
            SipMediaApplicationId=" ", TransactionId="t", Arguments={})


@pytest.mark.parametrize("body,reason", [
    (b"{not json", "not valid JSON"),
    (b"[]", "JSON object"),
    (b"{}", "Arguments is required"),
    (b'{"Arguments": {"a": 1}}', "must be strings"),
])
def test_bad_bodies_get_the_modeled_error_format(stub, body, reason):
    status, headers, payload = raw_post(stub, f"/sip-media-applications/{SMA_ID}/calls/t", body)
    assert status == 400
    assert headers["x-amzn-ErrorType"] == "BadRequestException"
    assert headers["x-amzn-RequestId"]
    assert payload["Code"] == "BadRequest" and reason in payload["Message"]


def test_unknown_route_is_not_found_in_the_service_format(stub):
    status, headers, payload = raw_post(stub, "/no/such/route", b"{}")
    assert status == 404 and headers["x-amzn-ErrorType"] == "NotFoundException"
    assert payload["Code"] == "NotFound"
