"""The API as boto3's chime-sdk-voice client sees it: every operation, and each of the eight
modeled errors raised as its own exception class, with SigV4 checking on."""
from __future__ import annotations

import logging

import boto3
import botocore
import pytest
from botocore.config import Config

from api_backend import (CREDENTIALS, OTHER_SMA_ID, OWNER_ACCOUNT, SMA_ID, FakeClock, LiveApi,
                         ModelBackend)
from harness.api.errors import ERRORS
from harness.api.server import ApiSettings
from harness.sma.engine import MAX_INVOCATIONS
from harness.sma.model import SipRule

NO_RETRIES = Config(retries={"total_max_attempts": 1})


def make_client(api: LiveApi, key: str = "AKIDOWNER", secret: str = "owner-secret",
                config: Config = NO_RETRIES):
    return boto3.client("chime-sdk-voice", endpoint_url=api.url, region_name="us-east-1",
                        aws_access_key_id=key, aws_secret_access_key=secret, config=config)


@pytest.fixture
def backend():
    return ModelBackend()


@pytest.fixture
def api(backend):
    with LiveApi(backend, ApiSettings(credentials=CREDENTIALS)) as live:
        yield live


@pytest.fixture
def client(api):
    return make_client(api)


def raises(client, shape: str, call, **params) -> dict:
    """Call `client.<call>(**params)`; it must raise `client.exceptions.<shape>`."""
    with pytest.raises(getattr(client.exceptions, shape)) as info:
        getattr(client, call)(**params)
    response = info.value.response
    status, _ = next(v for v in ERRORS.values() if v[1] == shape)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert response["Error"]["Code"] == shape and response["Error"]["Message"]
    assert response["ResponseMetadata"]["RequestId"]
    return response


# ---- success ------------------------------------------------------------------------------
@pytest.mark.covers("operation:UpdateSipMediaApplicationCall")
def test_update_call_reaches_the_transaction(client, backend):
    tx_id = backend.new_call()
    resp = client.update_sip_media_application_call(
        SipMediaApplicationId=SMA_ID, TransactionId=tx_id, Arguments={"prompt": "goodbye"})
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert resp["SipMediaApplicationCall"] == {"TransactionId": tx_id}
    (invoke,) = backend.service.transactions[tx_id].take_commands()
    assert invoke.event["InvocationEventType"] == "CALL_UPDATE_REQUESTED"
    assert invoke.event["ActionData"]["Parameters"]["Arguments"] == {"prompt": "goodbye"}


@pytest.mark.covers("operation:CreateSipMediaApplicationCall")
def test_create_call_passes_numbers_headers_and_arguments(client, backend):
    resp = client.create_sip_media_application_call(
        SipMediaApplicationId=SMA_ID, FromPhoneNumber="+12065550100",
        ToPhoneNumber="+14255550199", SipHeaders={"User-to-User": "abc"},
        ArgumentsMap={"FirstName": "John"})
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 201
    (created,) = backend.created
    assert resp["SipMediaApplicationCall"] == {"TransactionId": created["TransactionId"]}
    assert created == {"TransactionId": created["TransactionId"], "From": "+12065550100",
                       "To": "+14255550199", "SipHeaders": {"User-to-User": "abc"},
                       "Arguments": {"FirstName": "John"}}


@pytest.mark.covers("operation:GetSipMediaApplication", "operation:ListSipMediaApplications")
def test_get_and_list_show_only_the_callers_applications(client):
    sma = client.get_sip_media_application(SipMediaApplicationId=SMA_ID)["SipMediaApplication"]
    assert sma == {"SipMediaApplicationId": SMA_ID, "AwsRegion": "us-east-1",
                   "Name": "owner-app",
                   "Endpoints": [{"LambdaArn": f"arn:aws:lambda:us-east-1:{OWNER_ACCOUNT}:"
                                               f"function:owner-app"}],
                   "SipMediaApplicationArn": f"arn:aws:chime:us-east-1:{OWNER_ACCOUNT}:"
                                             f"sma/{SMA_ID}"}
    listed = client.list_sip_media_applications()["SipMediaApplications"]
    assert [s["SipMediaApplicationId"] for s in listed] == [SMA_ID]


@pytest.mark.covers("operation:GetSipRule", "operation:ListSipRules")
def test_rules_are_read_and_filtered_by_application(client):
    rule = client.get_sip_rule(SipRuleId="rule-owner")["SipRule"]
    assert rule == {"SipRuleId": "rule-owner", "Name": "owner-rule", "Disabled": False,
                    "TriggerType": "ToPhoneNumber", "TriggerValue": "+12065550100",
                    "TargetApplications": [{"SipMediaApplicationId": SMA_ID, "Priority": 1,
                                            "AwsRegion": "us-east-1"}]}
    assert [r["SipRuleId"] for r in client.list_sip_rules()["SipRules"]] == ["rule-owner"]
    assert [r["SipRuleId"] for r in client.list_sip_rules(
        SipMediaApplicationId=SMA_ID)["SipRules"]] == ["rule-owner"]


def test_paginators_walk_every_page(api, backend):
    for i in range(4):
        backend.service.add_rule(SipRule(f"rule-{i}", "ToPhoneNumber", f"+1206555010{i}",
                                         [(1, SMA_ID)]))
    client = make_client(api)
    pages = list(client.get_paginator("list_sip_rules").paginate(
        PaginationConfig={"PageSize": 2}))
    assert [len(p["SipRules"]) for p in pages] == [2, 2, 1]
    assert [r["SipRuleId"] for p in pages for r in p["SipRules"]] == [
        "rule-owner", "rule-0", "rule-1", "rule-2", "rule-3"]
    assert "NextToken" not in pages[-1]


# ---- the eight modeled errors -----------------------------------------------------------------
@pytest.mark.parametrize("params", [
    {"SipMediaApplicationId": SMA_ID, "TransactionId": "t",
     "Arguments": {f"k{i}": "v" for i in range(21)}},
    {"SipMediaApplicationId": " ", "TransactionId": "t", "Arguments": {}},
    {"SipMediaApplicationId": SMA_ID, "TransactionId": "\t", "Arguments": {}},
], ids=["21-arguments", "blank-sma", "blank-transaction"])
@pytest.mark.covers("api-error:BadRequest")
def test_bad_request(client, params):
    raises(client, "BadRequestException", "update_sip_media_application_call", **params)


@pytest.mark.parametrize("number", ["+0123", "1", "+1206555010012345", "+1 206 555 0100", "+١٢٣"])
def test_create_call_with_a_non_e164_number_is_a_bad_request(client, number):
    raises(client, "BadRequestException", "create_sip_media_application_call",
           SipMediaApplicationId=SMA_ID, FromPhoneNumber=number, ToPhoneNumber="+14255550199")


def test_create_call_with_21_sip_headers_is_a_bad_request(client):
    raises(client, "BadRequestException", "create_sip_media_application_call",
           SipMediaApplicationId=SMA_ID, FromPhoneNumber="+12065550100",
           ToPhoneNumber="+14255550199", SipHeaders={f"X-{i}": "v" for i in range(21)})


def test_list_with_max_results_out_of_range_is_a_bad_request(api):
    # botocore checks MaxResults' minimum itself, so send what only another client would.
    client = make_client(api, config=Config(retries={"total_max_attempts": 1},
                                            parameter_validation=False))
    for value in (0, 101):
        raises(client, "BadRequestException", "list_sip_media_applications", MaxResults=value)


@pytest.mark.covers("api-error:NotFound")
def test_not_found(client, backend):
    raises(client, "NotFoundException", "update_sip_media_application_call",
           SipMediaApplicationId="no-such-sma", TransactionId="t", Arguments={})
    raises(client, "NotFoundException", "update_sip_media_application_call",
           SipMediaApplicationId=SMA_ID, TransactionId="0d6c8a3e-0000-4000-8000-000000000000",
           Arguments={})
    raises(client, "NotFoundException", "get_sip_media_application",
           SipMediaApplicationId="no-such-sma")
    raises(client, "NotFoundException", "get_sip_rule", SipRuleId="no-such-rule")
    raises(client, "NotFoundException", "create_sip_media_application_call",
           SipMediaApplicationId="no-such-sma", FromPhoneNumber="+12065550100",
           ToPhoneNumber="+14255550199")


def test_an_ended_call_is_not_found(client, backend):
    tx_id = backend.new_call()
    backend.service.transactions[tx_id].ended = True
    raises(client, "NotFoundException", "update_sip_media_application_call",
           SipMediaApplicationId=SMA_ID, TransactionId=tx_id, Arguments={})


def test_a_transaction_of_another_application_is_not_found(client, backend):
    tx_id = backend.new_call(OTHER_SMA_ID)
    raises(client, "NotFoundException", "update_sip_media_application_call",
           SipMediaApplicationId=SMA_ID, TransactionId=tx_id, Arguments={})


@pytest.mark.covers("api-error:Forbidden")
def test_forbidden_for_another_accounts_resources(client, backend):
    tx_id = backend.new_call(OTHER_SMA_ID)
    raises(client, "ForbiddenException", "update_sip_media_application_call",
           SipMediaApplicationId=OTHER_SMA_ID, TransactionId=tx_id, Arguments={})
    raises(client, "ForbiddenException", "create_sip_media_application_call",
           SipMediaApplicationId=OTHER_SMA_ID, FromPhoneNumber="+12065550100",
           ToPhoneNumber="+14255550199")
    raises(client, "ForbiddenException", "get_sip_media_application",
           SipMediaApplicationId=OTHER_SMA_ID)
    raises(client, "ForbiddenException", "get_sip_rule", SipRuleId="rule-other")
    raises(client, "ForbiddenException", "list_sip_rules", SipMediaApplicationId=OTHER_SMA_ID)
    assert backend.service.transactions[tx_id].sequence == 1  # NEW_INBOUND_CALL only: no update reached it


def test_the_other_account_sees_its_own(api):
    other = make_client(api, "AKIDOTHER", "other-secret")
    listed = other.list_sip_media_applications()["SipMediaApplications"]
    assert [(s["SipMediaApplicationId"], s["AwsRegion"]) for s in listed] == [
        (OTHER_SMA_ID, "eu-central-1")]


@pytest.mark.covers("api-error:Unauthorized")
def test_unauthorized(api):
    raises(make_client(api, "AKIDOWNER", "wrong-secret"), "UnauthorizedClientException",
           "list_sip_media_applications")
    raises(make_client(api, "AKIDUNKNOWN", "owner-secret"), "UnauthorizedClientException",
           "get_sip_media_application", SipMediaApplicationId=SMA_ID)
    unsigned = make_client(api, config=Config(retries={"total_max_attempts": 1},
                                              signature_version=botocore.UNSIGNED))
    raises(unsigned, "UnauthorizedClientException", "update_sip_media_application_call",
           SipMediaApplicationId=SMA_ID, TransactionId="t", Arguments={})


@pytest.mark.covers("api-error:ResourceLimitExceeded")
def test_resource_limit_exceeded_when_the_invocations_are_used_up(client, backend):
    tx_id = backend.new_call()
    backend.service.transactions[tx_id].sequence = MAX_INVOCATIONS  # as after 1,000 invocations
    raises(client, "ResourceLimitExceededException", "update_sip_media_application_call",
           SipMediaApplicationId=SMA_ID, TransactionId=tx_id, Arguments={})


@pytest.mark.covers("api-error:Throttled")
def test_throttled_per_account_until_tokens_refill(backend):
    clock = FakeClock()
    settings = ApiSettings(credentials=CREDENTIALS, throttle_rate=1.0, throttle_burst=2,
                           clock=clock)
    with LiveApi(backend, settings) as api:
        owner, other = make_client(api), make_client(api, "AKIDOTHER", "other-secret")
        owner.list_sip_rules()
        owner.list_sip_rules()
        raises(owner, "ThrottledClientException", "list_sip_rules")
        other.list_sip_rules()  # another account has its own bucket
        clock.now += 1.0
        owner.list_sip_rules()
        raises(owner, "ThrottledClientException", "list_sip_rules")


@pytest.mark.covers("api-error:ServiceUnavailable")
def test_service_unavailable_while_draining(client, backend):
    backend.draining = True
    raises(client, "ServiceUnavailableException", "update_sip_media_application_call",
           SipMediaApplicationId=SMA_ID, TransactionId="t", Arguments={})
    raises(client, "ServiceUnavailableException", "list_sip_media_applications")


@pytest.mark.covers("api-error:ServiceFailure")
def test_service_failure_is_logged(client, backend, caplog):
    def fault(*args):
        raise RuntimeError("model fault")
    backend.service.update_call = fault
    with caplog.at_level(logging.ERROR, logger="harness.api.server"):
        raises(client, "ServiceFailureException", "update_sip_media_application_call",
               SipMediaApplicationId=SMA_ID, TransactionId="t", Arguments={})
    assert any("model fault" in (r.exc_text or "") or r.exc_info for r in caplog.records)


def test_error_table_matches_botocores_model():
    model = botocore.session.get_session().get_service_model("chime-sdk-voice")
    for code, (status, shape) in ERRORS.items():
        assert model.shape_for(shape).metadata["error"]["httpStatusCode"] == status
        assert code in model.shape_for("ErrorCode").enum
