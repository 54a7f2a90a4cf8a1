"""SRTP and SRTCP for one leg (RFC 3711), keyed by SDES, through libsrtp (pylibsrtp).

Each direction has its own master key: the local `a=crypto` protects what we send, the
remote's decrypts what arrives. libsrtp keeps each SSRC's rollover counter and replay window.
"""
from __future__ import annotations

import pylibsrtp

from ..sip.sdes import AES_CM_128_HMAC_SHA1_32, SdesCrypto

_PROFILES = {AES_CM_128_HMAC_SHA1_32: pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32}


def srtp_session(crypto: SdesCrypto, outbound: bool) -> pylibsrtp.Session:
    """A libsrtp session for every SSRC in one direction, keyed by `crypto`."""
    policy = pylibsrtp.Policy(
        key=crypto.key,
        ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND if outbound else pylibsrtp.Policy.SSRC_ANY_INBOUND,
        srtp_profile=_PROFILES.get(crypto.suite, pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80))
    policy.allow_repeat_tx = True  # a retransmitted packet (impairment duplicates) is allowed
    return pylibsrtp.Session(policy)


class SrtpContext:
    """Protects outgoing RTP/RTCP with `local`, unprotects incoming with `remote`.

    `unprotect` and `unprotect_rtcp` return None for a packet that fails authentication or
    replay checks (counted in `rejected`): such a packet is dropped, as RFC 3711 says.
    """

    def __init__(self, local: SdesCrypto, remote: SdesCrypto):
        self.local, self.remote = local, remote
        self._out, self._in = srtp_session(local, True), srtp_session(remote, False)
        self.rejected = 0

    def protect(self, packet: bytes) -> bytes:
        return self._out.protect(packet)

    def protect_rtcp(self, packet: bytes) -> bytes:
        return self._out.protect_rtcp(packet)

    def unprotect(self, packet: bytes) -> bytes | None:
        try:
            return self._in.unprotect(packet)
        except pylibsrtp.Error:
            self.rejected += 1
            return None

    def unprotect_rtcp(self, packet: bytes) -> bytes | None:
        try:
            return self._in.unprotect_rtcp(packet)
        except pylibsrtp.Error:
            self.rejected += 1
            return None
