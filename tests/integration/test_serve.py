"""`sip-harness serve` as a long-running shared service: a remote run leaves the served profile
alone, every call, API request and invocation is one log line, each transaction gets its own
folder, `sip-harness calls` finds a live call's TransactionId, start-up errors are one line."""
import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
import pytest

from harness.caller import Caller
from harness.journal_view import JournalView
from harness.run.setup import free_rtp_range
from harness.wire.analysis import analyze_pcap

from conftest import free_port, PROFILES, ROOT, require_capture, wait_until

BIN = Path(sys.executable).parent
SERVED_SMA = "5f0e8c2a-6d1b-4c55-9a3e-2b7f1e0d9c41"


def get(url: str, token_file: Path | None = None):
    """A control route's JSON, with the served stub's token."""
    token = token_file.read_text().strip() if token_file else None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as resp:
        return json.loads(resp.read())


def log_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class Served:
    def __init__(self, root: Path):
        self.sip_port, self.api_port = free_port(), free_port()
        low, high = free_rtp_range(40)
        self.out, self.log = root / "serve", root / "serve.log"
        self.url = f"http://127.0.0.1:{self.api_port}"
        self.token_file = self.out / "control-token"
        self.proc = subprocess.Popen(
            [str(BIN / "sip-harness"), "serve", "--profile", str(PROFILES / "update_switches_prompt.yaml"),
             "--sip-port", str(self.sip_port), "--api-port", str(self.api_port),
             "--rtp-ports", f"{low}-{high}", "--out", str(self.out), "--log-format", "json",
             "--control", "--profiles-dir", str(PROFILES), "--profiles-dir", str(root)],
            cwd=root, stdout=self.log.open("w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while not any(line["event"] == "serve" for line in self._lines()):
            assert self.proc.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, "sip-harness serve did not start in 60 s"
            time.sleep(0.2)

    def _lines(self) -> list[dict]:
        try:
            return log_lines(self.log)
        except ValueError:  # a line being written
            return []

    def lines(self) -> list[dict]:
        return log_lines(self.log)

    def uri(self, number: str) -> str:
        return f"sip:{number}@127.0.0.1:{self.sip_port}"

    def get(self, path: str):
        return get(self.url + path, self.token_file)

    def journal(self) -> JournalView:
        return JournalView(self.get("/_harness/journal?limit=10000")["entries"])

    def transaction_of(self, call) -> str:
        return wait_until(lambda: self.journal().transaction_of(call.call_id))

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(60)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    require_capture()
    server = Served(tmp_path_factory.mktemp("served"))
    yield server
    if server.proc.poll() is None:
        server.stop()


@pytest.fixture(scope="module")
def remote_run(served, tmp_path_factory):
    """A served call is up while a remote run of another profile (whose handler refuses
    +14345550486 with 486) runs against the same service."""
    caller = Caller(workdir=tmp_path_factory.mktemp("caller"))
    during = caller.call(served.uri("+14345550486"))
    during.wait_for("CONFIRMED", timeout=10)
    out = tmp_path_factory.mktemp("remote")
    done = subprocess.run([str(BIN / "sip-harness"), "run", str(PROFILES / "hangup_codes.yaml"),
                           "--stub", served.url, "--control-token-file", str(served.token_file),
                           "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=240)
    yield done, caller, during
    caller.close()


def test_a_remote_run_leaves_the_served_profile_unchanged(served, remote_run):
    done, caller, during = remote_run
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1/1 profiles passed" in done.stdout  # its own handler refused 486 in its session
    assert during.state == "CONFIRMED"  # the served call lived through the run
    assert served.get("/_harness/sessions") == []
    assert served.get("/_harness/info")["applications"] == [SERVED_SMA]
    after = caller.call(served.uri("+14345550486"))
    after.wait_for("CONFIRMED", timeout=10)  # the served handler answers, as before the run
    client = boto3.client("chime-sdk-voice", endpoint_url=served.url, region_name="us-east-1",
                          aws_access_key_id="x", aws_secret_access_key="x")
    for call in (during, after):
        client.update_sip_media_application_call(SipMediaApplicationId=SERVED_SMA,
                                                 TransactionId=served.transaction_of(call),
                                                 Arguments={"action": "hangup"})
        call.wait_for("DISCONNECTED", timeout=10)
        assert call.last_status == 200
    served_events = served.journal().event_types()
    assert served_events.count("NEW_INBOUND_CALL") == 2 and served_events.count("CALL_UPDATE_REQUESTED") == 2


def test_every_call_request_and_invocation_is_one_json_line(served, remote_run):
    tx = served.transaction_of(remote_run[2])
    assert wait_until(lambda: any(line.get("what") == "ended" and line.get("transaction_id") == tx
                                  for line in served.lines()))
    mine = [line for line in served.lines() if line.get("transaction_id") == tx and "session" not in line]
    kinds = [(line["event"], line["what"]) for line in mine]
    assert kinds[0] == ("call", "arrived")
    assert ("invocation", "NEW_INBOUND_CALL") in kinds and ("invocation", "CALL_UPDATE_REQUESTED") in kinds
    assert ("api", "UpdateSipMediaApplicationCall") in kinds and ("call", "ended") in kinds
    update = next(line for line in mine if line["event"] == "api")
    assert update["status"] == 202 and update["method"] == "POST"
    # the remote run's calls are logged too, tagged with its session
    session = [(line["event"], line["what"]) for line in served.lines() if "session" in line]
    assert ("call", "arrived") in session and ("invocation", "NEW_INBOUND_CALL") in session


def test_each_transaction_is_filed_with_its_own_capture_journal_and_report(served, remote_run):
    during = remote_run[2]
    tx = served.transaction_of(during)
    folder = wait_until(lambda: next((f for f in (served.out / "transactions").glob(f"*-{tx}")
                                      if (f / "report.json").is_file()), None), timeout=60)
    journal = json.loads((folder / "journal.json").read_text())
    assert {e["transaction_id"] for e in journal} == {tx}
    wire = analyze_pcap(str(folder / "capture.pcap"))
    assert {m.message.call_id for m in wire.sip} == {during.call_id}  # no other call's SIP
    assert [m.summary.split()[0] for m in wire.sip][:1] == ["INVITE"]
    assert wire.update_requests(tx)
    report = json.loads((folder / "report.json").read_text())
    assert report["sip"] and report["rtp_streams"] and report["profile"] == f"transaction {tx}"
    assert "BYE" in (folder / "ladder.txt").read_text()


def test_calls_lists_a_live_call_with_its_transaction_id(served, tmp_path):
    with Caller(workdir=tmp_path / "caller") as caller:
        call = caller.call(served.uri("+14345550101"))
        call.wait_for("CONFIRMED", timeout=10)
        tx = served.transaction_of(call)
        token = ["--control-token-file", str(served.token_file)]
        done = subprocess.run([str(BIN / "sip-harness"), "calls", "--stub", served.url, *token],
                              capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        assert f"TransactionId {tx}" in done.stdout and call.call_id in done.stdout
        listed = json.loads(subprocess.run([str(BIN / "sip-harness"), "calls", "--stub", served.url, "--json", *token],
                                           capture_output=True, text=True, timeout=30).stdout)
        assert [c["transaction_id"] for c in listed] == [tx]
        call.hangup()
        call.wait_for("DISCONNECTED", timeout=10)


def test_pytest_runs_profiles_and_profile_stubs_against_the_service(served, tmp_path):
    """`--sip-stub URL`: a profile item, and `sma_stub` of a `profile=` marker, each in a
    session of their own on the served stub."""
    (tmp_path / "test_remote_stub.py").write_text(f"""
import pytest

@pytest.mark.sma(profile={str(PROFILES / "hangup_codes.yaml")!r})
def test_busy_is_refused(sma_stub, sip_caller):
    assert sma_stub.sip_port != {served.sip_port}  # a session, not the served profile
    call = sip_caller.call(sma_stub.sip_uri("+14345550486"))
    call.wait_for("DISCONNECTED", timeout=10)
    assert call.last_status == 486
    assert sma_stub.journal().event_types() == ["NEW_INBOUND_CALL", "HANGUP"]
""")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "--sip-stub", served.url, "--sip-control-token-file", str(served.token_file),
                           "--sip-artifacts", str(tmp_path / "artifacts"),
                           str(tmp_path / "test_remote_stub.py"), str(PROFILES / "hangup_codes.yaml")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
    assert served.get("/_harness/sessions") == []
    assert json.loads((tmp_path / "artifacts" / "hangup-with-each-sipresponsecode" / "report.json")
                      .read_text())["verdict"] == "pass"


def test_start_up_errors_are_one_line(served, tmp_path):
    busy = subprocess.run([str(BIN / "sip-harness"), "serve", "--sip-port", str(served.sip_port),
                           "--api-port", str(free_port()), "--out", str(tmp_path / "a")],
                          capture_output=True, text=True, timeout=60)
    assert busy.returncode == 2
    assert busy.stderr.strip().count("\n") == 0, busy.stderr
    assert f"cannot listen on 127.0.0.1:{served.sip_port} for SIP over UDP: Address already in use" in busy.stderr
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    unwritable = subprocess.run([str(BIN / "sip-harness"), "serve", "--sip-port", str(free_port()),
                                 "--api-port", str(free_port()), "--out", str(blocker / "serve")],
                                capture_output=True, text=True, timeout=60)
    assert unwritable.returncode == 2
    assert unwritable.stderr.strip() == f"sip-harness serve: cannot write to {blocker / 'serve'}: Not a directory"


def test_the_service_stops_cleanly(served):
    assert served.stop() == 0
    assert served.lines()[-1]["what"] == "stopped"


def test_a_session_its_runner_left_behind_is_closed_when_idle(tmp_path):
    import asyncio

    from harness.serve import session_config
    from harness.sessions import SessionManager
    from harness.stub import Stub

    from conftest import stub_config
    stub = Stub(stub_config(tmp_path))
    stub.sessions = SessionManager(stub, session_config, tmp_path)
    with stub:
        def run(coro):
            return asyncio.run_coroutine_threadsafe(coro, stub._loop).result(30)
        info = run(stub.sessions.open(str(PROFILES / "hangup_codes.yaml")))
        assert info["sip_port"] not in (0, stub.sip_port)
        assert run(stub.sessions.reap(idle_s=3600)) == []  # still fresh
        assert run(stub.sessions.reap(idle_s=0)) == [info["session"]]
        assert stub.sessions.list() == []
