"""SRTP in a capture, decrypted with the SDES keys of the calls' SDP (RFC 4568, RFC 3711).

Each side's `a=crypto` key protects what that side sends, so a key announced in the SDP of
media address A decrypts the SRTP from A (and the SRTCP from A's RTCP port). The SDP may come
from the capture or from a user agent's message log (SIP over TLS); keys can also be given
explicitly (`sip-harness analyze --srtp-key`). Decrypted datagrams replace the encrypted ones,
so every later step (streams, statistics, audio, the switch) reads clear RTP; a packet that
fails authentication stays as it was and is counted, so a wrong key shows as a flow whose
packets all failed, never as silently wrong audio.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

import numpy as np
import pylibsrtp

from harness.media.srtp import srtp_session
from harness.sip.sdes import SdesCrypto, choose
from harness.sip.sdp import SdpError, parse_sdp
from harness.wire.datagrams import Datagrams
from harness.wire.packets import Address
from harness.wire.sip_ladder import SipOnWire, has_sdp

_RTCP_TYPES = range(192, 224)


@dataclass(frozen=True)
class SrtpFlow:
    """What decrypting the packets from one media address gave."""

    src: Address
    suite: str
    #: where the key came from: "sdp" (frame or log entry number in `setup_number`) or "given"
    key_from: str
    packets: int
    decrypted: int
    #: packets that failed authentication (a wrong key) or replay checks
    failed: int
    rtcp_packets: int = 0
    rtcp_decrypted: int = 0
    setup_number: int | None = None

    @property
    def ok(self) -> bool:
        return self.packets > 0 and self.failed == 0

    def describe(self) -> str:
        src = f"{self.src[0]}:{self.src[1]}"
        if not self.packets:
            return f"SRTP from {src}: key announced, no packet seen"
        text = f"SRTP from {src} ({self.suite}, key from {self.key_from}): {self.decrypted}/{self.packets} decrypted"
        if self.failed:
            text += f", {self.failed} failed authentication"
        if self.rtcp_packets:
            text += f"; SRTCP {self.rtcp_decrypted}/{self.rtcp_packets}"
        return text


@dataclass(frozen=True)
class _Key:
    crypto: SdesCrypto
    key_from: str
    setup_number: int | None


def keys_from_sdp(sip: Iterable[SipOnWire]) -> dict[Address, _Key]:
    """Media address -> the SDES key its SDP announced (the latest announcement wins)."""
    keys: dict[Address, _Key] = {}
    for msg in sorted(sip, key=lambda m: m.last_number):
        if not has_sdp(msg.message):
            continue
        try:
            sd = parse_sdp(msg.message.body)
        except SdpError:
            continue
        audio = sd.audio()
        host = audio and (audio.connection or sd.connection)
        if audio is None or not audio.secure or not audio.port or not host:
            continue
        crypto = choose(audio.crypto)
        if crypto is not None:
            keys[(host, audio.port)] = _Key(crypto, "sdp", msg.last_number)
    return keys


def decrypt_srtp(dg: Datagrams, sip: Iterable[SipOnWire],
                 given: Mapping[Address, SdesCrypto] | None = None) -> tuple[Datagrams, list[SrtpFlow]]:
    """`dg` with the SRTP and SRTCP from every keyed address decrypted, and a report per
    address. `given` keys take the place of those in the SDP for their addresses."""
    keys = keys_from_sdp(sip)
    keys.update({addr: _Key(crypto, "given", None) for addr, crypto in (given or {}).items()})
    if not keys:
        return dg, []
    data = bytearray(dg.data)
    offset, length = dg.offset.copy(), dg.length.copy()
    flows = []
    for addr, key in keys.items():
        counts = [0, 0, 0, 0, 0]  # packets, decrypted, failed, rtcp packets, rtcp decrypted
        for port, rtcp_only in ((addr[1], False), (addr[1] + 1, True)):
            src = dg.key((addr[0], port))
            if src is None:
                continue
            session = srtp_session(key.crypto, outbound=False)
            for row in np.flatnonzero(dg.src == src).tolist():
                _decrypt_row(dg, row, session, rtcp_only, data, offset, length, counts)
        flows.append(SrtpFlow(addr, key.crypto.suite, key.key_from, counts[0], counts[1], counts[2],
                              counts[3], counts[4], key.setup_number))
    return replace(dg, data=bytes(data), offset=offset, length=length), flows  # headers stay clear


def _decrypt_row(dg: Datagrams, row: int, session: pylibsrtp.Session, rtcp_only: bool,
                 data: bytearray, offset: np.ndarray, length: np.ndarray, counts: list[int]) -> None:
    packet = dg.payload(row)
    if len(packet) < 12 or packet[0] >> 6 != 2:
        return
    rtcp = len(packet) > 1 and packet[1] in _RTCP_TYPES
    if rtcp_only and not rtcp:
        return
    try:
        clear = session.unprotect_rtcp(packet) if rtcp else session.unprotect(packet)
    except pylibsrtp.Error:
        counts[3 if rtcp else 0] += 1
        if not rtcp:
            counts[2] += 1
        return
    counts[3 if rtcp else 0] += 1
    counts[4 if rtcp else 1] += 1
    start = int(offset[row])
    data[start:start + len(clear)] = clear  # a clear packet is never longer than its SRTP
    length[row] = len(clear)

