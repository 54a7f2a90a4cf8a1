"""Reading captures: pcap and pcapng records, link types, junk frames, and the vectorised
decoder against the general one."""
from __future__ import annotations

import random
import struct

import pytest
from scapy.layers.inet import IP, TCP, UDP, IPOption
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import CookedLinux, CookedLinuxV2, Dot1Q, Ether
from scapy.packet import Raw
from scapy.utils import RawPcapNgReader, RawPcapReader, wrpcapng

from harness.wire.datagrams import decode_capture
from harness.wire.packets import (LINKTYPE_ETHERNET, DecodedFrame, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2,
                                  LINKTYPE_NULL, LINKTYPE_RAW, decode_frame)
from harness.wire.pcap import PcapError, read_pcap, write_pcap
from harness.wire.pcap_records import read_records

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


def varied_frames(seed: int, n: int = 400) -> list[bytes]:
    """Ethernet frames in runs of one size (as RTP) and single ones of other sizes, tiny ones
    included."""
    rnd = random.Random(seed)
    frames = []
    while len(frames) < n:
        if rnd.random() < 0.3:
            frames += [bytes(Ether() / IP() / UDP() / bytes(172))] * rnd.randint(2, 80)
        else:
            frames.append(bytes(rnd.getrandbits(8) for _ in range(rnd.choice([0, 5, 40, 63, 64, 65, 300]))))
    return frames[:n]


def pcap_bytes(frames: list[bytes], order: str, nano: bool, linktype: int = LINKTYPE_ETHERNET) -> bytes:
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 262144, linktype)]
    for i, frame in enumerate(frames):
        out.append(struct.pack(order + "IIII", 1_700_000_000 + i, 999 * i, len(frame), len(frame)) + frame)
    return b"".join(out)


@pytest.mark.parametrize("order, nano", [("<", True), ("<", False), (">", True), (">", False)])
def test_pcap_records_in_runs_and_singles_match_scapys_reader(tmp_path, order, nano):
    frames = varied_frames(1)
    path = tmp_path / "x.pcap"
    path.write_bytes(pcap_bytes(frames, order, nano) + b"\x01\x02")   # a cut-off record header
    records = read_records(str(path))
    with RawPcapReader(str(path)) as reader:
        theirs = [(data, meta.sec * 10**9 + meta.usec * (1 if nano else 1000)) for data, meta in reader]
    assert [(records.frame(i), int(records.ts_ns[i])) for i in range(records.frames)] == theirs
    assert [bytes(records.head[i, :len(f)]) for i, f in enumerate(frames)] == [f[:64] for f in frames]
    assert set(records.linktype.tolist()) == {LINKTYPE_ETHERNET}


def test_pcapng_records_match_scapys_reader(tmp_path):
    frames = varied_frames(2)
    packets = []
    for i, frame in enumerate(frames):
        pkt = Raw(frame)
        pkt.time = 1_700_000_000 + i / 1000
        packets.append(pkt)
    path = str(tmp_path / "x.pcapng")
    wrpcapng(path, packets)
    records = read_records(path)
    with RawPcapNgReader(path) as reader:
        theirs = [(data, ((meta.tshigh << 32) | meta.tslow) * 10**9 // meta.tsresol)
                  for data, meta in reader]
    assert [(records.frame(i), int(records.ts_ns[i])) for i in range(records.frames)] == theirs


def block(kind: int, body: bytes) -> bytes:
    body += bytes(-len(body) % 4)
    return struct.pack("<II", kind, len(body) + 12) + body + struct.pack("<I", len(body) + 12)


def test_pcapng_interfaces_resolutions_simple_and_obsolete_blocks_and_sections(tmp_path):
    shb = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    ns_option = struct.pack("<HHB3x", 9, 1, 9) + struct.pack("<HHq", 14, 8, 10) + bytes(4)
    idb_raw_ns = block(1, struct.pack("<HHI", LINKTYPE_RAW, 0, 0) + ns_option)
    idb_eth_us = block(1, struct.pack("<HHI", LINKTYPE_ETHERNET, 0, 96))
    udp_raw, udp_eth = bytes(UDP_PKT), bytes(Ether() / UDP_PKT)

    def epb(iface: int, units: int, frame: bytes) -> bytes:
        header = struct.pack("<IIIII", iface, units >> 32, units & 0xFFFFFFFF, len(frame), len(frame))
        return block(6, header + frame)

    data = (shb + idb_raw_ns + idb_eth_us + epb(0, 5_000_000_000, udp_raw) + epb(1, 7_000_001, udp_eth)
            + block(3, struct.pack("<I", len(udp_raw)) + udp_raw)                      # simple: no time
            + block(2, struct.pack("<HHIIII", 1, 0, 0, 9_000_000, len(udp_eth), len(udp_eth)) + udp_eth)
            + shb + idb_eth_us + epb(0, 11_000_000, udp_eth))                          # a new section
    path = tmp_path / "x.pcapng"
    path.write_bytes(data)
    records = read_records(str(path))
    assert records.linktype.tolist() == [LINKTYPE_RAW, LINKTYPE_ETHERNET, LINKTYPE_RAW,
                                         LINKTYPE_ETHERNET, LINKTYPE_ETHERNET]
    assert records.ts_ns.tolist() == [15_000_000_000, 7_000_001_000, 7_000_001_000, 9_000_000_000,
                                      11_000_000_000]
    contents = read_pcap(str(path))
    assert [(p.number, p.payload) for p in contents.packets] == [(i, b"hello") for i in range(1, 6)]


def test_fast_and_general_decoders_agree_on_any_frame(tmp_path):
    """Valid, truncated, fragmented, optioned, tagged and random frames on every link type."""
    rnd = random.Random(4)
    payload = b"\x80\x00\x00\x01" + bytes(rnd.getrandbits(8) for _ in range(30))
    ip_packets = [IP(src="10.1.2.3", dst="10.3.2.1") / UDP(sport=5004, dport=5006) / payload,
                  IP(src="10.1.2.3", options=[IPOption(b"\x94\x04\x00\x00")]) / UDP() / payload,
                  IP(flags="MF") / UDP() / payload, IP(frag=3, id=7) / UDP() / payload,
                  IP() / TCP(sport=80, dport=4000, seq=9, flags="PA") / payload,
                  IP(len=30) / UDP() / payload, IP(len=0) / UDP() / payload, IP(proto=47) / payload,
                  IPv6(src="::1", dst="fe80::2") / UDP(sport=1, dport=2) / payload]
    link = {LINKTYPE_ETHERNET: lambda p: Ether(dst="02:00:00:00:00:02") / p,
            LINKTYPE_LINUX_SLL: lambda p: CookedLinux(proto=0x0800) / p,
            LINKTYPE_LINUX_SLL2: lambda p: CookedLinuxV2(proto=0x0800) / p,
            LINKTYPE_RAW: lambda p: p, LINKTYPE_NULL: lambda p: struct.pack("=I", 2) / p}
    for linktype, wrap in link.items():
        frames = []
        for packet in ip_packets:
            raw = bytes(wrap(packet))
            if isinstance(packet[0].payload, UDP):
                udp = bytearray(raw)
                frames.append(bytes(udp))
                udp[-len(payload) - 4:-len(payload) - 2] = (rnd.randint(0, 80)).to_bytes(2, "big")
                frames.append(bytes(udp))                                      # odd UDP length
            frames += [raw, raw[:rnd.randint(0, len(raw))], raw[:rnd.randint(30, 48)]]
        frames += [bytes(Ether() / Dot1Q(vlan=3) / ip_packets[0])] if linktype == LINKTYPE_ETHERNET else []
        frames += [bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 90))) for _ in range(50)]
        path = str(tmp_path / f"{linktype}.pcap")
        write_pcap(path, [(T0 + i, f) for i, f in enumerate(frames)], linktype=linktype)
        capture = decode_capture(read_records(path))
        fast = [(p.number, p.src, p.dst, p.transport, p.payload, p.tcp_seq) for p in
                sorted([capture.udp.packet(i) for i in range(len(capture.udp))] + list(capture.tcp),
                       key=lambda p: p.number)]
        general = []
        for number, frame in enumerate(frames, 1):
            found = decode_frame(frame, linktype)
            if isinstance(found, DecodedFrame) and found.protocol in (6, 17):
                general.append((number, found.src, found.dst, "udp" if found.protocol == 17 else "tcp",
                                frame[found.payload_start:found.payload_end], found.tcp_seq))
        assert fast == general, linktype
        assert len(general) >= 6
