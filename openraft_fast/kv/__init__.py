"""The replicated key-value service: state machine, HTTP server, client, metrics."""
from openraft_fast.kv.errors import KvError, KvOutcomeUnknown, KvRequestError, KvUnavailable
from openraft_fast.kv.state_machine import KvItem, KvStateMachine

__all__ = ["KvClient", "KvError", "KvItem", "KvOutcomeUnknown", "KvRequestError", "KvServer", "KvStateMachine",
           "KvUnavailable"]


def __getattr__(name):
    # aiohttp and prometheus-client are the `kv` extra: import them only when asked for.
    if name == "KvServer":
        from openraft_fast.kv.server import KvServer
        return KvServer
    if name == "KvClient":
        from openraft_fast.kv.client import KvClient
        return KvClient
    raise AttributeError(f"module 'openraft_fast.kv' has no attribute {name!r}")
