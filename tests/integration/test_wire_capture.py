"""Live capture on lo: each packet written once, readable by tshark, clear errors."""
from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from conftest import ROOT, require_capture, require_tool
from harness.wire.capture import Capture, CaptureError
from harness.wire.pcap import read_pcap

@pytest.fixture(autouse=True)
def _capture_permitted():
    require_capture()


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_each_datagram_on_lo_is_written_once_and_tshark_reads_the_file(tmp_path):
    tshark = require_tool("tshark")
    port, n = free_udp_port(), 500
    path = tmp_path / "lo.pcap"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        rx.bind(("127.0.0.1", port))
        cap = Capture(path, iface="lo", bpf=f"udp port {port}")
        cap.start()
        for i in range(n):
            tx.sendto(b"datagram %d" % i, ("127.0.0.1", port))
        tx.sendto(b"filtered out", ("127.0.0.1", port + 1 if port < 65535 else port - 1))
        stats = cap.stop()
    assert (stats.packets, stats.kernel_drops) == (n, 0)
    assert stats.loopback_copies_skipped == n  # lo hands each packet over twice
    contents = read_pcap(str(path))
    assert [p.payload for p in contents.packets] == [b"datagram %d" % i for i in range(n)]
    assert all(a.ts_ns <= b.ts_ns for a, b in zip(contents.packets, contents.packets[1:]))
    out = subprocess.run([tshark, "-r", str(path), "-T", "fields", "-e", "udp.dstport"],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == [str(port)] * n


def test_context_manager_stops_and_an_empty_capture_is_a_valid_file(tmp_path):
    path = tmp_path / "empty.pcap"
    with Capture(path, bpf="udp port 9") as cap:
        pass
    with pytest.raises(CaptureError, match="not started"):
        cap.stop()
    assert read_pcap(str(path)).frames == 0


def test_unknown_interface_and_bad_filter_are_clear_errors(tmp_path):
    with pytest.raises(CaptureError, match="no network interface named 'nope0'"):
        Capture(tmp_path / "x.pcap", iface="nope0").start()
    with pytest.raises(CaptureError, match="bad capture filter"):
        Capture(tmp_path / "x.pcap", bpf="udp port banana").start()


def test_without_cap_net_raw_the_error_says_what_is_needed(tmp_path):
    setpriv = require_tool("setpriv")
    code = ("from harness.wire.capture import Capture, CaptureError\n"
            "try:\n    Capture('/tmp/never.pcap').start()\n"
            "except CaptureError as e:\n    print(e)\n")
    proc = subprocess.run([setpriv, "--inh-caps=-all", "--bounding-set=-net_raw", sys.executable,
                           "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=30)
    assert "needs CAP_NET_RAW" in proc.stdout, proc.stderr
    assert "setcap cap_net_raw+ep" in proc.stdout
