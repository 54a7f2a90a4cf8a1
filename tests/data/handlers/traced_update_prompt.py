"""The bundled update_prompt handler behind sip_harness.trace, as a user wraps a real Lambda."""
import importlib.util
from pathlib import Path

from sip_harness.trace import traced

_path = Path(__file__).resolve().parents[3] / "sip_profiles" / "handlers" / "update_prompt.py"
_spec = importlib.util.spec_from_file_location("update_prompt", _path)
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)

lambda_handler = traced(_module.lambda_handler)
