"""SigV4 checking: re-sign the received request with botocore's signer and compare.

The canonical request, string to sign and signature are botocore's own (`SigV4Auth`); this
module only rebuilds the request as the client signed it: the raw path and query, exactly the
headers named in `SignedHeaders`, the body, and the client's `X-Amz-Date` and scope. The keys
it accepts come from an AWS shared-credentials file (`load_credentials`).
"""
from __future__ import annotations

import configparser
import hashlib
import hmac
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path

from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from multidict import CIMultiDictProxy

from .errors import Unauthorized

ALGORITHM = "AWS4-HMAC-SHA256"
SIGNING_NAME = "chime"  # chime-sdk-voice's signingName
MAX_SKEW_S = 15 * 60  # the age (either way) after which AWS calls a signature expired


def _authorization_fields(header: str) -> dict[str, str]:
    algorithm, _, rest = header.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise Unauthorized(f"Authorization must use {ALGORITHM}")
    fields = {}
    for part in rest.split(","):
        name, _, value = part.strip().partition("=")
        fields[name] = value
    missing = [n for n in ("Credential", "SignedHeaders", "Signature") if not fields.get(n)]
    if missing:
        raise Unauthorized(f"Authorization lacks {', '.join(missing)}")
    return fields


class SigV4Verifier:
    """Maps a signed request to the account of its access key, or raises Unauthorized.

    `credentials` are the users' keys (access key id -> (secret, account)); `roles` are the
    handlers' execution roles (access key id -> (secret, session token, account)), which the
    stub issues as it loads the functions and which sign API calls only."""

    def __init__(self, credentials: Mapping[str, tuple[str, str]],
                 wall_clock: Callable[[], float]):
        self.credentials, self.wall_clock = credentials, wall_clock
        self.roles: dict[str, tuple[str, str, str]] = {}

    def caller_account(self, method: str, raw_path: str, headers: CIMultiDictProxy[str],
                       body: bytes, *, roles: bool = True) -> str:
        header = headers.get("Authorization")
        if header is None:
            raise Unauthorized("Request is missing a SigV4 Authorization header")
        fields = _authorization_fields(header)
        scope = fields["Credential"].split("/")
        if len(scope) != 5 or scope[4] != "aws4_request":
            raise Unauthorized("Credential must be <key>/<date>/<region>/<service>/aws4_request")
        access_key, scope_date, region, service, _ = scope
        if access_key in self.roles:
            if not roles:
                raise Unauthorized("a function's execution role cannot use this route")
            secret, token, account = self.roles[access_key]
            if not hmac.compare_digest(headers.get("X-Amz-Security-Token", "").encode(),
                                       token.encode()):
                raise Unauthorized("The security token included in the request is invalid")
        elif access_key in self.credentials:
            secret, account = self.credentials[access_key]
        else:
            raise Unauthorized("The security token included in the request is invalid")
        if service != SIGNING_NAME:
            raise Unauthorized(f"Credential should be scoped to service '{SIGNING_NAME}'")
        amz_date = self._checked_date(headers.get("X-Amz-Date", ""), scope_date)
        content_sha = headers.get("X-Amz-Content-SHA256")
        if content_sha is not None and content_sha != hashlib.sha256(body).hexdigest():
            raise Unauthorized("X-Amz-Content-SHA256 does not match the request body")

        request = AWSRequest(method=method, url=f"http://{headers.get('Host', '')}{raw_path}",
                             data=body)
        for name in fields["SignedHeaders"].split(";"):
            values = headers.getall(name, [])
            if not values:
                raise Unauthorized(f"Signed header {name!r} is not in the request")
            for value in values:
                request.headers[name] = value
        request.context["timestamp"] = amz_date
        signer = SigV4Auth(Credentials(access_key, secret), service, region)
        try:
            expected = signer.signature(
                signer.string_to_sign(request, signer.canonical_request(request)), request)
        except UnicodeError:
            raise Unauthorized("The signed path or headers are not valid UTF-8") from None
        if not hmac.compare_digest(expected.encode(),
                                   fields["Signature"].encode("utf-8", "replace")):
            raise Unauthorized("The request signature we calculated does not match the "
                               "signature you provided")
        return account

    def _checked_date(self, amz_date: str, scope_date: str) -> str:
        try:
            signed_at = datetime.strptime(amz_date, SIGV4_TIMESTAMP).replace(tzinfo=timezone.utc)
        except ValueError:
            raise Unauthorized("X-Amz-Date must be present as YYYYMMDDTHHMMSSZ") from None
        if amz_date[:8] != scope_date:
            raise Unauthorized("The Credential date does not match X-Amz-Date")
        if abs(self.wall_clock() - signed_at.timestamp()) > MAX_SKEW_S:
            raise Unauthorized(f"Signature expired: {amz_date} is more than 15 minutes "
                               f"from the server's time")
        return amz_date


class CredentialsError(ValueError):
    """A credentials file that cannot be used; the message names the file and section."""


def parse_credentials(values, default_account: str) -> dict[str, tuple[str, str]]:
    """The API's keys (access key id -> (secret, account)) from AWS shared-credentials files
    and `KEY:SECRET[:ACCOUNT]` values; the account defaults to `default_account`."""
    table: dict[str, tuple[str, str]] = {}
    for value in values:
        if Path(value).is_file():
            table.update(load_credentials(Path(value), default_account))
            continue
        key, _, rest = value.partition(":")
        secret, _, account = rest.partition(":")
        if not key or not secret:
            raise CredentialsError(f"--credentials {value[:40]!r}: neither a credentials file "
                                   f"nor ACCESS_KEY:SECRET[:ACCOUNT]")
        table[key] = (secret, account or default_account)
    return table


def load_credentials(path: Path, default_account: str) -> dict[str, tuple[str, str]]:
    """Access key id -> (secret, account id) from an AWS shared-credentials file (INI): each
    section gives `aws_access_key_id`, `aws_secret_access_key` and optionally
    `aws_account_id` (default: `default_account`)."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f)
    except (OSError, UnicodeDecodeError, configparser.Error) as exc:
        raise CredentialsError(f"{path}: not a readable credentials file "
                               f"({type(exc).__name__})") from None
    out: dict[str, tuple[str, str]] = {}
    for name in parser.sections():
        section = parser[name]
        key, secret = section.get("aws_access_key_id"), section.get("aws_secret_access_key")
        if not key or not secret:
            raise CredentialsError(f"{path}: [{name}] needs aws_access_key_id and "
                                   f"aws_secret_access_key")
        out[key.strip()] = (secret.strip(), section.get("aws_account_id", default_account).strip())
    if not out:
        raise CredentialsError(f"{path}: no [section] with credentials")
    return out
