"""Fault injection for storage tests: an os module whose chosen calls fail (the durable stores
take it as `_os=`, e.g. `WalLogStore(path, _os=FaultyOs())`, `open_storage(path, _os=...)`)."""
import os


class FaultyOs:
    """The os module, with the calls named in `fail` raising OSError(errno)."""

    def __init__(self):
        self.fail = {}

    def __getattr__(self, name):
        f = getattr(os, name)

        def call(*a, **k):
            if name in self.fail:
                raise OSError(self.fail[name], os.strerror(self.fail[name]))
            return f(*a, **k)
        return call
