"""SDES keying of SRTP in SDP (RFC 4568): the `a=crypto` attribute, parsed and written.

Only AES_CM_128_HMAC_SHA1_80 and AES_CM_128_HMAC_SHA1_32 are carried (what a Voice Connector
with encryption and pjsua2 both speak); one inline key without MKI per attribute. The key is
30 bytes: the 16-byte master key followed by the 14-byte master salt.
"""
from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass

AES_CM_128_HMAC_SHA1_80 = "AES_CM_128_HMAC_SHA1_80"
AES_CM_128_HMAC_SHA1_32 = "AES_CM_128_HMAC_SHA1_32"
SUITES = (AES_CM_128_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_32)
KEY_BYTES = 30
SECURE_PROFILE = "RTP/SAVP"


class SdesError(ValueError):
    """An `a=crypto` attribute this side cannot use."""


@dataclass(frozen=True)
class SdesCrypto:
    """One `a=crypto` offer or answer: its tag, suite and master key||salt."""

    tag: int
    suite: str
    key: bytes

    @classmethod
    def parse(cls, value: str) -> "SdesCrypto":
        """`value` is what follows `a=crypto:`, e.g. `1 AES_CM_128_HMAC_SHA1_80 inline:KEY`."""
        fields = value.split()
        if len(fields) < 3 or not fields[0].isdigit():
            raise SdesError(f"bad a=crypto attribute {value[:60]!r}")
        suite, params = fields[1], fields[2]
        if suite not in SUITES:
            raise SdesError(f"unsupported crypto suite {suite}")
        method, _, material = params.partition(":")
        if method != "inline":
            raise SdesError(f"unsupported key method {method!r}")
        encoded = material.split("|")[0]
        try:
            key = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise SdesError(f"key of a=crypto tag {fields[0]} is not base64") from None
        if len(key) != KEY_BYTES:
            raise SdesError(f"key of a=crypto tag {fields[0]} has {len(key)} bytes, not {KEY_BYTES}")
        return cls(int(fields[0]), suite, key)

    @classmethod
    def generate(cls, tag: int = 1, suite: str = AES_CM_128_HMAC_SHA1_80) -> "SdesCrypto":
        """A fresh random key for `suite` (answers and offers each carry their own)."""
        return cls(tag, suite, secrets.token_bytes(KEY_BYTES))

    @property
    def inline(self) -> str:
        return base64.b64encode(self.key).decode()

    def attribute(self) -> str:
        """The SDP line: `a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:...`."""
        return f"a=crypto:{self.tag} {self.suite} inline:{self.inline}"


def choose(offered: list[str]) -> SdesCrypto | None:
    """The first offered `a=crypto` value we support (RFC 4568 §7.1.1), or None."""
    for value in offered:
        try:
            return SdesCrypto.parse(value)
        except SdesError:
            continue
    return None
