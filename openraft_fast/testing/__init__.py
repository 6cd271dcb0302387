"""Test support for openraft_fast: the deterministic simulator lives in `openraft_fast.testing.sim`."""
