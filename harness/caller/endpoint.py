"""pjsua2 set-up for one caller worker: the Endpoint, its SIP transport and accounts.

Every setting here answers a measured pitfall (docs: ``design/PITFALLS.md``): null audio
device with a bridge clock that never stops, no VAD, transports bound to the test host with
NAT rewrites off, G.711 only at 8 kHz with 20 ms packets, and all callbacks on the one
thread that polls ``libHandleEvents``.
"""

import random
import socket

import pjsua2 as pj

from ..lanes import LANES, lane

MAX_CALLS = 4  # PJSUA_MAX_CALLS of the pjsua2-python wheel; more is silently capped
SUPPORTED_CODECS = ("PCMU", "PCMA")
TRANSPORTS = {"udp": pj.PJSIP_TRANSPORT_UDP, "tcp": pj.PJSIP_TRANSPORT_TCP}
#: RTP and RTCP ports of caller workers: below the stubs' RTP blocks (10000+), one share of
#: them per lane, MEDIA_PORTS for each worker (an RTP/RTCP pair per call)
MEDIA_BASE, MEDIA_LIMIT = 4000, 10000
MEDIA_PORTS = 2 * MAX_CALLS * 2


def create_endpoint(host: str, transport: str, codecs: list[str], log_level: int,
                    log_file: str) -> tuple[pj.Endpoint, int, int]:
    """Start the process's single Endpoint; return it, its SIP transport id and port.

    The caller must have redirected fd 1 already: ``libCreate()`` prints a few lines there
    whatever the log level.
    """
    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    cfg.uaConfig.maxCalls = MAX_CALLS
    cfg.uaConfig.userAgent = "sip-harness caller (pjsua2)"
    cfg.logConfig.level = log_level
    cfg.logConfig.consoleLevel = 0
    cfg.logConfig.filename = log_file if log_level > 0 else ""
    cfg.medConfig.sndAutoCloseTime = -1
    cfg.medConfig.noVad = True
    cfg.medConfig.clockRate = 8000
    cfg.medConfig.sndClockRate = 8000
    cfg.medConfig.ptime = 20
    ep.libInit(cfg)
    transport_cfg = pj.TransportConfig()
    transport_cfg.boundAddress = host
    transport_id = ep.transportCreate(TRANSPORTS[transport], transport_cfg)
    port = int(ep.transportGetInfo(transport_id).localName.rsplit(":", 1)[1])
    ep.audDevManager().setNullDev()
    ep.libStart()
    _keep_only_codecs(ep, codecs)
    return ep, transport_id, port


def media_ports(host: str, attempts: int = 32) -> int:
    """The first of MEDIA_PORTS free ports for this worker's RTP, in its lane (0: pjsua's own
    choice when none is free).

    pjsua binds its RTP sockets with SO_REUSEADDR, so on its own it shares a port with another
    pjsua process on the machine (from 4000 up, each of them), and then neither call sends
    nor receives its own audio. Each worker therefore starts from ports no socket holds
    (bound here without SO_REUSEADDR, which fails on any holder), in a lane of its own.
    """
    share = (MEDIA_LIMIT - MEDIA_BASE) // LANES // MEDIA_PORTS * MEDIA_PORTS
    start = MEDIA_BASE + lane() * share
    mine = [start + MEDIA_PORTS * random.randrange(share // MEDIA_PORTS) for _ in range(attempts)]
    anywhere = range(MEDIA_BASE, MEDIA_LIMIT - MEDIA_PORTS + 1, MEDIA_PORTS)  # a full lane (load)
    return next((base for base in (*mine, *anywhere)
                 if _all_free(host, range(base, base + MEDIA_PORTS))), 0)


def _all_free(host: str, ports: range) -> bool:
    held = []
    try:
        for port in ports:
            sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
            held.append(sock)
            sock.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        for sock in held:
            sock.close()


def account_config(id_uri: str, host: str, transport_id: int) -> pj.AccountConfig:
    """A registration-less account on ``transport_id`` whose SDP and headers carry ``host``,
    with its RTP ports from `media_ports`."""
    cfg = pj.AccountConfig()
    cfg.idUri = id_uri
    cfg.sipConfig.transportId = transport_id
    cfg.mediaConfig.transportConfig.boundAddress = host
    base = media_ports(host)
    if base:
        cfg.mediaConfig.transportConfig.port = base
        cfg.mediaConfig.transportConfig.portRange = MEDIA_PORTS
    cfg.natConfig.sdpNatRewriteUse = 0
    cfg.natConfig.contactRewriteUse = 0
    cfg.natConfig.viaRewriteUse = 0
    return cfg


def _keep_only_codecs(ep: pj.Endpoint, codecs: list[str]) -> None:
    """Offer ``codecs`` in the given order and disable every other codec.

    telephone-event is not a codec to pjsua: it is offered for each clock rate in use.
    """
    wanted = {name: 255 - rank for rank, name in enumerate(codecs)}
    for codec in ep.codecEnum2():
        name = codec.codecId.split("/", 1)[0]
        ep.codecSetPriority(codec.codecId, wanted.get(name, 0))
