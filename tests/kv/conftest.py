"""Fixtures of the KV tests: the integration tests' `loop_kind` / `run` (every body on uvloop and
on stock asyncio, bounded in time), and `cluster_support` importable."""
import importlib.util
import pathlib
import sys

_INTEGRATION = pathlib.Path(__file__).resolve().parent.parent / "integration"
sys.path.insert(0, str(_INTEGRATION))

_spec = importlib.util.spec_from_file_location("integration_conftest", _INTEGRATION / "conftest.py")
_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_mod)
loop_kind = _mod.loop_kind
run = _mod.run
TEST_TIMEOUT = _mod.TEST_TIMEOUT
