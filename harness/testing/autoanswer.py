"""A minimal layer above `SipEndpoint` that answers every call: the SIP core without the SMA,
for interop tests and the benchmark. It announces an RTP port but sends no media."""
from __future__ import annotations

from collections.abc import Callable

from ..sip.endpoint import SipEndpoint
from ..sip.events import IncomingCall
from ..sip.sdp import SdpError, answer_offer, build_answer, parse_sdp


class AutoAnswer:
    """An `on_event` callback: rings and answers each `IncomingCall` (488 when its offer
    matches nothing); with `answer=False` it only rings. Every event is kept in `events`."""

    def __init__(self, clock: Callable[[], float], answer: bool = True, media_port: int = 40000):
        self.clock, self.answer, self.media_port = clock, answer, media_port
        self.endpoint: SipEndpoint | None = None
        self.events: list[object] = []

    def __call__(self, event: object) -> None:
        self.events.append(event)
        if isinstance(event, IncomingCall):
            self._incoming(event)

    def _incoming(self, event: IncomingCall) -> None:
        ep, now = self.endpoint, self.clock()
        try:
            offer = parse_sdp(event.request.body)
            audio = answer_offer(offer)
        except SdpError:
            ep.reject(event.sip_call_id, 488, now)
            return
        ep.ring(event.sip_call_id)
        if self.answer:
            ep.answer(event.sip_call_id, build_answer(offer, audio, ep.host, self.media_port, 1, 1), now)
