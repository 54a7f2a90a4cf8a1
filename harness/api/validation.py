"""Request parsing and the input constraints of the chime-sdk-voice model (botocore 2022-08-03).

botocore's client checks required members and types but not `max` or `pattern`, and other
clients check nothing, so every constraint is enforced here and answered with BadRequest.
"""
from __future__ import annotations

import json
import re
from typing import TypeVar

from aiohttp import web

from ..sma.errors import BadRequest
from ..sma.phone_numbers import is_e164

#: ECMAScript's \s (model patterns are ECMA-262 regexes); Python's also counts \x1c-\x1f, \x85.
ECMA_SPACE = "\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
NON_BLANK = re.compile(f"[^{ECMA_SPACE}]")  # NonEmptyString `.*\S.*`, unanchored
MAX_MAP_ENTRIES = 20  # SMAUpdateCallArgumentsMap, SMACreateCallArgumentsMap, SipHeadersMap
MAX_RESULTS = 100  # ResultMax 1-100
JSON_MEDIA_TYPES = ("application/json", "application/x-amz-json-1.0",
                    "application/x-amz-json-1.1")

T = TypeVar("T")


def _utf8(value: str, what: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(f"{what} is not valid UTF-8") from None
    return value


def path_id(request: web.Request, name: str, member: str) -> str:
    """A NonEmptyString path parameter."""
    value = _utf8(request.match_info.get(name, ""), member)
    if not NON_BLANK.search(value):
        raise BadRequest(f"{member} must not be blank")
    return value


async def json_body(request: web.Request) -> dict:
    """The request's JSON object; an absent body is an empty object.

    A body must say it is JSON: one without a Content-Type, or with `text/plain` (what a web
    page may send cross-site without a CORS preflight), is refused before it is read as JSON.
    """
    raw = await request.read()
    if not raw:
        return {}
    if "Content-Type" not in request.headers:
        raise BadRequest("a request body needs Content-Type: application/json")
    if not (request.content_type in JSON_MEDIA_TYPES or request.content_type.endswith("+json")):
        raise BadRequest(f"Content-Type {request.content_type!r} is not JSON")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # ValueError: also an integer over 4,300 digits
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body


def string_map(body: dict, member: str, required: bool) -> dict[str, str]:
    """A map of string to string with 0-20 entries."""
    value = body.get(member)
    if value is None:
        if required:
            raise BadRequest(f"{member} is required")
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"{member} must be a map of string to string")
    if len(value) > MAX_MAP_ENTRIES:
        raise BadRequest(f"{member} can contain at most {MAX_MAP_ENTRIES} entries, "
                         f"got {len(value)}")
    for key, item in value.items():
        if not isinstance(item, str):
            raise BadRequest(f"{member} values must be strings; not a string: {key!r}")
        _utf8(key, f"{member} key")
        _utf8(item, f"{member} value")
    return dict(value)


def phone_number(body: dict, member: str) -> str:
    """A required E164PhoneNumber."""
    value = body.get(member)
    if value is None:
        raise BadRequest(f"{member} is required")
    if not is_e164(value):
        raise BadRequest(f"{member} must be an E.164 phone number such as +12065550100")
    return value


def optional_query_id(request: web.Request, name: str, member: str) -> str | None:
    """An optional NonEmptyString query parameter."""
    value = request.query.get(name)
    if value is not None and not NON_BLANK.search(_utf8(value, member)):
        raise BadRequest(f"{member} must not be blank")
    return value


def _small_number(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 9


def page(items: list[T], request: web.Request) -> tuple[list[T], str | None]:
    """The page that `max-results` and `next-token` select, and the token of the next one.

    A token is the offset of the page it starts, as text; it is opaque to clients.
    """
    size = MAX_RESULTS
    if "max-results" in request.query:
        text = request.query["max-results"]
        if not (_small_number(text) and 1 <= int(text) <= MAX_RESULTS):
            raise BadRequest(f"MaxResults must be an integer from 1 to {MAX_RESULTS}")
        size = int(text)
    start = 0
    if "next-token" in request.query:
        token = request.query["next-token"]
        if not (_small_number(token) and int(token) <= len(items)):
            raise BadRequest("NextToken is not a token this list returned")
        start = int(token)
    end = start + size
    return items[start:end], str(end) if end < len(items) else None
