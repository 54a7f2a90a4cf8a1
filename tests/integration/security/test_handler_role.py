"""A handler of a stub whose API checks SigV4 signatures calls that API with its execution
role's credentials, as a Lambda does with its role's: they pass on the chime-sdk-voice
operations, open no control route, and are neither the operator's keys nor the fixed local
ones."""
from __future__ import annotations

import dataclasses
import json

from conftest import stub_config
from harness.api.server import ApiSettings
from harness.control import ControlSettings
from harness.journal_view import JournalView
from harness.lambdas.lambda_env import LOCAL_CREDENTIALS
from harness.sma.model import SipMediaApplication
from harness.stub import Stub

KEY, SECRET, ACCOUNT = "AKIDOPERATOR", "operator-secret", "123456789012"

HANDLER = '''
import json, os, urllib.error, urllib.request
import boto3, botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest


def control_status(url):
    creds = botocore.session.get_session().get_credentials()
    request = AWSRequest(method="GET", url=url)
    SigV4Auth(creds, "chime", os.environ["AWS_REGION"]).add_auth(request)
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=dict(request.headers))) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def lambda_handler(event, context):
    details = event["CallDetails"]
    if event["InvocationEventType"] == "NEW_INBOUND_CALL":
        client = boto3.client("chime-sdk-voice")
        sma = client.get_sip_media_application(
            SipMediaApplicationId=details["SipMediaApplicationId"])["SipMediaApplication"]
        client.update_sip_media_application_call(
            SipMediaApplicationId=details["SipMediaApplicationId"],
            TransactionId=details["TransactionId"], Arguments={"from": "handler"})
        with open(os.environ["RESULT_FILE"], "w") as f:
            json.dump({"sma": sma["SipMediaApplicationId"], "key": os.environ["AWS_ACCESS_KEY_ID"],
                       "control": control_status(os.environ["AWS_ENDPOINT_URL_CHIME_SDK_VOICE"]
                                                 + "/_harness/info")}, f)
        return {"SchemaVersion": "1.0", "Actions": [{"Type": "Pause", "Parameters": {"DurationInMilliseconds": "3000"}}]}
    if event["InvocationEventType"] == "CALL_UPDATE_REQUESTED":
        return {"SchemaVersion": "1.0", "Actions": [{"Type": "Hangup", "Parameters": {"SipResponseCode": "0"}}]}
    return {"SchemaVersion": "1.0", "Actions": []}
'''


def test_a_handler_signs_api_calls_with_its_role_which_opens_no_control_route(tmp_path, sipp_call):
    handler, result = tmp_path / "role_handler.py", tmp_path / "result.json"
    handler.write_text(HANDLER)
    base = stub_config(tmp_path / "run")
    sma = dataclasses.replace(base.applications[0], handler=str(handler),
                              environment={"RESULT_FILE": str(result)})
    config = dataclasses.replace(base, applications=[sma],
                                 api=ApiSettings(credentials={KEY: (SECRET, ACCOUNT)}),
                                 control=ControlSettings("control-token", ()))
    with Stub(config) as stub:
        call = sipp_call(stub, hold_ms=20000, until_bye=True)
        assert call.wait(40) == 0, call.proc.stderr.read().decode()
        journal = JournalView(stub.journal_json())
    updates, problems = journal.invocations("CALL_UPDATE_REQUESTED"), journal.problems()
    seen = json.loads(result.read_text())
    assert seen["sma"] == sma.sip_media_application_id, problems
    assert updates and updates[0].action_data["Parameters"]["Arguments"] == {"from": "handler"}
    assert seen["key"] not in (KEY, LOCAL_CREDENTIALS.access_key_id)
    assert seen["key"].startswith("ASIA")
    assert seen["control"] == 401
