"""The storage conformance suite (openraft_fast.testing.conformance) on the stores we ship,
under both event loops."""
import pytest

from openraft_fast.storage import MemLogStore, MemStateMachine, NoopStateMachine
from openraft_fast.testing.conformance import LogStoreSuite, StateMachineSuite


class _BothLoops:
    @pytest.fixture(autouse=True)
    def _pick_loop(self, loop_kind):
        self.use_uvloop = loop_kind == "uvloop"


class TestMemLogStore(_BothLoops, LogStoreSuite):
    def make_store(self):
        return MemLogStore()


class TestMemStateMachine(_BothLoops, StateMachineSuite):
    def make_state_machine(self):
        return MemStateMachine()

    async def assert_same_state(self, a, b):
        await super().assert_same_state(a, b)
        assert a.data == b.data
        assert a.other == b.other


class TestMemStateMachineOpaquePayloads(_BothLoops, StateMachineSuite):
    """Payloads that are not KV commands go to MemStateMachine.other and survive snapshots."""

    def make_state_machine(self):
        return MemStateMachine()

    def make_payload(self, i):
        return b"opaque-%d" % i

    async def assert_same_state(self, a, b):
        await super().assert_same_state(a, b)
        assert a.other == b.other and a.data == b.data == {}


class TestNoopStateMachine(_BothLoops, StateMachineSuite):
    """No application state: the round trips check the applied log id and membership only."""

    def make_state_machine(self):
        return NoopStateMachine()

    async def assert_same_state(self, a, b):
        assert await a.applied_state() == await b.applied_state()
