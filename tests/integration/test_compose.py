"""The container path: docker-compose.yml and the Dockerfile, static checks and a real engine.

The static checks read the files against the project. The engine tests build the image
(`make image` on a fresh copy of the repository, on a local Debian base made once per machine
with debootstrap, since no image registry is reachable) and run the compose file as a user
would, with Debian's docker-compose: the bundled suite against the stub service, a failing
profile of the user's own, and the SIPp load profile.

On this shared machine the engine must not touch the host's network: when no engine answers,
the tests start `dockerd` without its default bridge, iptables rules or IP forwarding (and stop
it afterwards), build with the host's network (apt inside the build reaches Debian's packages as
the host does), and give the stub service no network but its own loopback (`network_mode:
none`), which the suite and SIPp share as the compose file has them do. Every packet of a run
stays inside that namespace. A machine-wide lock keeps two test runs from sharing the engine.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, require_tool
from harness.cli import build_parser
from harness.sma.model import owner_of

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
LOCAL_BASE = "sip-harness-base:bookworm"
TEST_IMAGE = "sip-harness:test"
#: dockerd as the tests start it: no docker0 bridge, no iptables rules, no IP forwarding.
ENGINE_FLAGS = ["--bridge=none", "--iptables=false", "--ip-forward=false", "--ip-masq=false"]
ENGINE_LOCK = Path(tempfile.gettempdir()) / "sip-harness-container-tests.lock"
LOCK_WAIT_S, ENGINE_START_S, COMPOSE_RUN_S = 900, 60, 300
#: The bundled profiles the suite service runs: one per runtime and tool the image carries
#: (a Python handler and the switch on the wire, a Node.js handler, Speak with espeak-ng, a
#: handler using its bundled SDK against the local AWS services).
SUITE_PROFILES = ["update_switches_prompt.yaml", "update_switches_prompt_node.yaml",
                  "speak_and_get_digits.yaml", "caller_prompts_dynamodb_node16.yaml"]


def option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


# --- static checks ---------------------------------------------------------------------------

def test_docker_compose_config_validates_the_file():
    compose = require_tool("docker-compose")
    done = subprocess.run([compose, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("service", ["stub", "suite"])
def test_each_sip_harness_command_parses(service):
    args = build_parser().parse_args(COMPOSE["services"][service]["command"])
    assert args.command in ("serve", "run")


def test_ports_agree_between_services():
    stub = COMPOSE["services"]["stub"]["command"]
    api, sip = option(stub, "--api-port"), option(stub, "--sip-port")
    suite = COMPOSE["services"]["suite"]["command"]
    assert option(suite, "--stub").endswith(f":{api}")
    assert f":{api}/ready" in " ".join(COMPOSE["services"]["stub"]["healthcheck"]["test"])
    load = COMPOSE["services"]["load"]["command"]
    assert load[0] == "sipp" and load[-1].endswith(f":{sip}")
    assert COMPOSE["services"]["suite"]["network_mode"] == "service:stub"
    front, scale = COMPOSE["services"]["front"]["command"], COMPOSE["services"]["scale-load"]
    assert scale["command"][0] == "sipp" and scale["command"][-1].endswith(f":{option(front, '--sip-port')}")
    assert scale["network_mode"] == "service:front"
    workers = [front[i + 1] for i, arg in enumerate(front) if arg == "--worker"]
    assert len(workers) == 2
    for worker in workers:
        host, sip_port, api_port = worker.split(":")
        served = [c for c in COMPOSE["services"].values() if "--worker-index" in c["command"]
                  and option(c["command"], "--host") == host]
        assert len(served) == 1 and option(served[0]["command"], "--sip-port") == sip_port
        assert f"http://{host}:{api_port}/ready" in " ".join(served[0]["healthcheck"]["test"])


def test_files_the_images_and_commands_name_exist():
    dockerfile = (ROOT / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile, re.M):
        for path in source.split():
            if "[" not in path:  # a pattern names an optional source (the wheelhouse)
                assert (ROOT / path).exists(), path
    for service in ("stub", "suite"):
        for value in COMPOSE["services"][service]["command"]:
            if value.startswith("sip_profiles"):
                assert (ROOT / value).exists(), value
    profile = build_parser().parse_args(COMPOSE["services"]["stub"]["command"]).profile
    assert (ROOT / profile).is_file()
    for package in ("sip-tester", "tshark", "libpcap0.8", "espeak-ng", "nodejs"):
        assert package in dockerfile


# --- on a real engine ------------------------------------------------------------------------

def docker_answers(docker: str) -> bool:
    try:
        return subprocess.run([docker, "info"], capture_output=True, timeout=20).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


@pytest.fixture(scope="module")
def docker_engine(tmp_path_factory):
    """A Docker engine for this module alone: the one that answers, or a dockerd started here
    (as root) and stopped afterwards."""
    docker = require_tool("docker")
    require_tool("docker-compose")
    with open(ENGINE_LOCK, "w") as lock:
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail(f"another test run held {ENGINE_LOCK} for {LOCK_WAIT_S} s")
                time.sleep(1)
        if docker_answers(docker):
            yield docker
            return
        dockerd = require_tool("dockerd")
        if os.geteuid() != 0:
            pytest.fail("setup: no Docker engine answers, and starting dockerd needs root: run the "
                        "tests as root or start the engine", pytrace=False)
        log = tmp_path_factory.mktemp("dockerd") / "dockerd.log"
        with open(log, "wb") as out:
            engine = subprocess.Popen([dockerd, *ENGINE_FLAGS], stdout=out, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            deadline = time.monotonic() + ENGINE_START_S
            while not docker_answers(docker):
                if engine.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"dockerd did not come up (exit {engine.poll()}):\n{tail(log)}")
                time.sleep(0.5)
            yield docker
        finally:
            engine.terminate()
            try:
                engine.wait(60)
            except subprocess.TimeoutExpired:
                engine.kill()
                engine.wait()


def fresh_copy(dest: Path) -> Path:
    """The files a clone of this checkout would have (tracked and new, not ignored)."""
    git = require_tool("git")
    names = subprocess.run([git, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, names):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


@pytest.fixture(scope="module")
def image(docker_engine, tmp_path_factory):
    """`make image` on a fresh copy, on the local base (made by `make image-base` once per
    machine, kept while it exists)."""
    make = require_tool("make")
    require_tool("debootstrap")
    copy = fresh_copy(tmp_path_factory.mktemp("image"))
    for target, extra in (("image-base", []),
                          ("image", [f"BASE_IMAGE={LOCAL_BASE}", f"IMAGE={TEST_IMAGE}", "BUILD_NETWORK=host"])):
        done = subprocess.run([make, "-C", str(copy), target, f"PYTHON={sys.executable}", *extra],
                              capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"make {target}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        print(done.stdout)
    return TEST_IMAGE


class Project:
    """A fresh copy of the repository with a docker-compose.override.yml, run with
    docker-compose as a user would; its containers are removed afterwards."""

    def __init__(self, root: Path, name: str, override: dict):
        self.root, self.name = fresh_copy(root), name
        (root / "docker-compose.override.yml").write_text(yaml.safe_dump(override))
        self.artifacts = root / "artifacts"

    def compose(self, *args: str) -> subprocess.CompletedProcess:
        cmd = [shutil.which("docker-compose"), "-p", self.name, *args]
        env = {**os.environ, "SIP_HARNESS_IMAGE": TEST_IMAGE}
        return subprocess.run(cmd, cwd=self.root, env=env, capture_output=True, text=True,
                              timeout=COMPOSE_RUN_S)

    def run(self, *args: str) -> subprocess.CompletedProcess:
        """`docker-compose OPTIONS up ...`, then `docker-compose OPTIONS down`."""
        try:
            return self.compose(*args)
        finally:
            options = args[:args.index("up")]
            self.compose(*options, "down", "--remove-orphans", "--volumes")


def stub_without_network(**more) -> dict:
    return {"network_mode": "none", **more}


def suite_command(paths: list[str]) -> list[str]:
    """The compose file's suite command with other profiles in place of the bundled folder."""
    command = list(COMPOSE["services"]["suite"]["command"])
    at = command.index("sip_profiles")
    return command[:at] + paths + command[at + 1:]


def read_reports(suite_dir: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in suite_dir.glob("*/report.json")}


def owners(folder: Path) -> set[int]:
    return {p.stat().st_uid for p in [folder, *folder.rglob("*")]}


def test_compose_runs_the_bundled_suite_against_the_stub_service(image, tmp_path):
    """A fresh clone: the engine creates ./artifacts (owned by root); the stub becomes healthy,
    the suite runs bundled profiles by name against it and exits 0; every profile leaves its
    report and capture, and the run its junit.xml."""
    project = Project(tmp_path, "sipharnesssuite", {"services": {
        "stub": stub_without_network(),
        "suite": {"command": suite_command([f"sip_profiles/{p}" for p in SUITE_PROFILES])}}})
    assert not project.artifacts.exists()
    done = project.run("up", "--exit-code-from", "suite")
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    suite = project.artifacts / "suite"
    junit = ET.parse(suite / "junit.xml").getroot()
    counts = junit if junit.tag == "testsuite" else junit.find("testsuite")
    assert (int(counts.get("tests")), int(counts.get("failures")), int(counts.get("errors"))) == \
        (len(SUITE_PROFILES), 0, 0)
    reports = read_reports(suite)
    assert len(reports) == len(SUITE_PROFILES)
    for folder, report in reports.items():
        assert report["verdict"] == "pass", (folder, report)
        assert (suite / folder / "capture.pcap").stat().st_size > 1000, folder
    # The folder the engine made for root went to the image's user, who wrote everything.
    assert len(owners(project.artifacts)) == 1 and 0 not in owners(project.artifacts)


def test_a_failing_profile_of_the_users_own_fails_the_run_and_leaves_its_report(image, tmp_path):
    """A profile mounted into both services fails its BYE check: the suite exits 1 and writes
    that profile's report and junit failure. ./artifacts belongs to a CI user (uid 1001 as on
    GitHub's runners when the tests run as root), whose files they stay."""
    mine = tmp_path / "my_profiles"
    mine.mkdir()
    profile = yaml.safe_load((ROOT / "sip_profiles" / "update_switches_prompt.yaml").read_text())
    profile["name"] = "expects the caller to hang up"
    profile["stub"] = {"handler": "/opt/sip-harness/sip_profiles/handlers/update_prompt.py",
                       "bucket_dir": "/opt/sip-harness/sip_profiles/bucket"}
    profile["expect"]["bye_from"] = "caller"
    (mine / "caller_hangs_up.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    mount = ["./my_profiles:/opt/my_profiles:ro"]
    project = Project(tmp_path, "sipharnessfailing", {"services": {
        "stub": stub_without_network(volumes=mount),
        "suite": {"volumes": mount, "command": suite_command(["/opt/my_profiles"])}}})
    project.artifacts.mkdir()
    ci_user = 1001 if os.geteuid() == 0 else os.geteuid()
    os.chown(project.artifacts, ci_user, ci_user)
    done = project.run("up", "--exit-code-from", "suite")
    assert done.returncode == 1, done.stdout[-6000:] + done.stderr[-2000:]
    suite = project.artifacts / "suite"
    assert 'failures="1"' in (suite / "junit.xml").read_text()
    (report,) = read_reports(suite).values()
    assert report["verdict"] == "fail"
    failed = [c for c in report["checks"] if not c["passed"]]
    assert [c["name"] for c in failed] == ["BYE"], failed
    assert "stub" in failed[0]["detail"]
    assert owners(project.artifacts) == {ci_user}


def test_the_load_profile_runs_sipp_against_the_stub_service(image, tmp_path):
    """`docker-compose --profile load up load`: SIPp's calls all succeed against the stub
    service, and its summary (final screen and statistics) reaches ./artifacts."""
    project = Project(tmp_path, "sipharnessload", {"services": {"stub": stub_without_network()}})
    done = project.run("--profile", "load", "up", "--exit-code-from", "load", "load")
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    screen = (project.artifacts / "sipp-screen.log").read_text()
    calls = int(option(COMPOSE["services"]["load"]["command"], "-m"))
    assert re.search(rf"Successful call\s*\|\s*\d+\s*\|\s*{calls}\s", screen), screen[-3000:]
    assert re.search(r"Failed call\s*\|\s*\d+\s*\|\s*0\s", screen), screen[-3000:]
    assert (project.artifacts / "sipp-stats.csv").read_text().startswith("StartTime;")


def test_the_scale_profile_spreads_sipps_calls_over_two_workers_behind_kamailio(image, tmp_path):
    """`docker-compose --profile scale up --exit-code-from scale-load scale-load`: Kamailio in
    the front's container hands SIPp's calls to the two worker services, each call to one
    worker (its TransactionId names it), and every call succeeds."""
    project = Project(tmp_path, "sipharnessscale", {"services": {"front": stub_without_network()}})
    done = project.run("--profile", "scale", "up", "--exit-code-from", "scale-load", "scale-load")
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    cluster = project.artifacts / "cluster"
    screen = (cluster / "sipp-screen.log").read_text()
    calls = int(option(COMPOSE["services"]["scale-load"]["command"], "-m"))
    assert re.search(rf"Successful call\s*\|\s*\d+\s*\|\s*{calls}\s", screen), screen[-3000:]
    assert re.search(r"Failed call\s*\|\s*\d+\s*\|\s*0\s", screen), screen[-3000:]
    arrived = {}
    for worker in (0, 1):
        lines = (cluster / f"worker-{worker}" / "journal.jsonl").read_text().splitlines()
        arrived[worker] = [e["transaction_id"] for e in map(json.loads, lines)
                           if e["kind"] == "call_arrived"]
        assert all(owner_of(tx) == worker for tx in arrived[worker])
    assert len(arrived[0]) + len(arrived[1]) == calls
    assert min(len(arrived[0]), len(arrived[1])) >= calls // 4, {w: len(t) for w, t in arrived.items()}
