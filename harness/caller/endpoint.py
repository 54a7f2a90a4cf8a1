"""pjsua2 set-up for one caller worker: the Endpoint, its SIP transport and accounts.

Every setting here answers a measured pitfall (docs: ``design/PITFALLS.md``): null audio
device with a bridge clock that never stops, no VAD, transports bound to the test host with
NAT rewrites off, G.711 only at 8 kHz with 20 ms packets, and all callbacks on the one
thread that polls ``libHandleEvents``.
"""

import pjsua2 as pj

MAX_CALLS = 4  # PJSUA_MAX_CALLS of the pjsua2-python wheel; more is silently capped
SUPPORTED_CODECS = ("PCMU", "PCMA")
TRANSPORTS = {"udp": pj.PJSIP_TRANSPORT_UDP, "tcp": pj.PJSIP_TRANSPORT_TCP}


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


def account_config(id_uri: str, host: str, transport_id: int) -> pj.AccountConfig:
    """A registration-less account on ``transport_id`` whose SDP and headers carry ``host``."""
    cfg = pj.AccountConfig()
    cfg.idUri = id_uri
    cfg.sipConfig.transportId = transport_id
    cfg.mediaConfig.transportConfig.boundAddress = host
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
