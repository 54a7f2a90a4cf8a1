"""The OpenAPI document against botocore's model, and a bounded schemathesis run against the
live API (SigV4 on, every request signed by botocore) that must find no unexpected 5xx and no
response outside the document."""
from __future__ import annotations

import botocore.session
import pytest
import requests
import schemathesis
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, settings

from api_backend import CREDENTIALS, LiveApi, ModelBackend
from harness.api.openapi import openapi_document
from harness.api.operations import ROUTES
from harness.api.server import ApiSettings

MAX_EXAMPLES = 15  # per operation and mode; with the boundary cases about 280 requests


class BotocoreSigV4(requests.auth.AuthBase):
    """Sign each prepared request as botocore would for chime-sdk-voice."""

    def __init__(self, access_key: str, secret: str):
        self.credentials = Credentials(access_key, secret)

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        body = r.body.encode() if isinstance(r.body, str) else r.body or b""
        headers = {k: v for k, v in r.headers.items()
                   if k.lower() not in ("authorization", "x-amz-date")}
        signed = AWSRequest(method=r.method, url=r.url, data=body, headers=headers)
        SigV4Auth(self.credentials, "chime", "us-east-1").add_auth(signed)
        r.headers["Authorization"] = signed.headers["Authorization"]
        r.headers["X-Amz-Date"] = signed.headers["X-Amz-Date"]
        return r


def test_document_paths_are_the_models():
    model = botocore.session.get_session().get_service_model("chime-sdk-voice")
    paths = openapi_document()["paths"]
    for method, _, name, _ in ROUTES:
        op = model.operation_model(name)
        assert op.http["method"] == method
        assert paths[op.http["requestUri"]][method.lower()]["operationId"] == name


def test_document_carries_the_models_constraints():
    doc = openapi_document()
    schemas = doc["components"]["schemas"]
    arguments = schemas["UpdateSipMediaApplicationCallRequest"]["properties"]["Arguments"]
    assert (arguments["minProperties"], arguments["maxProperties"]) == (0, 20)
    assert schemas["UpdateSipMediaApplicationCallRequest"]["required"] == ["Arguments"]
    create = schemas["CreateSipMediaApplicationCallRequest"]
    assert create["properties"]["FromPhoneNumber"]["pattern"] == r"^\+?[1-9]\d{1,14}$"
    listing = doc["paths"]["/sip-media-applications"]["get"]["parameters"]
    assert {p["name"]: p["schema"] for p in listing}["max-results"] == {
        "type": "integer", "minimum": 1, "maximum": 100}


@pytest.fixture(scope="module")
def live_api():
    backend = ModelBackend()
    backend.new_call()
    with LiveApi(backend, ApiSettings(credentials=CREDENTIALS)) as api:
        yield api


schema = schemathesis.openapi.from_dict(openapi_document())
schema.config.generation.update(modes=[schemathesis.GenerationMode.POSITIVE,
                                       schemathesis.GenerationMode.NEGATIVE],
                                deterministic=True)
schema.auth.set_from_requests(BotocoreSigV4("AKIDOWNER", "owner-secret"))


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_fuzz(case, live_api):
    # The service models no 405: a wrong method is answered 400 BadRequestException (with
    # Allow), which test_api_http pins, so the check that wants 405 does not apply.
    excluded = [schemathesis.checks.unsupported_method]
    if case.query and "next-token" in case.query:
        # Any string is schema-valid, but only a token the list returned is accepted.
        excluded.append(schemathesis.checks.positive_data_acceptance)
    case.call_and_validate(base_url=live_api.url, timeout=10,
                           excluded_checks=excluded)


@pytest.mark.parametrize("name", ["X-Caller", "x-a.b!c%d*e_f+g`h'i~j", "User-to-User", "DIVERSION",
                                  "X-", "X-amznfoo", "x-amzn", "X-Amzn-Trace", "x-vc-id", "X-Voice",
                                  "Foo", "User-to-User2", "X-a b", "µ¹5", ""])
def test_the_documents_sip_header_names_are_the_checks(name):
    """The document states the service's SipHeaders rules, as the API checks them."""
    import re
    from harness.sma.sip_headers import InvalidSipHeaders, check_sip_headers
    schema = openapi_document()["components"]["schemas"]["CreateSipMediaApplicationCallRequest"]
    pattern = schema["properties"]["SipHeaders"]["propertyNames"]["pattern"]
    try:
        check_sip_headers({name: "value"})
        accepted = True
    except InvalidSipHeaders:
        accepted = False
    assert bool(re.search(pattern, name)) == accepted
