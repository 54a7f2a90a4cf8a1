"""The chime-sdk-voice operations the stub serves, each mapping one HTTP request to the backend.

Account ownership is checked here: the caller's account (from its SigV4 access key, or None
when the API checks no signatures) may only see and use its own SIP media applications.
"""
from __future__ import annotations

import json
import uuid
from typing import Protocol

from aiohttp import web

from ..sma.errors import BadRequest, Forbidden, NotFound
from ..sma.sip_headers import InvalidSipHeaders, check_sip_headers
from ..sma.model import SipMediaApplication, SipRule
from ..sma.service import SmaService
from .validation import json_body, optional_query_id, page, path_id, phone_number, string_map


class Backend(Protocol):
    """What the API needs from the stub."""

    service: SmaService  # applications and rules, for the read operations and ownership
    draining: bool  # True while shutting down: every operation answers 503

    def update_call(self, sma_id: str, transaction_id: str,
                    arguments: dict[str, str]) -> str: ...

    def create_call(self, sma_id: str, from_number: str, to_number: str,
                    sip_headers: dict[str, str], arguments: dict[str, str]) -> str: ...


CALLER_ACCOUNT = web.RequestKey("caller_account", str | None)

#: (method, path, operation name, Operations attribute), paths as botocore's model has them.
#: Ids may be blank in the path (botocore sends them so); the handlers answer 400 for them.
ROUTES = (
    ("POST", "/sip-media-applications/{sma_id:[^/]*}/calls/{tx_id:[^/]*}",
     "UpdateSipMediaApplicationCall", "update_call"),
    ("POST", "/sip-media-applications/{sma_id:[^/]*}/calls",
     "CreateSipMediaApplicationCall", "create_call"),
    ("GET", "/sip-media-applications/{sma_id:[^/]*}", "GetSipMediaApplication",
     "get_application"),
    ("GET", "/sip-media-applications", "ListSipMediaApplications", "list_applications"),
    ("GET", "/sip-rules/{rule_id:[^/]*}", "GetSipRule", "get_rule"),
    ("GET", "/sip-rules", "ListSipRules", "list_rules"),
)
OPERATION_NAMES = frozenset(name for _, _, name, _ in ROUTES)


def ok(status: int, payload: dict) -> web.Response:
    """A success response with the service's headers."""
    return web.Response(status=status, body=json.dumps(payload).encode(),
                        headers={"Content-Type": "application/json",
                                 "x-amzn-RequestId": str(uuid.uuid4())})


def application_shape(sma: SipMediaApplication) -> dict:
    """A `SipMediaApplication` output structure."""
    return {"SipMediaApplicationId": sma.sip_media_application_id, "AwsRegion": sma.aws_region,
            "Name": sma.name, "Endpoints": [{"LambdaArn": sma.lambda_arn}],
            "SipMediaApplicationArn": sma.arn}


def rule_shape(rule: SipRule, applications: dict[str, SipMediaApplication]) -> dict:
    """A `SipRule` output structure; a target's AwsRegion is its SMA's."""
    targets = []
    for priority, sma_id in rule.targets:
        target = {"SipMediaApplicationId": sma_id, "Priority": priority}
        if sma_id in applications:
            target["AwsRegion"] = applications[sma_id].aws_region
        targets.append(target)
    return {"SipRuleId": rule.sip_rule_id, "Name": rule.name, "Disabled": False,
            "TriggerType": rule.trigger_type, "TriggerValue": rule.trigger_value,
            "TargetApplications": targets}


class Operations:
    """Request handlers over one backend."""

    def __init__(self, backend: Backend):
        self.backend = backend

    # ---- ownership ----------------------------------------------------------------------
    def _application(self, request: web.Request, sma_id: str) -> SipMediaApplication:
        sma = self.backend.service.applications.get(sma_id)
        if sma is None:
            raise NotFound(f"SIP media application {sma_id} not found")
        caller = request[CALLER_ACCOUNT]
        if caller is not None and sma.aws_account_id != caller:
            raise Forbidden(f"SIP media application {sma_id} belongs to another account")
        return sma

    def _owns_rule(self, request: web.Request, rule: SipRule) -> bool:
        """A rule belongs to the accounts of the SMAs it targets."""
        caller = request[CALLER_ACCOUNT]
        applications = self.backend.service.applications
        accounts = {applications[s].aws_account_id for _, s in rule.targets if s in applications}
        return caller is None or not accounts or caller in accounts

    # ---- operations ---------------------------------------------------------------------
    async def update_call(self, request: web.Request) -> web.Response:
        sma_id = path_id(request, "sma_id", "SipMediaApplicationId")
        tx_id = path_id(request, "tx_id", "TransactionId")
        arguments = string_map(await json_body(request), "Arguments", required=True)
        self._application(request, sma_id)
        transaction_id = self.backend.update_call(sma_id, tx_id, arguments)
        return ok(202, {"SipMediaApplicationCall": {"TransactionId": transaction_id}})

    async def create_call(self, request: web.Request) -> web.Response:
        sma_id = path_id(request, "sma_id", "SipMediaApplicationId")
        body = await json_body(request)
        from_number = phone_number(body, "FromPhoneNumber")
        to_number = phone_number(body, "ToPhoneNumber")
        try:
            sip_headers = check_sip_headers(string_map(body, "SipHeaders", required=False))
        except InvalidSipHeaders as exc:
            raise BadRequest(exc.message) from None
        arguments = string_map(body, "ArgumentsMap", required=False)
        self._application(request, sma_id)
        transaction_id = self.backend.create_call(sma_id, from_number, to_number, sip_headers,
                                                  arguments)
        return ok(201, {"SipMediaApplicationCall": {"TransactionId": transaction_id}})

    async def get_application(self, request: web.Request) -> web.Response:
        sma_id = path_id(request, "sma_id", "SipMediaApplicationId")
        return ok(200, {"SipMediaApplication": application_shape(
            self._application(request, sma_id))})

    async def list_applications(self, request: web.Request) -> web.Response:
        caller = request[CALLER_ACCOUNT]
        mine = [sma for sma in self.backend.service.applications.values()
                if caller is None or sma.aws_account_id == caller]
        items, next_token = page(mine, request)
        out: dict = {"SipMediaApplications": [application_shape(sma) for sma in items]}
        if next_token is not None:
            out["NextToken"] = next_token
        return ok(200, out)

    async def get_rule(self, request: web.Request) -> web.Response:
        rule_id = path_id(request, "rule_id", "SipRuleId")
        rule = next((r for r in self.backend.service.rules if r.sip_rule_id == rule_id), None)
        if rule is None:
            raise NotFound(f"SIP rule {rule_id} not found")
        if not self._owns_rule(request, rule):
            raise Forbidden(f"SIP rule {rule_id} belongs to another account")
        return ok(200, {"SipRule": rule_shape(rule, self.backend.service.applications)})

    async def list_rules(self, request: web.Request) -> web.Response:
        sma_id = optional_query_id(request, "sip-media-application", "SipMediaApplicationId")
        if sma_id is not None:
            self._application(request, sma_id)
        rules = [r for r in self.backend.service.rules if self._owns_rule(request, r)
                 and (sma_id is None or any(s == sma_id for _, s in r.targets))]
        items, next_token = page(rules, request)
        applications = self.backend.service.applications
        out: dict = {"SipRules": [rule_shape(r, applications) for r in items]}
        if next_token is not None:
            out["NextToken"] = next_token
        return ok(200, out)
