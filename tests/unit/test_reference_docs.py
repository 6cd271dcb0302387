"""The embedder's reference says what the code does: every Config field is documented (in
help(Config) and docs/configuration.md), Node, raft.trigger and Raft.wait are in help(), and
initialize, InitializeError and MemStateMachine's command helpers behave as documented."""
import asyncio
import dataclasses
import pathlib
import pydoc

import pytest

import openraft_fast as orf
from openraft_fast import Config, InitializeError, Node, Raft
from openraft_fast.network import LocalRouter
from openraft_fast.raft import Trigger
from openraft_fast.storage import MemLogStore, MemStateMachine
from openraft_fast.testing.conformance import leader, make_slice
from openraft_fast._core.types import NORMAL

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
FIELDS = [f.name for f in dataclasses.fields(Config)]


def _help(obj) -> str:
    return pydoc.render_doc(obj, renderer=pydoc.plaintext)


@pytest.mark.parametrize("name", FIELDS)
def test_every_config_field_is_documented_in_the_class(name):
    assert f"\n        {name}: " in Config.__doc__, f"Config.__doc__ has no entry for {name}"
    assert f"{name}: " in _help(Config)


@pytest.mark.parametrize("name", FIELDS)
def test_every_config_field_and_its_default_is_in_the_configuration_page(name):
    page = (ROOT / "docs" / "configuration.md").read_text()
    rows = [line for line in page.splitlines() if line.startswith(f"| `{name}` |")]
    assert len(rows) == 1, f"docs/configuration.md has {len(rows)} rows for {name}"
    default = getattr(Config(), name)
    shown = (f'"{default}"' if isinstance(default, str) else
             {64 * 1024 * 1024: "64 MiB", 3 * 1024 * 1024: "3 MiB"}.get(default, repr(default)))
    assert f"| {shown} |" in rows[0], f"the row of {name} does not show its default {shown}"


def test_node_documents_addr_and_data():
    doc = _help(Node)
    assert "addr:" in doc and "data:" in doc and "Free-form application data" in doc


def test_trigger_is_a_documented_read_only_property():
    assert isinstance(Raft.__dict__["trigger"], property)
    assert "trigger" in _help(Raft) and "transfer_leader" in Raft.trigger.__doc__
    for name in ("elect", "heartbeat", "snapshot", "purge_log", "transfer_leader"):
        assert getattr(Trigger, name).__doc__, f"Trigger.{name} has no docstring"
    assert Trigger.__doc__ and "raft.wait()" in Trigger.__doc__

    async def main():
        router = LocalRouter()
        raft = await Raft.start(1, Config(), router.factory(1), MemLogStore(), MemStateMachine())
        router.add(raft)
        try:
            assert isinstance(raft.trigger, Trigger) and raft.trigger is raft.trigger
            with pytest.raises(AttributeError):
                raft.trigger = None
            await raft.initialize({1: Node("n1")})
            await raft.wait(5).applied_index(1)
            await raft.trigger.snapshot()
            assert (await raft.wait(5).snapshot(1)).snapshot is not None
        finally:
            await raft.shutdown()
    asyncio.run(asyncio.wait_for(main(), 20))


def test_wait_with_no_timeout_waits_until_the_condition_holds():
    assert "None" in Raft.wait.__doc__ and "RaftMetrics" in Raft.wait.__doc__

    async def main():
        router = LocalRouter()
        raft = await Raft.start(1, Config(), router.factory(1), MemLogStore(), MemStateMachine())
        router.add(raft)
        try:
            waiting = asyncio.ensure_future(raft.wait(None).state(orf.ServerState.LEADER))
            await asyncio.sleep(0.3)            # longer than nothing; no bound means no Timeout
            assert not waiting.done()
            await raft.initialize([1])
            m = await waiting
            assert isinstance(m, orf.RaftMetrics) and m.state == orf.ServerState.LEADER
            with pytest.raises(orf.Timeout):
                await raft.wait(0.05).applied_index(1000)
        finally:
            await raft.shutdown()
    asyncio.run(asyncio.wait_for(main(), 20))


def test_initialize_refuses_an_initialized_node_also_after_a_restart():
    async def main():
        log, sm = MemLogStore(), MemStateMachine()
        router = LocalRouter()
        raft = await Raft.start(1, Config(), router.factory(1), log, sm)
        router.add(raft)
        assert raft.metrics.membership is None                  # pristine
        await raft.initialize({1: Node("n1")})
        with pytest.raises(InitializeError, match="already initialized"):
            await raft.initialize({1: Node("n1")})              # again: refused
        await raft.wait(5).state(orf.ServerState.LEADER)
        await raft.shutdown()

        router = LocalRouter()
        raft = await Raft.start(1, Config(), router.factory(1), log, sm)   # a restart from its stores
        router.add(raft)
        try:
            assert raft.metrics.membership is not None          # how a restart tells it is initialized
            with pytest.raises(InitializeError, match="already initialized"):
                await raft.initialize({1: Node("n1")})
            await raft.wait(5).state(orf.ServerState.LEADER)    # it leads again without it
        finally:
            await raft.shutdown()
    asyncio.run(asyncio.wait_for(main(), 20))


def test_initialize_on_every_pristine_node_with_the_same_set_is_harmless():
    async def main():
        cfg = Config(enable_elect=False)        # no election yet: every node is still pristine
        router = LocalRouter()
        rafts = {}
        for i in (1, 2, 3):
            rafts[i] = await Raft.start(i, cfg, router.factory(i), MemLogStore(), MemStateMachine())
            router.add(rafts[i])
        try:
            voters = {i: Node(f"n{i}") for i in (1, 2)}
            await rafts[1].initialize(voters)
            await rafts[2].initialize(voters)           # the same entry
            assert rafts[1].metrics.membership == rafts[2].metrics.membership
            assert rafts[1].metrics.last_log_id == rafts[2].metrics.last_log_id
            with pytest.raises(InitializeError, match="not a voter"):
                await rafts[3].initialize(voters)       # not among the voters
            assert rafts[3].metrics.membership is None   # and it changed nothing
            await rafts[1].trigger.elect()
            await rafts[1].wait(5).state(orf.ServerState.LEADER)
            await rafts[2].wait(5).current_leader(1)
        finally:
            for r in rafts.values():
                await r.shutdown(transfer=False)
    asyncio.run(asyncio.wait_for(main(), 20))


def test_initialize_and_its_error_document_the_restart():
    for doc in (Raft.initialize.__doc__, InitializeError.__doc__):
        assert "restart" in doc and "pristine" in doc


def test_mem_state_machine_commands():
    assert MemStateMachine.set_command("k", "v") == b"\x92\xa1k\xa1v"      # msgpack ["k", "v"]

    async def main():
        sm = MemStateMachine()
        payloads = [MemStateMachine.set_command("k", "v"), MemStateMachine.set_command("k", [1, 2]),
                    MemStateMachine.set_command(("a", 1), b"x"), MemStateMachine.delete_command("k"),
                    MemStateMachine.delete_command("k")]
        got = await sm.apply(make_slice(1, [(leader(1, 1), NORMAL, p) for p in payloads]))
        assert got == [None, "v", None, [1, 2], None]
        assert sm.data == {("a", 1): b"x"} and sm.other == []
    asyncio.run(main())


def test_the_getting_started_example_writes_no_byte_literal():
    page = (ROOT / "docs" / "getting-started.md").read_text()
    assert "MemStateMachine.set_command(" in page
    for text in (page, (ROOT / "README.md").read_text()):
        assert 'b"\\x' not in text
