"""The KV tests use the integration suite's cluster helpers (`cluster_support`); the `run` and
`loop_kind` fixtures come from tests/conftest.py."""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "integration"))
