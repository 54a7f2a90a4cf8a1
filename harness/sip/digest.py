"""HTTP digest authentication of SIP requests (RFC 3261 §22, RFC 2617 with qop=auth, MD5),
as a Voice Connector asks the INVITEs of its termination for credentials: sans-IO, the
challenger's side (the challenge to send, and whether an answer to it is right).
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import OrderedDict
from dataclasses import dataclass

CHALLENGE_STATUS = 407
CHALLENGE_HEADER = "Proxy-Authenticate"
ANSWER_HEADER = "proxy-authorization"
MAX_NONCES = 1024


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def parse_params(value: str) -> dict[str, str]:
    """The parameters of a `Digest k=v, k="v"` header value (names lowercase)."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        return {}
    params, i = {}, 0
    while i < len(rest):
        while i < len(rest) and rest[i] in " ,":
            i += 1
        eq = rest.find("=", i)
        if eq < 0:
            break
        name = rest[i:eq].strip().lower()
        i = eq + 1
        if i < len(rest) and rest[i] == '"':
            end = rest.find('"', i + 1)
            end = len(rest) if end < 0 else end
            params[name], i = rest[i + 1:end], end + 1
        else:
            end = rest.find(",", i)
            end = len(rest) if end < 0 else end
            params[name], i = rest[i:end].strip(), end
    return params


@dataclass
class DigestChallenger:
    """Issues nonces and checks answers for one realm and one user's credentials."""

    realm: str
    username: str
    password: str

    def __post_init__(self) -> None:
        self._nonces: OrderedDict[str, None] = OrderedDict()

    def challenge(self) -> tuple[str, str]:
        """A fresh challenge header (name, value); its nonce is remembered (the newest
        MAX_NONCES are)."""
        nonce = secrets.token_hex(16)
        self._nonces[nonce] = None
        while len(self._nonces) > MAX_NONCES:
            self._nonces.popitem(last=False)
        return CHALLENGE_HEADER, (f'Digest realm="{self.realm}", nonce="{nonce}", '
                                  f'algorithm=MD5, qop="auth"')

    def verify(self, method: str, authorization: str | None) -> str | None:
        """None when `authorization` answers one of our challenges with the right
        credentials for `method`; else why not."""
        if not authorization:
            return "no credentials"
        p = parse_params(authorization)
        if p.get("username") != self.username or p.get("realm") != self.realm:
            return f"unknown user {p.get('username')!r} in realm {p.get('realm')!r}"
        if p.get("nonce") not in self._nonces:
            return "stale or unknown nonce"
        if p.get("algorithm", "MD5").upper() != "MD5" or "uri" not in p or "response" not in p:
            return "unsupported or incomplete digest answer"
        ha1 = _md5(f"{self.username}:{self.realm}:{self.password}")
        ha2 = _md5(f"{method}:{p['uri']}")
        if p.get("qop") == "auth":
            expected = _md5(f"{ha1}:{p['nonce']}:{p.get('nc', '')}:{p.get('cnonce', '')}:auth:{ha2}")
        else:
            expected = _md5(f"{ha1}:{p['nonce']}:{ha2}")
        if not hmac.compare_digest(expected, p["response"].lower()):
            return "wrong password"
        return None
