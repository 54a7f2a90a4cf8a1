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
from .recordings import CLOCK_RATE

MAX_CALLS = 4  # PJSUA_MAX_CALLS of the pjsua2-python wheel; more is silently capped
SUPPORTED_CODECS = ("PCMU", "PCMA")
TRANSPORTS = {"udp": pj.PJSIP_TRANSPORT_UDP, "tcp": pj.PJSIP_TRANSPORT_TCP,
              "tls": pj.PJSIP_TRANSPORT_TLS}
#: pjsip prints every SIP message it sends or receives at this level (``--end msg--``).
MESSAGE_LOG_LEVEL = 4
SRTP_SUITE = "AES_CM_128_HMAC_SHA1_80"
#: Where a worker's RTP ports are when its caller names none: below the runs' RTP blocks
#: (10000+), one share per lane, MEDIA_PORTS for each worker (an RTP/RTCP pair per call)
MEDIA_BASE, MEDIA_LIMIT = 4000, 10000
MEDIA_PORTS = 2 * MAX_CALLS * 2


def create_endpoint(host: str, transport: str, codecs: list[str], log_level: int,
                    log_file: str, tls: dict | None = None,
                    log_writer: pj.LogWriter | None = None) -> tuple[pj.Endpoint, int, int]:
    """Start the process's single Endpoint; return it, its SIP transport id and port.

    tls: for the "tls" transport, ``{"ca_file": PEM or None, "certificate", "private_key"}``;
        with a CA file the server's certificate is verified against it (TLS 1.2).
    log_writer: receives pjsip's log lines up to MESSAGE_LOG_LEVEL (the SIP messages).
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
    cfg.logConfig.level = max(log_level, MESSAGE_LOG_LEVEL if log_writer else 0)
    cfg.logConfig.consoleLevel = MESSAGE_LOG_LEVEL if log_writer else 0
    cfg.logConfig.filename = log_file if log_level > 0 else ""
    if log_writer is not None:
        cfg.logConfig.writer = log_writer
    cfg.medConfig.sndAutoCloseTime = -1
    cfg.medConfig.noVad = True
    cfg.medConfig.clockRate = CLOCK_RATE
    cfg.medConfig.sndClockRate = CLOCK_RATE
    cfg.medConfig.ptime = 20
    ep.libInit(cfg)
    transport_cfg = pj.TransportConfig()
    transport_cfg.boundAddress = host
    if transport == "tls":
        _tls_settings(transport_cfg.tlsConfig, tls or {})
    transport_id = ep.transportCreate(TRANSPORTS[transport], transport_cfg)
    port = int(ep.transportGetInfo(transport_id).localName.rsplit(":", 1)[1])
    ep.audDevManager().setNullDev()
    ep.libStart()
    _keep_only_codecs(ep, codecs)
    return ep, transport_id, port


def _tls_settings(tls_cfg: pj.TlsConfig, tls: dict) -> None:
    tls_cfg.method = pj.PJSIP_TLSV1_2_METHOD
    if tls.get("ca_file"):
        tls_cfg.CaListFile = tls["ca_file"]
        tls_cfg.verifyServer = True
    if tls.get("certificate"):
        tls_cfg.certFile, tls_cfg.privKeyFile = tls["certificate"], tls["private_key"]


def account_config(id_uri: str, host: str, transport_id: int, srtp: bool = False,
                   credentials: list[dict] = (), media_ports: list[int] | None = None) -> pj.AccountConfig:
    """A registration-less account on ``transport_id`` whose SDP and headers carry ``host``.

    srtp: offer and require SRTP keyed by SDES (RTP/SAVP, AES_CM_128_HMAC_SHA1_80 only).
    credentials: ``{"username", "password", "realm"}`` answered to a digest challenge
        (401/407) of the calls placed; realm "*" answers any realm.
    media_ports: [low, high] for the calls' RTP ports (pjsua2 takes even ports from low);
        without them, free ports of this process's lane (`free_media_ports`).
    """
    cfg = pj.AccountConfig()
    cfg.idUri = id_uri
    cfg.sipConfig.transportId = transport_id
    cfg.mediaConfig.transportConfig.boundAddress = host
    media_ports = media_ports or free_media_ports(host)
    if media_ports:
        cfg.mediaConfig.transportConfig.port = media_ports[0]
        cfg.mediaConfig.transportConfig.portRange = media_ports[1] - media_ports[0]
    if srtp:
        cfg.mediaConfig.srtpUse = pj.PJMEDIA_SRTP_MANDATORY
        cfg.mediaConfig.srtpSecureSignaling = 0
        cfg.mediaConfig.srtpOpt.keyings.clear()
        cfg.mediaConfig.srtpOpt.keyings.append(pj.PJMEDIA_SRTP_KEYING_SDES)
        cfg.mediaConfig.srtpOpt.cryptos.clear()
        crypto = pj.SrtpCrypto()
        crypto.name = SRTP_SUITE
        cfg.mediaConfig.srtpOpt.cryptos.append(crypto)
    for cred in credentials:
        cfg.sipConfig.authCreds.append(pj.AuthCredInfo(
            "digest", cred.get("realm") or "*", cred["username"], 0, cred["password"]))
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


def free_media_ports(host: str, attempts: int = 32) -> list[int] | None:
    """[low, high] of MEDIA_PORTS ports no socket holds, in this process's lane (None: none
    free, pjsua2 then picks from 4000).

    pjsua2 binds RTP with SO_REUSEADDR, so on its own it shares port 4000 with any other
    pjsua2 process on the machine, after which a call neither sends nor gets its own audio.
    A port bound here without SO_REUSEADDR fails on any holder, so free ones are found.
    """
    share = (MEDIA_LIMIT - MEDIA_BASE) // LANES // MEDIA_PORTS * MEDIA_PORTS
    start = MEDIA_BASE + lane() * share
    mine = [start + MEDIA_PORTS * random.randrange(share // MEDIA_PORTS) for _ in range(attempts)]
    anywhere = range(MEDIA_BASE, MEDIA_LIMIT - MEDIA_PORTS + 1, MEDIA_PORTS)  # a full lane (load)
    base = next((b for b in (*mine, *anywhere) if _all_free(host, range(b, b + MEDIA_PORTS))), None)
    return None if base is None else [base, base + MEDIA_PORTS]


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
