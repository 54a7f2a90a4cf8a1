"""The two tiers: `unit/` (the protocol cores, the SMA model, the API over the model, the wire
readers, the profile language; no stub, no system tool, no root) and `integration/` (the stub,
pjsua2 callers, captures, SIPp, tshark, Kamailio, containers; its own conftest has the stub's
fixtures). This conftest imports no stub."""
from support import PROFILES, ROOT, SMA_ID, TEST_DATA, free_port, require_capture, require_tool, wait_until

__all__ = ["PROFILES", "ROOT", "SMA_ID", "TEST_DATA", "free_port", "require_capture", "require_tool",
           "wait_until"]
