"""pytest plugin of sip-harness: fixtures for the stub, callers, captures and the API."""
from __future__ import annotations
