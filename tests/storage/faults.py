"""Fault injection for the storage tests: the os module with chosen calls failing."""
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
