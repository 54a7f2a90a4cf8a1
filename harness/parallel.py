"""Profiles past one core and one machine: `run -j N` and `run --shard K/N`.

`run_parallel` runs each profile in one of N worker processes (spawned, so each has its own
interpreter, stub event loop and media clock): every profile keeps its own SMA, handler,
callers, capture filter and artifact folder, and each worker process takes a port lane of its
own (`SIP_HARNESS_LANE`), so no two runs meet each other's packets. The results come back in
the order of the profiles, whatever the order they finish in; each verdict is reported as it
arrives.

`shard` picks a stable share of the profiles for one of N machines: the profiles sorted by
file name, every N-th from the K-th, so the shards are the same on every machine and together
are the whole suite (`sip-harness report merge` puts their reports back together).
"""
from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import TYPE_CHECKING

from .lanes import LANES, take_own_lane

if TYPE_CHECKING:
    from .aws_target import AwsSettings
    from .profiles.schema import Profile
    from .remote import RemoteAccess
    from .results import ProfileResult

MAX_JOBS = LANES


def parse_shard(text: str) -> tuple[int, int]:
    """'K/N' with 1 <= K <= N."""
    k, sep, n = text.partition("/")
    if sep and k.isdigit() and n.isdigit() and 1 <= int(k) <= int(n):
        return int(k), int(n)
    raise ValueError(f"--shard {text!r}: give K/N with 1 <= K <= N, e.g. 2/3")


def shard(profiles: Sequence[Profile], k: int, n: int) -> list[Profile]:
    """The K-th of N shares of `profiles` (by file name, see the module's docstring)."""
    ordered = sorted(profiles, key=lambda p: (p.path.name, str(p.path)))
    return [p for i, p in enumerate(ordered) if i % n == k - 1]


def _take_lane(counter) -> None:
    """A worker process's initializer: the next free lane."""
    with counter.get_lock():
        take_own_lane(counter.value)
        counter.value += 1


def _run_one(path: str, out_dir: str, stub_url: str | None, access, aws) -> ProfileResult:
    from .profiles.schema import load_profile
    from .remote import RemoteAccess
    from .run.profile import ProfileRun
    profile = load_profile(Path(path), check_handler=False)
    return ProfileRun(profile, Path(out_dir), lambda line: None, stub_url,
                      access or RemoteAccess(), aws).execute()


def run_parallel(profiles: Sequence[Profile], out_dir: Path, jobs: int,
                 progress: Callable[[str], None] = print, stub_url: str | None = None,
                 access: RemoteAccess | None = None,
                 aws: AwsSettings | None = None) -> list[ProfileResult]:
    """Run the profiles in `jobs` processes at once (see the module's docstring)."""
    if not 1 <= jobs <= MAX_JOBS:
        raise ValueError(f"-j {jobs}: 1 to {MAX_JOBS} (one port lane each)")
    context = multiprocessing.get_context("spawn")
    counter = context.Value("i", 0)
    results: list[ProfileResult | None] = [None] * len(profiles)
    with ProcessPoolExecutor(min(jobs, len(profiles)) or 1, mp_context=context,
                             initializer=_take_lane, initargs=(counter,)) as pool:
        futures = {pool.submit(_run_one, str(p.path), str(out_dir), stub_url, access, aws): i
                   for i, p in enumerate(profiles)}
        for done, future in enumerate(as_completed(futures), 1):
            i = futures[future]
            results[i] = future.result()
            progress(f"[{done}/{len(profiles)}] {results[i].verdict.upper():5} {profiles[i].name}")
    return results  # type: ignore[return-value]
