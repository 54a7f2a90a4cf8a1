"""The API tests' backend: the real service model with no SIP or handlers, served on loopback."""
from __future__ import annotations

import asyncio
import threading
import time

from aiohttp import web

from harness.api.server import ApiSettings, build_app
from harness.api.serving import ApiRunner
from harness.sma.engine import MAX_INVOCATIONS
from harness.sma.errors import ResourceLimitExceeded
from harness.sma.model import Leg, SipMediaApplication, SipRule, new_id
from harness.sma.service import SmaService

OWNER_ACCOUNT, OTHER_ACCOUNT = "111111111111", "222222222222"
SMA_ID = "6a1c3b9e-2f4d-4e8a-9b7c-0d1e2f3a4b5c"
OTHER_SMA_ID = "7b2d4c0f-3a5e-4f9b-8c8d-1e2f3a4b5c6d"
CREDENTIALS = {"AKIDOWNER": ("owner-secret", OWNER_ACCOUNT),
               "AKIDOTHER": ("other-secret", OTHER_ACCOUNT)}


class ModelBackend:
    """`harness.api.operations.Backend` over a real `SmaService`; transactions are the model's own."""

    def __init__(self):
        self.service = SmaService(time.monotonic, lambda: int(time.time() * 1000))
        self.draining = False
        self.created: list[dict] = []
        self.service.add_application(SipMediaApplication(
            SMA_ID, "handler.py", name="owner-app", aws_account_id=OWNER_ACCOUNT))
        self.service.add_application(SipMediaApplication(
            OTHER_SMA_ID, "handler.py", name="other-app", aws_account_id=OTHER_ACCOUNT,
            aws_region="eu-central-1"))
        self.service.add_rule(SipRule("rule-owner", "ToPhoneNumber", "+12065550100",
                                      [(1, SMA_ID)], name="owner-rule"))
        self.service.add_rule(SipRule("rule-other", "RequestUriHostname", "example.com",
                                      [(1, OTHER_SMA_ID)], name="other-rule"))

    def new_call(self, sma_id: str = SMA_ID) -> str:
        """A transaction with a live LEG-A whose NEW_INBOUND_CALL has been answered."""
        tx = self.service.new_transaction(self.service.applications[sma_id], None)
        tx.inbound_call(Leg(new_id(), "LEG-A", "+12065550100", "+14255550199", "Inbound", 0))
        tx.handler_result(tx.sequence, {"SchemaVersion": "1.0"})
        tx.take_commands()
        return tx.transaction_id

    def update_call(self, sma_id: str, transaction_id: str, arguments: dict[str, str]) -> str:
        tx = self.service.find_transaction(sma_id, transaction_id)
        if tx.sequence >= MAX_INVOCATIONS:
            raise ResourceLimitExceeded(f"Transaction {transaction_id} used its "
                                        f"{MAX_INVOCATIONS} invocations")
        tx.update_requested(arguments)
        return tx.transaction_id

    def create_call(self, sma_id: str, from_number: str, to_number: str,
                    sip_headers: dict[str, str], arguments: dict[str, str]) -> str:
        sma = self.service.applications[sma_id]
        tx = self.service.new_transaction(sma, None)
        self.created.append({"TransactionId": tx.transaction_id, "From": from_number,
                             "To": to_number, "SipHeaders": sip_headers, "Arguments": arguments})
        return tx.transaction_id


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


class LiveApi:
    """`build_app(backend, settings)` served by `ApiRunner` on 127.0.0.1 from its own thread."""

    def __init__(self, backend: ModelBackend, settings: ApiSettings = ApiSettings()):
        self.backend, self.settings = backend, settings
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="api", daemon=True)
        self._runner: ApiRunner | None = None
        self.url = ""

    async def _start(self) -> None:
        self._runner = ApiRunner(build_app(self.backend, self.settings), access_log=None,
                                 keepalive_timeout=self.settings.idle_timeout_s)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    def __enter__(self) -> "LiveApi":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
