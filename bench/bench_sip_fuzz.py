"""Hostile SIP against a live stub: malformed and mutated messages over UDP and TCP, while real
calls (`sipp -sn uac`) go through it; prints one JSON object.

Each case is a real message of a call (INVITE with SDP, ACK, BYE, CANCEL, OPTIONS, INFO,
re-INVITEs that hold, resume, move or change the codec, UPDATE, responses, unknown methods)
or plain junk, mutated one to three times: truncation, duplicated or dropped headers, bad
Content-Length, huge headers, binary junk, wrong CSeq, unknown methods, nasty header values,
broken line endings, damaged bodies (SDP, DTMF relay), SDP ports (0, 65535, huge, odd) and
payload types, spliced messages and oversized datagrams. Case `i` of seed `s` is always the
same bytes (`case(s, i, ...)`). Cases go out in batches. Over UDP each batch opens a live
call first (INVITE, 200, ACK) and most in-dialog cases are aimed at it with its Call-ID and
tags and a CSeq above the last (dialog-aware: they reach the re-INVITE, INFO and BYE logic,
not just the parser); the batch's BYE ends it. Over TCP: one connection per batch. An OPTIONS
must be answered within `probe_timeout` after each batch and every 48 KB (no hang). Calls the
stub answers are ACKed and hung up.

A crash is any exception the stub's event loop reports, an error logged by the harness or a
traceback logged at any level, or an `internal_error` in the stub's journal. After the
campaign the stub gets `settle_s` (75 s: a 2xx whose ACK never comes ends by timer H and a
BYE, 2 x 64 T1 at most) for its SIP timers to run out; then its SMA transactions,
dialogs, SIP transactions and media sessions must be 0, and the process's file descriptors
(beside the warm handler workers' pipes) and INET sockets, counted in /proc, as many as after
the warm-up call that starts the campaign.

    python bench/bench_sip_fuzz.py [--cases 100000] [--seed 1] [--max-seconds 900]
"""
from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import logging
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import itertools
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.journal_entries import InternalError  # noqa: E402
from harness.journal_view import JournalView  # noqa: E402
from harness.sip.framing import StreamFramer  # noqa: E402
from harness.sip.message import (MAX_CSEQ, SipParseError, SipRequest, SipResponse,  # noqa: E402
                                 parse_message)
from harness.sip.sdp import build_offer  # noqa: E402

HOST = "127.0.0.1"
UDP_MAX = 65507  # the largest datagram loopback carries
BATCH_CASES = 50
#: UDP bytes sent before an OPTIONS must be answered: what is in flight then fits the stub's
#: socket buffer (a 64 KB datagram takes twice that of it on loopback)
SYNC_BYTES = 48 * 1024
TCP_SHARE = 4  # every 4th batch goes over TCP
T1 = 0.5
MAX_ERRORS = 100  # kept in the report (all are counted)
PIPES_PER_WORKER = 2  # a handler worker's stdin and stdout, as the stub holds them


# ---- the corpus: the messages of a real call ------------------------------------------------
@dataclass(frozen=True)
class Ids:
    """Who a case claims to be: its dialog (the batch's, when it has one) and branch."""

    call_id: str
    from_tag: str
    to_tag: str
    branch: str
    port: int
    transport: str
    cseq: int = 0  # a dialog's next CSeq (0: each template's own)
    media: int = 4000  # the RTP port its SDP offers (the fuzzer's own media sink)


def _request(method: str, ids: Ids, cseq: int, body: bytes = b"", ctype: str = "",
             to_tag: bool = True, extra: str = "") -> bytes:
    to = f"<sip:+14345550101@{HOST}>" + (f";tag={ids.to_tag}" if to_tag and ids.to_tag else "")
    head = (f"{method} sip:+14345550101@{HOST} SIP/2.0\r\n"
            f"Via: SIP/2.0/{ids.transport} {HOST}:{ids.port};rport;branch={ids.branch}\r\n"
            f"Max-Forwards: 70\r\nFrom: \"Fuzz\" <sip:+14255550199@{HOST}>;tag={ids.from_tag}\r\n"
            f"To: {to}\r\nCall-ID: {ids.call_id}\r\nCSeq: {cseq} {method}\r\n"
            f"Contact: <sip:fuzz@{HOST}:{ids.port}>\r\nUser-Agent: sip-fuzz\r\n{extra}")
    if ctype:
        head += f"Content-Type: {ctype}\r\n"
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def _follow_up(method: str, resp: SipResponse, cseq: int, branch: str, port: int,
               transport: str) -> bytes:
    """An ACK or BYE in the dialog a 2xx made: its From, To and Call-ID as the 2xx wrote
    them, so that a call a mutated INVITE opened (odd tags and all) is ended too."""
    return (f"{method} sip:+14345550101@{HOST} SIP/2.0\r\n"
            f"Via: SIP/2.0/{transport} {HOST}:{port};rport;branch={branch}\r\nMax-Forwards: 70\r\n"
            f"From: {resp.headers.get('from')}\r\nTo: {resp.headers.get('to')}\r\n"
            f"Call-ID: {resp.call_id}\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n").encode()


def _response(status: str, method: str, ids: Ids, cseq: int) -> bytes:
    return (f"SIP/2.0 {status}\r\nVia: SIP/2.0/{ids.transport} {HOST}:{ids.port};branch={ids.branch}\r\n"
            f"From: <sip:+14255550199@{HOST}>;tag={ids.from_tag}\r\nTo: <sip:sma@{HOST}>;tag={ids.to_tag}\r\n"
            f"Call-ID: {ids.call_id}\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n").encode()


SDP_TYPE = "application/sdp"


def _offer(ids: Ids, version: int = 1, host: str = HOST, shift: int = 0, **options) -> bytes:
    """Our SDP offer for the media port of `ids` (+ `shift`: a move to another port)."""
    return build_offer(host, ids.media + shift, 1, version, **options)


TEMPLATES = {
    "INVITE": lambda ids: _request("INVITE", ids, 1, _offer(ids), SDP_TYPE, to_tag=False,
                                   extra="X-Case: fuzz\r\nSupported: timer\r\n"),
    "ACK": lambda ids: _request("ACK", ids, ids.cseq or 1),
    "BYE": lambda ids: _request("BYE", ids, ids.cseq or 2),
    "CANCEL": lambda ids: _request("CANCEL", ids, 1, to_tag=False),
    "OPTIONS": lambda ids: _request("OPTIONS", ids, 1, to_tag=False, extra="Accept: application/sdp\r\n"),
    "INFO": lambda ids: _request("INFO", ids, ids.cseq or 3, b"Signal=5\r\nDuration=160\r\n",
                                 "application/dtmf-relay"),
    "INFO dtmf": lambda ids: _request("INFO", ids, ids.cseq or 3, b"#", "application/dtmf"),
    "re-INVITE": lambda ids: _request("INVITE", ids, ids.cseq or 4,
                                      _offer(ids, 2, direction="sendonly"), SDP_TYPE),
    "re-INVITE resume": lambda ids: _request("INVITE", ids, ids.cseq or 4, _offer(ids, 3), SDP_TYPE),
    "re-INVITE move": lambda ids: _request("INVITE", ids, ids.cseq or 4, _offer(ids, 4, shift=2), SDP_TYPE),
    "re-INVITE codec": lambda ids: _request("INVITE", ids, ids.cseq or 4,
                                            _offer(ids, 5, codecs=("PCMA",)), SDP_TYPE),
    "re-INVITE inactive": lambda ids: _request("INVITE", ids, ids.cseq or 4,
                                               _offer(ids, 6, "0.0.0.0", direction="inactive"), SDP_TYPE),
    "re-INVITE offerless": lambda ids: _request("INVITE", ids, ids.cseq or 4),
    "UPDATE": lambda ids: _request("UPDATE", ids, ids.cseq or 6, _offer(ids, 2, direction="sendonly"),
                                   SDP_TYPE),
    "OPTIONS in dialog": lambda ids: _request("OPTIONS", ids, ids.cseq or 7),
    "REGISTER": lambda ids: _request("REGISTER", ids, 1, to_tag=False, extra="Expires: 3600\r\n"),
    "PRACK": lambda ids: _request("PRACK", ids, ids.cseq or 5, extra="RAck: 1 1 INVITE\r\n"),
    "200 INVITE": lambda ids: _response("200 OK", "INVITE", ids, 1),
    "180 INVITE": lambda ids: _response("180 Ringing", "INVITE", ids, 1),
    "486 BYE": lambda ids: _response("486 Busy Here", "BYE", ids, 2),
    "junk": lambda ids: b"",
}
TEMPLATE_NAMES = tuple(TEMPLATES)
IN_DIALOG = {"ACK", "BYE", "INFO", "INFO dtmf", "re-INVITE", "re-INVITE resume", "re-INVITE move",
             "re-INVITE codec", "re-INVITE inactive", "re-INVITE offerless", "UPDATE",
             "OPTIONS in dialog", "PRACK"}
#: In-dialog cases left unmutated this often: whole, valid requests that exercise the dialog.
INTACT_SHARE = 0.25


# ---- mutations ------------------------------------------------------------------------------
NASTY = [b"", b" ", b"*", b"<", b">", b"<>", b"<sip:>", b"sip:@", b"\"", b"\"unclosed <sip:a@b>",
         b";tag", b";tag=;tag=", b",,,", b"SIP/2.0/UDP", b"SIP/2.0/UDP ;branch=", b"9" * 5000,
         b"1 INVITE", b"4294967296 BYE", b"99999999999 ACK", b"-1 OPTIONS", b"\x00\x01\x02",
         b"\xff\xfe\xfd", "\u00e9t\u00e9 \u2028".encode(), b"%00%ff", b"\t\t", b"sips:x@[::1]:0",
         b"<sip:a@127.0.0.1:99999>", b"<sip:a@[zz]>", b"tel:+1", b"a" * 300]
#: Port numbers a mutation writes as MEDIA (the case's media port) or MEDIA+n are the
#: fuzzer's own sockets: the stub's RTP for a usable offer never reaches another process.
MEDIA, MEDIA_1, MEDIA_2 = b"@MEDIA@", b"@MEDIA+1@", b"@MEDIA+2@"
BODY_DAMAGE = [b"m=audio 99999 RTP/AVP 0", b"m=audio @MEDIA@ RTP/AVP 128", b"m=audio @MEDIA@ RTP/AVP",
              b"m=audio " + b"9" * 5000 + b" RTP/AVP 0", b"m=audio @MEDIA@ RTP/AVP " + b"1" * 4400,
              b"m=audio -1 RTP/AVP 0", b"m=video @MEDIA@ RTP/AVP 0", b"m=audio 0 RTP/AVP 0",
              b"m=audio @MEDIA@/2 RTP/AVP 0 8 101", b"m=", b"c=IN IP4", b"c=IN IP4 localhost",
              b"c=IN IP4 127.0.0.1/127/3", b"c=IN IP6 ::1", b"c=IN IP4 0.0.0.0", b"a=rtpmap:0",
              b"a=rtpmap:0 /8000", b"a=rtpmap:101 telephone-event/" + b"9" * 4400,
              b"a=rtpmap:" + b"9" * 4400 + b" PCMU/8000", b"a=ptime:" + b"9" * 4400, b"a=ptime:0",
              b"a=fmtp:x 0-15", b"a=sendonly", b"a=inactive", b"v=1", b"x", b"\xff=\xff",
              b"Signal=", b"Signal=55", b"Signal=\xff", b"Duration=-1", b"Duration=" + b"9" * 5000,
              b"Duration=\xd9\xa3", b"=", b""]
METHODS = [b"FOO", b"INVITE", b"ACK", b"BYE", b"CANCEL", b"OPTIONS", b"invite", b"", b"IN VITE",
           b"SUBSCRIBE", b"NOTIFY", b"MESSAGE", b"UPDATE", b"REFER", b"X" * 200, b"\x00"]
LENGTHS = [b"", b"0", b"1", b"-1", b"abc", b"99999", b"4294967296", b"9" * 11, b"1 1", b" 00000000000012"]


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\r\n")


def truncate(rng, data):
    return data[:rng.randrange(len(data) + 1)]


def duplicate_header(rng, data):
    lines = _lines(data)
    line = lines[rng.randrange(len(lines))]
    lines.insert(rng.randrange(1, len(lines) + 1), line)
    return b"\r\n".join(lines)


def drop_header(rng, data):
    lines = _lines(data)
    if len(lines) > 1:
        del lines[rng.randrange(1, len(lines))]
    return b"\r\n".join(lines)


def content_length(rng, data):
    value = rng.choice(LENGTHS) if rng.random() < 0.7 else str(len(data) + rng.randint(-50, 50)).encode()
    if rng.random() < 0.3:  # a second, conflicting one
        return data.replace(b"\r\n\r\n", b"\r\nContent-Length: " + value + b"\r\n\r\n", 1)
    return re.sub(rb"Content-Length:[^\r\n]*", b"Content-Length: " + value, data, count=1)


def huge_header(rng, data):
    size = rng.choice([1024, 8192, 40000, 60000])
    value = rng.choice([b"x", b"9", b";", b",", b"<"]) * size
    name = rng.choice([b"X-Huge", b"Via", b"To", b"Contact", b"Call-ID", b"Subject"])
    return data.replace(b"\r\n", b"\r\n" + name + b": " + value + b"\r\n", 1)


def junk(rng, data):
    at = rng.randrange(len(data) + 1)
    return data[:at] + rng.randbytes(rng.choice([1, 4, 32, 512])) + data[at:]


def flip(rng, data):
    out = bytearray(data)
    for _ in range(rng.randint(1, 8) if out else 0):
        out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out)


def wrong_cseq(rng, data):
    number = rng.choice([b"0", b"1", b"2", b"7", b"4294967295", b"9999999999", b"99999999999",
                         b"-3", b"", b"x"])
    method = rng.choice([b"INVITE", b"BYE", b"ACK", b"INFO", b"FOO", b"", b"INVITE INVITE"])
    return re.sub(rb"CSeq:[^\r\n]*", b"CSeq: " + number + b" " + method, data, count=1)


def unknown_method(rng, data):
    method = rng.choice(METHODS)
    first, sep, rest = data.partition(b" ")
    if first.startswith(b"SIP/"):
        return data.replace(b" ", b" " + rng.choice([b"999", b"0", b"abc", b"1000", b""]) + b" ", 1)
    return method + sep + rest


def nasty_value(rng, data):
    lines = _lines(data)
    i = rng.randrange(len(lines))
    name, sep, _ = lines[i].partition(b":")
    lines[i] = name + b":" + rng.choice(NASTY) if sep else rng.choice(NASTY)
    return b"\r\n".join(lines)


def line_endings(rng, data):
    choice = rng.randrange(4)
    if choice == 0:
        return data.replace(b"\r\n", b"\n")
    if choice == 1:
        return data.replace(b"\r\n", b"\r")
    if choice == 2:
        return data.replace(b"\r\n", b"\r\n \t", rng.randint(1, 4))  # folded lines
    return data.replace(b"\r\n\r\n", b"\r\n", 1)


def body_damage(rng, data):
    """A line of the body (SDP, DTMF relay) replaced or added; Content-Length mostly kept
    right, so that the damage reaches the body's parser."""
    head, sep, body = data.partition(b"\r\n\r\n")
    lines = body.split(b"\r\n")
    i = rng.randrange(len(lines))
    lines[i:i + (rng.random() < 0.5)] = [rng.choice(BODY_DAMAGE)]
    body = b"\r\n".join(lines)
    if rng.random() < 0.8:
        head = re.sub(rb"Content-Length:[^\r\n]*", b"Content-Length: %d" % len(body), head, count=1)
    return head + sep + body


SDP_PORTS = [b"0", b"1", b"2", b"3", MEDIA_1, MEDIA_2, b"65534", b"65535", b"65536", b"99999",
             b"4294967296", b"9" * 30, b"-4000", MEDIA + b"/2", MEDIA + b"/0", b"", b"port"]
SDP_FORMATS = [b"0", b"8", b"0 8 101", b"96", b"96 97 98", b"127", b"128", b"255", b"-1", b"x",
               b"0 0 0 0", b" ".join(b"%d" % n for n in range(128)), b""]
SDP_ATTRIBUTES = [b"a=rtpmap:96 opus/48000/2", b"a=rtpmap:0 PCMA/8000", b"a=rtpmap:8 PCMU/16000",
                  b"a=rtpmap:101 telephone-event/8000", b"a=rtpmap:31 LPC", b"a=rtpmap:200 X/1",
                  b"a=ptime:5", b"a=ptime:10000", b"a=rtcp:65535", b"a=sendonly", b"a=recvonly",
                  b"a=inactive", b"c=IN IP4 0.0.0.0", b"c=IN IP6 ::1", b"m=video 3227 RTP/AVP 31",
                  b"m=audio @MEDIA+2@ RTP/SAVP 0", b"m=image 4004 udptl t38", b"a=", b"a=:"]


def sdp_port(rng, data):
    """The port of one m= line replaced (0 rejects, 65535 leaves no RTCP port, huge overflows)."""
    return re.sub(rb"(m=[a-z]+ )[^ \r\n]*", lambda m: m.group(1) + rng.choice(SDP_PORTS), data,
                  count=1)


def sdp_formats(rng, data):
    """The payload types of one m= line replaced, and an attribute or stream added."""
    data = re.sub(rb"(m=[a-z]+ [^ \r\n]* [^ \r\n]*)[^\r\n]*",
                  lambda m: m.group(1) + b" " + rng.choice(SDP_FORMATS), data, count=1)
    head, sep, body = data.partition(b"\r\n\r\n")
    if not body:
        return data
    body = body.rstrip(b"\r\n") + b"\r\n" + rng.choice(SDP_ATTRIBUTES) + b"\r\n"
    head = re.sub(rb"Content-Length:[^\r\n]*", b"Content-Length: %d" % len(body), head, count=1)
    return head + sep + body


def splice(rng, data):
    other = rng.choice([data, b"\r\n\r\n", b"\r\n", b"SIP/2.0 200 OK\r\n\r\n"])
    return data + other if rng.random() < 0.5 else other + data


def oversized(rng, data):
    size = rng.choice([65535, 65536, UDP_MAX, 70000, 200000])
    return data + b"x" * max(0, size - len(data))


MUTATIONS = (truncate, duplicate_header, drop_header, content_length, huge_header, junk, flip,
             wrong_cseq, unknown_method, nasty_value, line_endings, body_damage, sdp_port,
             sdp_formats, splice, oversized)


def case(seed: int, index: int, dialog: Ids | None, port: int, transport: str,
         media: int = 4000) -> tuple[str, bytes]:
    """Case `index` of `seed`: the template's name and the mutated bytes. In-dialog templates
    use `dialog` (the batch's call) when given; SDP offers `media` (and the next two ports)."""
    rng = random.Random(f"{seed}:{index}")
    name = rng.choice(TEMPLATE_NAMES)
    if name == "junk":
        return name, rng.randbytes(rng.choice([1, 16, 300, 2000]))
    branch = f"z9hG4bK-fz{seed}-{index}"
    aimed = name in IN_DIALOG and dialog is not None and rng.random() < 0.8
    if aimed:  # the batch's live call, with a CSeq above every earlier one
        ids = Ids(dialog.call_id, dialog.from_tag, dialog.to_tag, branch, port, transport,
                  cseq=10 + index, media=media)
    else:
        ids = Ids(f"fz-{seed}-{index}@{HOST}", f"f{index}", f"t{index}", branch, port, transport,
                  media=media)
    data = TEMPLATES[name](ids)
    if aimed and rng.random() < INTACT_SHARE:
        return name, data
    for _ in range(rng.choice([1, 1, 2, 3])):
        data = rng.choice(MUTATIONS)(rng, data)
    for mark, shift in ((MEDIA, 0), (MEDIA_1, 1), (MEDIA_2, 2)):
        data = data.replace(mark, b"%d" % (media + shift))
    return name, data


def sends_media_only_to_loopback(data: bytes) -> bool:
    """Whether every SDP connection address in `data` that is an IP address is loopback (or
    0.0.0.0, hold): a case never makes the stub send media off this machine."""
    for line in data.decode("utf-8", "replace").splitlines():
        parts = line.strip()[2:].split() if line.strip().startswith("c=") else []
        if len(parts) == 3:
            try:
                address = ipaddress.ip_address(parts[2].split("/")[0])
            except ValueError:
                continue
            if not (address.is_loopback or address.is_unspecified):
                return False
    return True


# ---- the live run ---------------------------------------------------------------------------
class _ErrorLog(logging.Handler):
    """Errors, and tracebacks logged at any level, of the stub's loggers."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[str] = []
        self.tracebacks = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.tracebacks += 1
        if record.levelno >= logging.ERROR or record.exc_info:
            self.records.append(f"{record.name}: {record.getMessage()}"[:500])


def _inet_inodes() -> set[str]:
    inodes = set()
    for table in ("udp", "udp6", "tcp", "tcp6"):
        try:
            lines = Path(f"/proc/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        inodes.update(line.split()[9] for line in lines if len(line.split()) > 9)
    return inodes


def descriptors() -> dict[str, int]:
    """This process's open file descriptors, and how many of them are INET sockets."""
    inet, fds = _inet_inodes(), 0
    sockets = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        fds += 1
        if target.startswith("socket:[") and target[8:-1] in inet:
            sockets += 1
    return {"fds": fds, "inet_sockets": sockets}


@dataclass
class FuzzReport:
    seed: int
    cases: int = 0
    udp_cases: int = 0
    tcp_cases: int = 0
    skipped_off_host: int = 0
    batches: int = 0
    crashes: int = 0
    errors: list[str] = field(default_factory=list)
    probes: int = 0
    probe_max_ms: float = 0.0
    hangs: int = 0
    fuzz_calls_answered: int = 0
    dialog_cases: int = 0
    reinvites_answered: int = 0
    calls_placed: int = 0
    calls_succeeded: int = 0
    malformed_counted: int = 0
    tracebacks: int = 0
    leaks: dict = field(default_factory=dict)
    leaked: int = 0
    duration_s: float = 0.0

    def to_json(self) -> dict:
        out = asdict(self)
        out["cases_per_s"] = round(self.cases / self.duration_s, 1) if self.duration_s else 0.0
        out["probe_max_ms"] = round(self.probe_max_ms, 1)
        out["duration_s"] = round(self.duration_s, 1)
        return out


class SipFuzzer:
    """Fuzzes a started `harness.stub.Stub` (UDP and TCP on `stub.sip_port`); places a real
    SIPp call every `calls_every` batches, over UDP and TCP in turn. Use as a context manager:
    every SIPp process is killed and every socket closed on exit."""

    def __init__(self, stub, seed: int, workdir: Path, calls_every: int = 40,
                 probe_timeout: float = 10.0, call_hold_ms: int = 800, settle_s: float = 75.0):
        self.stub, self.seed, self.workdir = stub, seed, Path(workdir)
        self.calls_every, self.probe_timeout, self.call_hold_ms = calls_every, probe_timeout, call_hold_ms
        self.settle_s = settle_s
        self.target = (HOST, stub.sip_port)
        self.report = FuzzReport(seed)
        self._sipp: list[subprocess.Popen] = []
        self._loop_errors: list[str] = []
        self._log = _ErrorLog()
        self._journal_seen = 0
        self._udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._udp.bind((HOST, 0))
        self._udp.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * 1024 * 1024)
        self._probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._probe.bind((HOST, 0))
        self._media = _media_sinks()
        self.media_port = self._media[0].getsockname()[1]
        self._dialog: Ids | None = None
        self._branches = itertools.count()

    def __enter__(self) -> "SipFuzzer":
        logging.getLogger("harness").addHandler(self._log)
        logging.getLogger("asyncio").addHandler(self._log)
        self.stub.run_in_loop(lambda: asyncio.get_running_loop().set_exception_handler(self._on_loop_error))
        return self

    def __exit__(self, *exc) -> None:
        for proc in self._sipp:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        self.stub.run_in_loop(lambda: asyncio.get_running_loop().set_exception_handler(None))
        logging.getLogger("harness").removeHandler(self._log)
        logging.getLogger("asyncio").removeHandler(self._log)
        self._udp.close()
        self._probe.close()
        for sink in self._media:
            sink.close()

    def _on_loop_error(self, loop, context: dict) -> None:
        self._loop_errors.append(f"{context.get('message')}: {context.get('exception')!r}"[:500])

    # ---- the run ----
    def run(self, cases: int, max_seconds: float) -> FuzzReport:
        """Send `cases` cases (fewer if `max_seconds` runs out), wait for the SIPp calls, let
        the stub settle and count what it still holds."""
        start, index, r = time.monotonic(), 0, self.report
        self._warm_up()
        while r.cases < cases and time.monotonic() - start < max_seconds:
            if r.batches % self.calls_every == 0:
                self._place_call("tcp" if (r.batches // self.calls_every) % 2 else "udp")
            transport = "TCP" if r.batches % TCP_SHARE == TCP_SHARE - 1 else "UDP"
            index = self._batch(index, min(BATCH_CASES, cases - r.cases), transport)
            r.batches += 1
            self._check()
            if r.hangs:
                break
        deadline = time.monotonic() + 45
        for proc in self._sipp:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        r.calls_succeeded = sum(1 for proc in self._sipp if proc.returncode == 0)
        self._probe_udp()
        self._check()
        self._count_leaks()
        r.tracebacks = self._log.tracebacks
        r.duration_s = time.monotonic() - start
        return r

    def _warm_up(self) -> None:
        """One real call first, so that what the stub keeps for its whole life (the media
        clock's timerfd, the handler's log) is open before the descriptors are counted."""
        self._place_call("udp")
        self._sipp[-1].wait(45)
        self._before = self._descriptors()

    def _descriptors(self) -> dict[str, int]:
        """The process's descriptors beside those of the warm handler workers (the two pipes
        each one is driven through), and its INET sockets."""
        workers = self.stub.resources()["handler_workers"]
        found = descriptors()
        return {"fds": found["fds"] - PIPES_PER_WORKER * workers,
                "inet_sockets": found["inet_sockets"], "handler_workers": workers}

    def _held(self) -> dict:
        stub = self.stub

        def count():
            held = stub.count_resources()
            held["sip_transactions"] = stub.udp.endpoint.active_transactions() + \
                stub.tcp.endpoint.active_transactions()
            held["tcp_connections"] = len(stub.tcp._connections)
            held["calls_left"] = [  # what a leak is, to find its case
                f"{ep.transport} {call.state} {call.invite.serialize()[:300]!r}"
                for ep in (stub.udp.endpoint, stub.tcp.endpoint) for call in ep._calls.values()]
            return held
        return stub.run_in_loop(count)

    def _count_leaks(self) -> None:
        """After the SIP timers have run out (at most `settle_s`): what the stub still holds,
        and the descriptors and INET sockets beyond those it had before the campaign."""
        kinds = ("dialogs", "media_sessions", "transactions", "tasks", "sip_transactions",
                 "tcp_connections")
        deadline = time.monotonic() + self.settle_s
        while True:
            held = self._held()
            if not any(held[k] for k in kinds) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        after = self._descriptors()
        leaks = {k: held[k] for k in kinds}
        if held["calls_left"]:
            leaks["calls_left"] = held["calls_left"][:5]
        leaks.update({f"{k}_before": v for k, v in self._before.items()})
        leaks.update({f"{k}_after": v for k, v in after.items()})
        self.report.leaks = leaks
        self.report.leaked = sum(held[k] for k in kinds) + sum(
            max(0, after[k] - self._before[k]) for k in ("fds", "inet_sockets"))

    def _batch(self, index: int, count: int, transport: str) -> int:
        port = self._udp.getsockname()[1]
        if transport == "UDP":
            self._open_dialog(port)
        payloads = []
        while len(payloads) < count:
            name, data = case(self.seed, index, self._dialog if transport == "UDP" else None, port,
                              transport, self.media_port)
            index += 1
            if self._dialog is not None and self._dialog.call_id.encode() in data:
                self.report.dialog_cases += 1
            if not sends_media_only_to_loopback(data):
                self.report.skipped_off_host += 1
                continue
            payloads.append(data[:UDP_MAX] if transport == "UDP" else data)
        while transport == "TCP" and not sends_media_only_to_loopback(b"".join(payloads)):
            payloads.pop()  # a line of SDP made of the ends of two cases on the stream
            self.report.skipped_off_host += 1
        if transport == "UDP":
            in_flight = 0
            for data in payloads:
                if in_flight and in_flight + len(data) > SYNC_BYTES:
                    self._probe_udp()
                    self._drain_udp()
                    in_flight = 0
                self._udp.sendto(data, self.target)
                in_flight += len(data)
            self.report.udp_cases += len(payloads)
            self._drain_udp()
            self._close_dialog()
            self._probe_udp()
            self._drain_udp()
        else:
            self._send_tcp(payloads)
            self.report.tcp_cases += len(payloads)
        self.report.cases += len(payloads)
        return index

    # ---- UDP: a dialog per batch, answers, cleanup, probes ----
    def _open_dialog(self, port: int) -> None:
        n = self.report.batches
        ids = Ids(f"fz-dialog-{self.seed}-{n}@{HOST}", f"d{n}", "", f"z9hG4bK-fzd{self.seed}-{n}", port,
                  "UDP", media=self.media_port)
        invite, self._dialog = TEMPLATES["INVITE"](ids), None
        deadline = time.monotonic() + self.probe_timeout
        while self._dialog is None and time.monotonic() < deadline:
            self._udp.sendto(invite, self.target)  # again after T1: it may have been lost
            resend = time.monotonic() + T1
            while self._dialog is None and time.monotonic() < resend:
                self._drain_udp(wait=0.05, dialog=ids)

    def _close_dialog(self) -> None:
        if self._dialog is not None:
            # the highest CSeq there is: in-dialog cases may have used any lower one
            bye = _request("BYE", replace(self._dialog, branch=self._branch()), MAX_CSEQ - 1)
            self._udp.sendto(bye, self.target)
            self._dialog = None

    def _drain_udp(self, wait: float = 0.0, dialog: Ids | None = None) -> None:
        """Read the stub's answers; ACK the 2xx to our INVITEs (and hang those up unless it is
        the dialog being opened)."""
        self._udp.settimeout(wait)  # 0: non-blocking
        try:
            while True:
                data = self._udp.recv(UDP_MAX)
                for reply in self._answer(data, "UDP", dialog):
                    self._udp.sendto(reply, self.target)
        except (BlockingIOError, socket.timeout):
            return

    def _branch(self) -> str:
        return f"z9hG4bK-fzc{self.seed}-{next(self._branches)}"

    def _answer(self, data: bytes, transport: str, dialog: Ids | None = None) -> list[bytes]:
        """The ACK for a 2xx to one of our INVITEs, and a BYE unless it opens `dialog`; the
        200 for a BYE of the stub's (as any UA answers it)."""
        try:
            resp = parse_message(data)
            number, method = resp.cseq
        except SipParseError:
            return []
        if isinstance(resp, SipRequest) and resp.method == "BYE":
            return [resp.reply(200).serialize()]
        if not isinstance(resp, SipResponse) or method != "INVITE" or not 200 <= resp.status < 300:
            return []
        port = self._udp.getsockname()[1]
        ack = _follow_up("ACK", resp, number, self._branch(), port, transport)
        if self._dialog is not None and resp.call_id == self._dialog.call_id:
            self.report.reinvites_answered += 1  # a re-INVITE of the batch's live call
            return [ack]
        if dialog is not None and resp.call_id == dialog.call_id:
            self._dialog = Ids(resp.call_id, (resp.headers.get("from") or "").rpartition(";tag=")[2],
                               (resp.headers.get("to") or "").rpartition(";tag=")[2],
                               self._branch(), port, transport)
            return [ack]
        self.report.fuzz_calls_answered += 1
        return [ack, _follow_up("BYE", resp, number + 1, self._branch(), port, transport)]

    def _probe_udp(self) -> None:
        n = self.report.probes
        ids = Ids(f"fz-probe-{self.seed}-{n}@{HOST}", "p", "", f"z9hG4bK-fzp{self.seed}-{n}",
                  self._probe.getsockname()[1], "UDP")
        options, sent = TEMPLATES["OPTIONS"](ids), time.monotonic()
        interval, answered = T1, False
        while not answered and time.monotonic() - sent < self.probe_timeout:
            self._probe.sendto(options, self.target)  # retransmitted as a UAC does (timer E)
            self._probe.settimeout(interval)
            try:
                while not answered:
                    data = self._probe.recv(UDP_MAX)
                    answered = ids.call_id.encode() in data and data.startswith(b"SIP/2.0 200")
            except socket.timeout:
                interval = min(2 * interval, 4.0)
        if not answered:
            self.report.hangs += 1
            self.report.errors.append(f"no answer to OPTIONS within {self.probe_timeout} s")
            return
        self.report.probes += 1
        self.report.probe_max_ms = max(self.report.probe_max_ms, (time.monotonic() - sent) * 1e3)

    # ---- TCP: one connection per batch; then an OPTIONS on a fresh one ----
    def _send_tcp(self, payloads: list[bytes]) -> None:
        conn = socket.create_connection(self.target, timeout=self.probe_timeout)
        replies = b""
        try:
            for data in payloads:
                try:
                    conn.sendall(data)
                except OSError:  # the stub closed a stream it could not frame: a new one
                    conn.close()
                    conn = socket.create_connection(self.target, timeout=self.probe_timeout)
            conn.settimeout(0.05)
            replies = _read_some(conn)
        finally:
            conn.close()
        self._hang_up_tcp(replies)
        self._probe_tcp()

    def _hang_up_tcp(self, replies: bytes) -> None:
        cleanup = [reply for message in StreamFramer().feed(replies)
                   for reply in self._answer(message, "TCP")]
        if cleanup:
            with socket.create_connection(self.target, timeout=self.probe_timeout) as conn:
                conn.sendall(b"".join(cleanup))
                conn.settimeout(0.2)
                _read_some(conn)

    def _probe_tcp(self) -> None:
        n = self.report.probes
        ids = Ids(f"fz-tprobe-{self.seed}-{n}@{HOST}", "p", "", f"z9hG4bK-fzt{self.seed}-{n}", 9, "TCP")
        sent = time.monotonic()
        with socket.create_connection(self.target, timeout=self.probe_timeout) as conn:
            conn.sendall(TEMPLATES["OPTIONS"](ids))
            framer, answered = StreamFramer(), False
            try:
                while not answered:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    answered = any(m.startswith(b"SIP/2.0 200") for m in framer.feed(chunk))
            except socket.timeout:
                pass
        if not answered:
            self.report.hangs += 1
            self.report.errors.append(f"no answer to OPTIONS over TCP within {self.probe_timeout} s")
            return
        self.report.probes += 1
        self.report.probe_max_ms = max(self.report.probe_max_ms, (time.monotonic() - sent) * 1e3)

    # ---- real calls and crash checks ----
    def _place_call(self, transport: str) -> None:
        cmd = [shutil.which("sipp") or "sipp", "-sn", "uac", "-s", "+14345550101", "-i", HOST, "-p", "0",
               "-m", "1", "-d", str(self.call_hold_ms), "-timeout", "30", "-timeout_error",
               f"{HOST}:{self.stub.sip_port}"]
        if transport == "tcp":
            cmd[1:1] = ["-t", "t1"]
        self._sipp.append(subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL, cwd=self.workdir))
        self.report.calls_placed += 1

    def _check(self) -> None:
        new, self._journal_seen = self.stub.journal_since(self._journal_seen)
        r = self.report
        r.malformed_counted = self.stub.malformed.total
        found = [f"internal_error: {e}"[:500] for e in JournalView(new).of(InternalError)]
        for errors in (self._loop_errors, self._log.records):  # appended to from the stub's thread
            n = len(errors)
            found += errors[:n]
            del errors[:n]
        r.crashes += len(found)
        r.errors += found[:max(0, MAX_ERRORS - len(r.errors))]


MEDIA_SINKS = 4  # the media port, RTCP, the odd-port case, a move (and its RTCP)


def _media_sinks() -> list[socket.socket]:
    """UDP sockets on four consecutive ports from an even one, in this lane's RTP block: the
    media the stub sends for the fuzzer's offers arrives (and is dropped) here."""
    from harness.run.setup import rtp_block
    base = rtp_block() + 300  # above the ports the stub itself may take in the lane
    for first in range(base, base + 96, MEDIA_SINKS):
        sinks = []
        try:
            for n in range(MEDIA_SINKS):
                sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sinks.append(sink)
                sink.bind((HOST, first + n))
                sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            return sinks
        except OSError:
            for sink in sinks:
                sink.close()
    raise OSError(f"no {MEDIA_SINKS} free consecutive UDP ports from {base}")


def _read_some(conn: socket.socket) -> bytes:
    """What arrives on `conn` until it is quiet for its timeout or closed (at most 4 MB)."""
    data = b""
    try:
        while len(data) < 4 * 1024 * 1024:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    return data


def stub_for_fuzzing(run_dir: Path):
    """The stub with the bundled update-prompt handler answering every number."""
    from harness.sma.model import SipMediaApplication, SipRule
    from harness.stub import Stub, StubConfig
    sma_id = "5f0e8c2a-6d1b-4c55-9a3e-2b7f1e0d9c41"
    profiles = ROOT / "sip_profiles"
    sma = SipMediaApplication(sma_id, str(profiles / "handlers" / "update_prompt.py"), name="update-prompt")
    return Stub(StubConfig([sma], [SipRule("rule-1", "ToPhoneNumber", "*", [(1, sma_id)])],
                           profiles / "bucket", run_dir=run_dir))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-seconds", type=float, default=900.0)
    parser.add_argument("--calls-every", type=int, default=40, help="batches between SIPp calls")
    args = parser.parse_args()
    if shutil.which("sipp") is None:
        sys.exit("sipp is not installed (Debian package sip-tester)")
    with tempfile.TemporaryDirectory() as tmp:
        with stub_for_fuzzing(Path(tmp)) as stub, \
                SipFuzzer(stub, args.seed, Path(tmp), args.calls_every) as fuzzer:
            report = fuzzer.run(args.cases, args.max_seconds)
    print(json.dumps(report.to_json(), indent=2))


if __name__ == "__main__":
    main()
