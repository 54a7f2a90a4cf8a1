"""S3 as folders: bucket names as S3 accepts them, keys that stay inside their bucket, and the
local file that stands for an object.

The stub stands a local folder in for S3 (`<root>/<bucket>/<key>`), so a name S3 would refuse
must not become a path: a bucket of `..` would leave the root. The bucket rules are those of
S3 general purpose buckets (docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules):
3 to 63 characters of lower-case letters, digits, dots and hyphens, starting and ending with a
letter or digit, no two dots in a row, not an IPv4 address, and none of the reserved prefixes
and suffixes.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path

from ..media.sources import InvalidAudioSource

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


@functools.lru_cache(maxsize=4096)
def _resolved(root: Path, bucket: str, key: str) -> Path | None:
    """s3://bucket/key under `root`, resolved once (None when the bucket is not a name S3
    accepts, or the key leaves the bucket)."""
    if not valid_bucket_name(bucket):
        return None
    base = (root / bucket).resolve()
    path = (base / key).resolve()
    return path if base in path.parents and root.resolve() in base.parents else None


def object_path(root: Path, bucket: str, key: str, must_exist: bool = True) -> Path:
    """The local file standing for s3://bucket/key under `root`; neither can leave it."""
    path = _resolved(root, bucket, key)
    if path is None:
        raise InvalidAudioSource(f"s3://{bucket[:63]}/{key[:100]} is not a valid S3 object name")
    if must_exist and not path.is_file():
        raise InvalidAudioSource(f"s3://{bucket}/{key} not found under {root}")
    return path


def read_path(bucket_dir: Path, written_dir: Path | None, bucket: str, key: str) -> Path:
    """The file standing for s3://bucket/key: one the stub wrote (under `written_dir`), else
    the one the profile's bucket folder provides."""
    if written_dir is not None:
        written = object_path(written_dir, bucket, key, must_exist=False)
        if written.is_file():
            return written
    return object_path(bucket_dir, bucket, key)
