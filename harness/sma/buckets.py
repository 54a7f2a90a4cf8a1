"""S3 names: bucket names as S3 accepts them, and keys that stay inside their bucket.

The stub stands a local folder in for S3 (`<root>/<bucket>/<key>`), so a name S3 would refuse
must not become a path: a bucket of `..` would leave the root. The bucket rules are those of
S3 general purpose buckets (docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules):
3 to 63 characters of lower-case letters, digits, dots and hyphens, starting and ending with a
letter or digit, no two dots in a row, not an IPv4 address, and none of the reserved prefixes
and suffixes.
"""
from __future__ import annotations

import re

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IPV4 = re.compile(r"[0-9]{1,3}(\.[0-9]{1,3}){3}")
RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def valid_bucket_name(name: object) -> bool:
    """Whether S3 accepts `name` as a bucket name."""
    return (isinstance(name, str) and bool(_BUCKET.fullmatch(name)) and ".." not in name
            and not _IPV4.fullmatch(name) and not name.startswith(RESERVED_PREFIXES)
            and not name.endswith(RESERVED_SUFFIXES))


def safe_key(text: str) -> bool:
    """An S3 key or prefix that stays inside its bucket folder (no `..` segment, not absolute)."""
    return not text.startswith("/") and ".." not in text.replace("\\", "/").split("/")
