"""Fixtures of the replicated-object tests: the integration suite's `loop_kind` / `run` (each test body
on a fresh uvloop and stock asyncio loop, bounded in time), loaded from its conftest."""
import importlib.util
import pathlib

_path = pathlib.Path(__file__).resolve().parent.parent / "integration" / "conftest.py"
_spec = importlib.util.spec_from_file_location("_integration_conftest", _path)
_integration = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_integration)

LOOPS = _integration.LOOPS
loop_kind = _integration.loop_kind
run = _integration.run
