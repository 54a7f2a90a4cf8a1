"""`run -j N` gives the results a sequential run gives, in the profiles' order; `--shard K/N`
splits a suite into stable, disjoint shares; `report merge` puts the shards' reports back into
one run report."""
from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import PROFILES, ROOT
from harness.parallel import parse_shard, shard
from harness.profiles.schema import load_profile
from harness.report.run_report import MergeError, merge_runs

BIN = Path(sys.executable).parent
QUICK = ["update_unknown_transaction.yaml", "update_argument_counts.yaml", "handler_invalid_response.yaml",
         "hangup_codes.yaml"]


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "sip-harness"), "run", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def verdicts(folder: Path) -> dict[str, str]:
    return {p["path"]: p["verdict"] for p in json.loads((folder / "run.json").read_text())["profiles"]}


def test_shards_are_stable_disjoint_and_whole():
    profiles = [load_profile(p, check_handler=False) for p in sorted(PROFILES.glob("*.yaml"))]
    shuffled = list(reversed(profiles))
    shares = [[p.path.name for p in shard(profiles, k, 3)] for k in (1, 2, 3)]
    assert shares == [[p.path.name for p in shard(shuffled, k, 3)] for k in (1, 2, 3)]  # any order in
    assert sorted(sum(shares, [])) == sorted(p.path.name for p in profiles)
    assert max(map(len, shares)) - min(map(len, shares)) <= 1
    assert parse_shard("2/3") == (2, 3)
    for bad in ("0/3", "4/3", "1-3", "x/y", "3"):
        with pytest.raises(ValueError, match="K/N"):
            parse_shard(bad)


def test_parallel_runs_give_the_sequential_verdicts_in_profile_order(tmp_path):
    paths = [str(PROFILES / name) for name in QUICK]
    sequential, parallel = run(*paths, "--out", str(tmp_path / "seq")), \
        run(*paths, "-j", "3", "--out", str(tmp_path / "par"))
    assert (sequential.returncode, parallel.returncode) == (0, 0), parallel.stdout + parallel.stderr
    assert verdicts(tmp_path / "seq") == verdicts(tmp_path / "par")
    assert len(verdicts(tmp_path / "par")) == len(QUICK)
    # each verdict is printed as its profile finishes; the summary keeps the profiles' order
    assert sum(line.startswith("[") and " PASS " in line for line in parallel.stdout.splitlines()) == len(QUICK)
    summary = [line.split("  ")[1] for line in parallel.stdout.splitlines() if line.startswith("PASS ")]
    assert summary == [load_profile(Path(p), check_handler=False).name for p in paths]
    cases = ET.parse(tmp_path / "par" / "junit.xml").getroot().iter("testcase")
    assert [Path(c.get("file")).name for c in cases] == QUICK


def test_merged_shards_are_one_run(tmp_path):
    paths = [str(PROFILES / name) for name in QUICK]
    for k in (1, 2):
        done = run(*paths, "--shard", f"{k}/2", "--out", str(tmp_path / f"shard-{k}"))
        assert done.returncode == 0, done.stdout + done.stderr
    merged = subprocess.run([str(BIN / "sip-harness"), "report", "merge", str(tmp_path / "shard-1"),
                             str(tmp_path / "shard-2"), "--out", str(tmp_path / "merged")],
                            capture_output=True, text=True, timeout=60)
    assert merged.returncode == 0, merged.stderr
    report = json.loads((tmp_path / "merged" / "run.json").read_text())
    assert report["counts"] == {"profiles": 4, "passed": 4, "failed": 0, "errors": 0}
    assert sorted(Path(p["path"]).name for p in report["profiles"]) == sorted(QUICK)
    for entry in report["profiles"]:  # folders stay reachable from the merged report
        assert (tmp_path / "merged" / entry["folder"] / "report.json").is_file()
    junit = ET.parse(tmp_path / "merged" / "junit.xml").getroot()
    assert junit.get("tests") == "4" and junit.get("failures") == "0"
    with pytest.raises(MergeError, match="two of the folders"):
        merge_runs([tmp_path / "shard-1", tmp_path / "shard-1"], tmp_path / "again")


def test_pytest_xdist_runs_profile_items_in_parallel(tmp_path):
    """`pytest -n 2` over profiles: each xdist worker runs its items in its own port lane."""
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2",
                           "--sip-artifacts", str(tmp_path / "artifacts"),
                           *(str(PROFILES / name) for name in QUICK[:2])],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
