"""Each API request in the backend's journal (`api_request`): method, path, operation,
status, duration and the SMA and TransactionId it names, so a served stub can log it and a
report can show a refused request beside the call it concerned. Health checks (`/ready`) and
the harness's own control routes (`/_harness/`) are not API requests and are left out."""
from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from ..journal_entries import ApiRequest

#: the app key holding the backend's `note(entry)` (a `journal_entries.Entry`)
NOTE = web.AppKey("api_access_note", object)
LOGGER = logging.getLogger(__name__)


class JournalAccessLog(AbstractAccessLogger):
    """aiohttp's access logger, writing to the journal of `request.app[NOTE]`."""

    def log(self, request, response, time: float) -> None:
        note = request.app.get(NOTE) if hasattr(request, "app") else None
        if note is None or request.path == "/ready" or request.path.startswith("/_harness/"):
            return
        info = getattr(request, "match_info", None)
        route = getattr(getattr(info, "route", None), "name", None)
        ids = dict(info) if info is not None else {}
        note(ApiRequest(transaction_id=ids.get("tx_id"), method=request.method, path=request.path,
                        operation=route, status=response.status,
                        duration_ms=round(time * 1000, 3),
                        sip_media_application_id=ids.get("sma_id"), remote=request.remote))
