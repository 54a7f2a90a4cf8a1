"""`sip-harness serve --workers N`: stub workers behind Kamailio's dispatcher and one API front.
Kamailio's configuration is generated and validated (`kamailio -c`); each call's dialog stays
on one worker, its TransactionId names that worker, an update through the front reaches it,
and a worker killed mid-run loses only its own calls (the front answers NotFound for them)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from conftest import PROFILES, require_tool, wait_until
from harness.caller import Caller
from harness.cluster.kamailio import (KamailioError, SipWorker, check, configuration,
                                      dispatcher_list)
from harness.run.setup import free_rtp_range
from harness.sma.model import new_id, owner_of
from webclient import free_port

SMA_ID = "5f0e8c2a-6d1b-4c55-9a3e-2b7f1e0d9c41"


def test_a_transaction_id_names_its_owner():
    for owner in (0, 1, 7, 249):
        tx = new_id(owner)
        assert owner_of(tx) == owner and len(tx) == 36
    assert owner_of("not-a-guid") is None


def test_kamailios_configuration_is_generated_and_valid(tmp_path):
    require_tool("kamailio")
    workers = [SipWorker("127.0.0.2", 5060), SipWorker("127.0.0.3", 5062), SipWorker("::1", 5064)]
    (tmp_path / "dispatcher.list").write_text(dispatcher_list(workers))
    assert (tmp_path / "dispatcher.list").read_text().splitlines() == [
        "1 sip:127.0.0.2:5060", "1 sip:127.0.0.3:5062", "1 sip:[::1]:5064"]
    config = tmp_path / "kamailio.cfg"
    config.write_text(configuration("127.0.0.1", free_port(), tmp_path / "dispatcher.list"))
    assert "config file ok" in check(config)
    config.write_text(configuration("127.0.0.1", 5060, tmp_path / "dispatcher.list")
                      .replace("ds_select_dst", "ds_select_nothing"))
    with pytest.raises(KamailioError, match="kamailio -c"):
        check(config)


class Cluster:
    """`sip-harness serve --workers 2` of the bundled update profile, on ports of its own."""

    def __init__(self, root: Path, workers: int = 2):
        require_tool("kamailio")
        self.sip_port, self.api_port = free_port(), free_port()
        low, high = free_rtp_range(80)  # the workers' halves: 20 RTP/RTCP pairs each
        self.out = root / "cluster"
        self.log = root / "cluster.log"
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "sip-harness"), "serve", "--workers", str(workers),
             "--profile", str(PROFILES / "update_switches_prompt.yaml"),
             "--sip-port", str(self.sip_port), "--api-port", str(self.api_port),
             "--rtp-ports", f"{low}-{high}", "--out", str(self.out),
             "--no-transaction-artifacts"],
            cwd=root, stdout=self.log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
        assert wait_until(lambda: "cluster started" in self.log.read_text()
                          or self.proc.poll() is not None, 90), self.log.read_text()
        assert self.proc.poll() is None, self.log.read_text()
        self.client = boto3.client("chime-sdk-voice", endpoint_url=f"http://127.0.0.1:{self.api_port}",
                                   region_name="us-east-1", aws_access_key_id="x",
                                   aws_secret_access_key="x", config=Config(retries={"max_attempts": 1}))

    def uri(self, number: str = "+14345550101") -> str:
        return f"sip:{number}@127.0.0.1:{self.sip_port}"

    def journal(self, worker: int) -> list[dict]:
        path = self.out / f"worker-{worker}" / "journal.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] \
            if path.is_file() else []

    def count(self, kind: str) -> int:
        """Entries of this kind in the journals of both workers."""
        return sum(e["kind"] == kind for worker in (0, 1) for e in self.journal(worker))

    def owner(self, sip_call_id: str) -> tuple[int, str] | None:
        """(worker, TransactionId) of the call whose SIP Call-ID this is."""
        for worker in (0, 1):
            for entry in self.journal(worker):
                if entry["kind"] == "call_arrived" and entry["sip_call_id"] == sip_call_id:
                    return worker, entry["transaction_id"]
        return None

    def worker_pid(self, worker: int) -> int:
        folder = str(self.out / f"worker-{worker}")
        for pid in os.listdir("/proc"):
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"--worker-index" in argv and folder.encode() in argv:
                return int(pid)
        raise AssertionError(f"no process for worker {worker}")

    def update(self, tx: str) -> int:
        resp = self.client.update_sip_media_application_call(
            SipMediaApplicationId=SMA_ID, TransactionId=tx, Arguments={"action": "switch"})
        return resp["ResponseMetadata"]["HTTPStatusCode"]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait(10)


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    yield c
    assert c.stop() == 0, c.log.read_text()
    assert wait_until(lambda: not _kamailios(c.out), 10), "kamailio left running"


def _kamailios(out: Path) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"kamailio" in argv and str(out).encode() in argv:
            found.append(int(pid))
    return found


def test_calls_spread_over_the_workers_and_each_dialog_stays_on_one(cluster, tmp_path):
    """Kamailio hashes the Call-ID: the same eight Call-IDs reach the same workers every time
    (both of them); every request of each dialog (INVITE, ACK, BYE and its 200) reached it."""
    sipp = require_tool("sipp")
    done = subprocess.run([sipp, "-sn", "uac", "-s", "+14345550101", "-i", "127.0.0.1", "-p", "0",
                           "-m", "8", "-r", "8", "-d", "500", "-cid_str", "cluster-test-%u@sip-harness",
                           "-timeout", "30", "-timeout_error", f"127.0.0.1:{cluster.sip_port}"],
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    # a worker sends the BYE's 200 before it journals the end: SIPp may exit in between
    assert wait_until(lambda: cluster.count("sip_ended") == 8, 10), cluster.count("sip_ended")
    per_worker = {}
    for worker in (0, 1):
        arrived = {e["sip_call_id"]: e["transaction_id"] for e in cluster.journal(worker)
                   if e["kind"] == "call_arrived"}
        confirmed = {e["sip_call_id"] for e in cluster.journal(worker) if e["kind"] == "sip_confirmed"}
        ended = {e["sip_call_id"] for e in cluster.journal(worker) if e["kind"] == "sip_ended"}
        assert set(arrived) == confirmed, "an ACK did not reach the worker of its INVITE"
        assert set(arrived) == ended, "a BYE did not reach the worker of its INVITE"
        assert all(owner_of(tx) == worker for tx in arrived.values())
        per_worker[worker] = sorted(arrived)
    assert sorted(per_worker[0] + per_worker[1]) == sorted(f"cluster-test-{n}@sip-harness" for n in range(1, 9))
    assert per_worker[0] and per_worker[1], per_worker


def test_an_update_through_the_front_reaches_the_calls_owner(cluster, tmp_path):
    with Caller(workdir=tmp_path / "caller") as caller:
        calls = [caller.call(cluster.uri()) for _ in range(3)]
        for call in calls:
            call.wait_for("CONFIRMED", timeout=15)
        owners = [wait_until(lambda: cluster.owner(call.call_id)) for call in calls]
        for (worker, tx), call in zip(owners, calls):
            assert owner_of(tx) == worker
            assert cluster.update(tx) == 202
            assert wait_until(lambda: any(
                e["kind"] == "invocation" and e["transaction_id"] == tx
                and e["event"]["InvocationEventType"] == "CALL_UPDATE_REQUESTED"
                for e in cluster.journal(worker)))
        for call in calls:  # the update's response hangs up after the second prompt
            call.wait_for("DISCONNECTED", timeout=15)


def test_a_killed_worker_loses_only_its_own_calls(cluster, tmp_path):
    with Caller(workdir=tmp_path / "caller") as caller:
        calls, owners = [], {}
        for _ in range(12):  # until each worker holds a call (Call-IDs are random)
            call = caller.call(cluster.uri())
            call.wait_for("CONFIRMED", timeout=15)
            worker, tx = wait_until(lambda: cluster.owner(call.call_id))
            calls.append(call)
            owners.setdefault(worker, (call, tx))
            if len(owners) == 2:
                break
        assert len(owners) == 2, "twelve calls all went to one worker"
        (kept_call, kept_tx), (lost_call, lost_tx) = owners[0], owners[1]
        os.kill(cluster.worker_pid(1), signal.SIGKILL)
        with pytest.raises(cluster.client.exceptions.NotFoundException):
            cluster.update(lost_tx)
        assert kept_call.state == "CONFIRMED"
        assert cluster.update(kept_tx) == 202  # the live worker's call goes on, and switches
        kept_call.wait_for("DISCONNECTED", timeout=15)
        assert kept_call.last_status == 200
        for call in calls:  # the dead worker's calls end with the caller (no BYE answers them)
            if call.state != "DISCONNECTED":
                call.hangup()


def test_sip_harness_load_into_the_cluster_splits_the_calls_over_both_workers(cluster, tmp_path):
    """`sip-harness load --to --api`: 20 SIPp calls through Kamailio, each held 1 s; the JSON
    summary shows every call answered on the wire, by both workers (their 200 OK's Contact)."""
    require_tool("sipp")
    done = subprocess.run(
        [str(Path(sys.executable).parent / "sip-harness"), "load", "--to", f"127.0.0.1:{cluster.sip_port}",
         "--api", f"http://127.0.0.1:{cluster.api_port}", "--calls", "20", "--rate", "10",
         "--hold-ms", "1000", "--sample", "4", "--max-seconds", "60", "--out", str(tmp_path / "load")],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    summary = json.loads(done.stdout)
    assert done.returncode == 0 and summary["passed"], (done.stderr[-2000:], summary)
    assert summary["target"]["ready"] == {"status": "ready", "workers": 2}
    assert summary["sources"]["sipp"]["succeeded"] == 20
    wire = summary["wire"]
    assert wire["calls"] == wire["answered"] == 20, wire
    workers = {f"127.0.0.{k + 2}:{cluster.sip_port}" for k in (0, 1)}
    assert set(wire["answered_by"]) == workers and sum(wire["answered_by"].values()) == 20, wire
    assert summary["sample"]["verified"] == 4 and summary["sample"]["rtp_lost"] == 0, summary["sample"]
    assert "[load" in done.stderr
