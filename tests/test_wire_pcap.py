"""Reading captures with RawPcapReader + struct: link types, pcapng, junk frames."""
from __future__ import annotations

import struct

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import CookedLinux, CookedLinuxV2, Dot1Q, Ether
from scapy.utils import wrpcapng

from harness.wire.pcap import (LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2,
                               LINKTYPE_NULL, LINKTYPE_RAW, PcapError, read_pcap, write_pcap)

T0 = 1_700_000_000_123_456_789
UDP_PKT = IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=4000, dport=5000) / b"hello"


@pytest.mark.parametrize("linktype, frame", [
    (LINKTYPE_ETHERNET, Ether() / UDP_PKT),
    (LINKTYPE_ETHERNET, Ether() / Dot1Q(vlan=7) / UDP_PKT),
    (LINKTYPE_LINUX_SLL, CookedLinux(proto=0x0800) / UDP_PKT),
    (LINKTYPE_LINUX_SLL2, CookedLinuxV2(proto=0x0800) / UDP_PKT),
    (LINKTYPE_RAW, UDP_PKT),
    (LINKTYPE_NULL, struct.pack("=I", 2) + bytes(UDP_PKT)),
], ids=["ethernet", "vlan", "sll", "sll2", "raw", "null"])
def test_link_types(tmp_path, linktype, frame):
    path = str(tmp_path / "x.pcap")
    write_pcap(path, [(T0, bytes(frame))], linktype=linktype)
    contents = read_pcap(path)
    [pkt] = contents.packets
    assert (pkt.number, pkt.ts_ns, contents.start_ns) == (1, T0, T0)
    assert (pkt.src, pkt.dst, pkt.transport, pkt.payload) == \
        (("10.0.0.1", 4000), ("10.0.0.2", 5000), "udp", b"hello")


def test_ipv6_tcp_and_junk_frames_are_numbered_like_wireshark(tmp_path):
    path = str(tmp_path / "x.pcap")
    frames = [
        bytes(Ether() / IP(dst="10.0.0.9") / b"\x01\x02"),                      # not UDP/TCP
        bytes(Ether() / UDP_PKT)[:30],                                           # truncated
        bytes(Ether() / IP(flags="MF", src="10.0.0.1") / UDP() / b"frag"),       # a fragment
        bytes(Ether() / IPv6(src="::1", dst="::2") / TCP(sport=1, dport=2, seq=7, flags="PA") / b"tcp!"),
    ]
    write_pcap(path, [(T0 + i, f) for i, f in enumerate(frames)])
    contents = read_pcap(path)
    assert contents.frames == 4
    [pkt] = contents.packets
    assert (pkt.number, pkt.src, pkt.dst, pkt.transport, pkt.payload, pkt.tcp_seq) == \
        (4, ("::1", 1), ("::2", 2), "tcp", b"tcp!", 7)


def test_pcapng_is_read_with_its_timestamps(tmp_path):
    path = str(tmp_path / "x.pcapng")
    pkt = Ether() / UDP_PKT
    pkt.time = 1_700_000_000.25
    wrpcapng(path, [pkt])
    [got] = read_pcap(path).packets
    assert got.ts_ns == 1_700_000_000_250_000_000 and got.payload == b"hello"


def test_not_a_capture_raises_pcap_error(tmp_path):
    path = tmp_path / "x.pcap"
    path.write_bytes(b"certainly not a pcap file")
    with pytest.raises(PcapError):
        read_pcap(str(path))
