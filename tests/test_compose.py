"""docker-compose.yml and the Dockerfile name only commands, files and ports that exist.

No Docker engine runs on these machines: Debian's `docker-compose config` validates the
file offline, and the rest is checked against the project itself."""
import re
import shutil
import subprocess

import pytest
import yaml

from conftest import ROOT
from harness.cli import build_parser

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_docker_compose_config_validates_the_file():
    compose = shutil.which("docker-compose")
    if compose is None:
        pytest.fail("setup: docker-compose (Debian package docker-compose) is not installed; "
                    "`apt-get install docker-compose`", pytrace=False)
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
    assert load[-1].endswith(f":{sip}")
    assert COMPOSE["services"]["suite"]["network_mode"] == "service:stub"


def test_files_the_images_and_commands_name_exist():
    dockerfile = (ROOT / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (.+) \S+$", dockerfile, re.M):
        for path in source.split():
            assert (ROOT / path).exists(), path
    for service in ("stub", "suite"):
        args = COMPOSE["services"][service]["command"]
        for value in args:
            if value.startswith("sip_profiles"):
                assert (ROOT / value).exists(), value
    profile = build_parser().parse_args(COMPOSE["services"]["stub"]["command"]).profile
    assert (ROOT / profile).is_file()
    for package in ("sip-tester", "tshark", "libpcap0.8", "espeak-ng"):
        assert package in dockerfile
