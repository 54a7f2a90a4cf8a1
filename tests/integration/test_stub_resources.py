"""The stub's resources under pressure: every failed call set-up is answered and releases what
it took, bad SIP is counted instead of journaled, and the journal stays bounded, paged and
cheap to serve while calls run."""
from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import subprocess
import sys
import time

import pytest

from conftest import stub_config, wait_until
from harness.control import ControlSettings
from harness.journal import Journal, MalformedTally
from harness.journal_entries import SipMalformed, UpdateRequested
from harness.journal_view import JournalView
from harness.run.setup import rtp_block
from harness.stub import Stub
from test_fuzz_sip import BASE, message, sdp
from webclient import call as http

HOST = "127.0.0.1"
LEAKS = ("dialogs", "media_sessions", "transactions", "tasks")


def invite(n: int, port: int = 4000) -> bytes:
    return message("INVITE sip:+14345550101@127.0.0.1 SIP/2.0",
                   BASE.format(n=n, cseq="1 INVITE").replace(";branch=", ";rport;branch=")
                   + "Content-Type: application/sdp\r\n", sdp(f"m=audio {port} RTP/AVP 0"))


def final(sock: socket.socket) -> bytes:
    while True:
        reply = sock.recv(65536)
        if not reply.startswith(b"SIP/2.0 1"):
            return reply


def leaks(stub: Stub) -> dict:
    return {k: v for k, v in stub.resources().items() if k in LEAKS and v}


@pytest.fixture
def one_port_pair(tmp_path):
    low = rtp_block()
    with Stub(stub_config(tmp_path, rtp_port_range=(low, low + 2))) as s:
        yield s


def test_an_invite_without_a_free_rtp_port_gets_503_with_retry_after(one_port_pair, sipp_call):
    stub = one_port_pair
    holder = sipp_call(stub, hold_ms=3000)
    assert wait_until(lambda: stub.resources()["media_sessions"] == 1, 10)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(10)
        s.connect((HOST, stub.sip_port))
        s.sendall(invite(1))
        reply = final(s)
    assert reply.startswith(b"SIP/2.0 503") and b"\r\nRetry-After: 5\r\n" in reply, reply[:300]
    assert stub.resources()["transactions"] == 1  # only the call that holds the port
    assert holder.wait(30) == 0
    assert wait_until(lambda: not leaks(stub), 10), leaks(stub)


def test_create_call_without_a_free_rtp_port_is_the_apis_503(one_port_pair, sipp_call):
    stub = one_port_pair
    stub.add_route("*", "sip:{user}@127.0.0.1:9")
    holder = sipp_call(stub, hold_ms=3000)
    assert wait_until(lambda: stub.resources()["media_sessions"] == 1, 10)
    sma_id = stub.config.applications[0].sip_media_application_id
    status, headers, body = http(stub.api_port, "POST", f"/sip-media-applications/{sma_id}/calls",
                                 json.dumps({"FromPhoneNumber": "+14255550199",
                                             "ToPhoneNumber": "+14345550102"}).encode(),
                                 {"Content-Type": "application/json"})
    assert (status, headers["x-amzn-ErrorType"]) == (503, "ServiceUnavailableException"), body
    assert "RTP" in body["Message"]
    assert stub.resources()["transactions"] == 1
    holder.wait(30)
    assert wait_until(lambda: not leaks(stub), 10), leaks(stub)


def test_create_call_without_a_route_is_refused_and_takes_nothing(stub):
    sma_id = stub.config.applications[0].sip_media_application_id
    status, _, body = http(stub.api_port, "POST", f"/sip-media-applications/{sma_id}/calls",
                           json.dumps({"FromPhoneNumber": "+14255550199",
                                       "ToPhoneNumber": "+14345550102"}).encode(),
                           {"Content-Type": "application/json"})
    assert (status, body["Code"]) == (400, "BadRequest") and "no route" in body["Message"]
    assert not leaks(stub) and stub.resources()["media_sessions"] == 0


@pytest.mark.parametrize("port", [65535, 0])
def test_an_offer_whose_rtp_port_is_unusable_is_488_and_takes_nothing(stub, port):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(10)
        s.connect((HOST, stub.sip_port))
        for n in range(20):  # more than a small port range holds: nothing may pile up
            s.sendall(invite(100 + n, port))
            assert final(s).startswith(b"SIP/2.0 488")
    assert not leaks(stub) and stub.resources()["media_sessions"] == 0


def test_junk_sip_is_counted_per_reason_and_source_not_journaled(stub):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((HOST, stub.sip_port))
        for n in range(2000):
            s.sendall(b"JUNK %d\r\n\r\n" % n if n % 2 else b"INVITE sip:a SIP/2.0\r\nCSeq: x\r\n\r\n")
            if n % 200 == 199:
                time.sleep(0.05)  # what a loaded socket buffer can take
    assert wait_until(lambda: stub.malformed.total >= 1800, 10), stub.malformed.to_json()
    tally = stub.malformed.to_json()
    assert set(tally["by_source"]) == {HOST} and len(tally["by_reason"]) <= 3
    noted = JournalView(stub.journal_json()).of(SipMalformed)
    assert len(noted) == len(tally["by_reason"])  # the first of each reason only


def test_the_malformed_tally_keeps_a_bounded_number_of_sources():
    tally = MalformedTally()
    for n in range(5000):
        tally.count("bad request line", f"127.0.{n // 256}.{n % 256}", answered=False)
    assert tally.total == 5000 and len(tally.by_source) == 1001
    assert tally.by_source["other"] == 4000


def test_the_journal_is_bounded_in_bytes_and_pages_on(tmp_path):
    journal = Journal(max_bytes=50_000, path=tmp_path / "journal.jsonl")
    for n in range(2000):
        journal.note(UpdateRequested(arguments={"n": str(n), "pad": "x" * 100}))
    assert journal.kept_bytes <= 50_000 and journal.total == 2000 and journal.first > 1500
    lines, following = journal.page(0, 10)
    assert json.loads(lines[0])["arguments"]["n"] == str(journal.first)
    assert following == journal.first + 10
    assert journal.page(journal.total)[0] == []
    journal.close()
    on_disk = [json.loads(line) for line in (tmp_path / "journal.jsonl").read_text().splitlines()]
    assert [e["arguments"]["n"] for e in on_disk] == [str(n) for n in range(2000)]  # every entry


PAGE_READER = """
import json, sys, urllib.request
since = 0
for _ in range(20):
    request = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/_harness/journal?since={since}&limit=10000",
                                     headers={"Authorization": "Bearer t"})
    with urllib.request.urlopen(request, timeout=30) as response:
        page = json.load(response)
    print(response.status)
    print(len(page["entries"]), file=sys.stderr)
    since = page["next"]
"""


def test_serving_a_big_journal_does_not_stall_the_stubs_loop(tmp_path):
    config = dataclasses.replace(stub_config(tmp_path), control=ControlSettings("t"))
    with Stub(config) as stub:
        def fill():
            for n in range(120_000):  # ~50 MB, what 150,000 junk datagrams once made
                stub._note(UpdateRequested(arguments={"n": str(n), "pad": "y" * 300}))
        stub.run_in_loop(fill, timeout=120)
        gaps, read = [], []

        async def heartbeat():  # while the pages are read (a minute at most)
            last = time.monotonic()
            for _ in range(6000):
                if read:
                    return
                await asyncio.sleep(0.01)
                now = time.monotonic()
                gaps.append(now - last)
                last = now
        beat = asyncio.run_coroutine_threadsafe(heartbeat(), stub._loop)
        # the reader is a process of its own, as a real one is: parsing 20 pages of JSON in
        # this process would stall it (the garbage collector), and count as the stub's stall
        reader = subprocess.run([sys.executable, "-c", PAGE_READER, str(stub.api_port)],
                                capture_output=True, text=True, timeout=120)
        read.append(True)
        beat.result(30)
    assert reader.returncode == 0, reader.stderr
    assert reader.stdout.split() == ["200"] * 20 and all(
        int(n) <= 10_000 for n in reader.stderr.split()), (reader.stdout, reader.stderr)
    assert max(gaps) < 0.3, f"the loop stalled {max(gaps):.3f} s while the journal was served"
