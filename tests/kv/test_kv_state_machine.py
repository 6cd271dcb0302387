"""KvStateMachine: revisions, put/delete/cas on value and revision, prefix listing, snapshots
(in memory and on disk), batches, and payloads that are no command."""
import os

import msgpack
import pytest

from openraft_fast._core.log import LogSlice
from openraft_fast._core.types import BLANK, MEMBERSHIP, NORMAL, LeaderId, LogId, Membership, Node
from openraft_fast.errors import InvalidArgument, InvalidArgumentType, StorageError
from openraft_fast.kv import KvItem, KvStateMachine, commands
from openraft_fast.storage import SnapshotStore

LEADER = LeaderId(1, 1)


def entries(start, payloads, kinds=None):
    return LogSlice(start, list(payloads), kinds, [(start, LEADER)])


async def apply(sm, *payloads):
    """Apply payloads as the next entries; returns the answers."""
    start = 1 if sm.applied is None else sm.applied.index + 1
    return await sm.apply(entries(start, payloads))


def test_put_get_revision_is_log_index(run):
    async def body():
        sm = KvStateMachine()
        assert await apply(sm, commands.put("a", "1"), commands.put("b", "2"), commands.put("a", "3")) == [1, 2, 3]
        assert sm.get("a") == KvItem("a", "3", 3)
        assert sm.get("b") == KvItem("b", "2", 2)
        assert sm.get("c") is None
        assert sm.applied == LogId(LEADER, 3)
        assert len(sm) == 2
    run(body())


def test_delete_answers_revision_and_whether_it_existed(run):
    async def body():
        sm = KvStateMachine()
        await apply(sm, commands.put("a", "1"))
        assert await apply(sm, commands.delete("a"), commands.delete("a")) == [(2, True), (3, False)]
        assert sm.get("a") is None
        assert sm.list() == []
    run(body())


def test_cas_on_value(run):
    async def body():
        sm = KvStateMachine()
        got = await apply(sm, commands.cas("k", None, "v1"),       # absent: set
                          commands.cas("k", None, "v2"),          # present: refused
                          commands.cas("k", "nope", "v2"),        # wrong value: refused
                          commands.cas("k", "v1", "v2"))          # right value: set
        assert got == [(True, 1, None), (False, 1, "v1"), (False, 1, "v1"), (True, 4, None)]
        assert sm.get("k") == KvItem("k", "v2", 4)
    run(body())


def test_cas_on_revision(run):
    async def body():
        sm = KvStateMachine()
        got = await apply(sm, commands.cas_revision("k", 5, "x"),   # absent has revision 0: refused
                          commands.cas_revision("k", 0, "v1"),       # absent: set at 2
                          commands.cas_revision("k", 1, "v2"),       # stale revision: refused
                          commands.cas_revision("k", 2, "v3"))       # current revision: set
        assert got == [(False, 0, None), (True, 2, None), (False, 2, "v1"), (True, 4, None)]
        assert sm.get("k") == KvItem("k", "v3", 4)
        await apply(sm, commands.delete("k"))
        assert await apply(sm, commands.cas_revision("k", 4, "v4")) == [(False, 0, None)]
    run(body())


def test_prefix_listing_in_key_order_with_limit(run):
    async def body():
        sm = KvStateMachine()
        await apply(sm, *(commands.put(k, k.upper()) for k in ["b/2", "a", "b/1", "b/10", "c", "b"]))
        assert [i.key for i in sm.list("b/")] == ["b/1", "b/10", "b/2"]
        assert [i.key for i in sm.list("b")] == ["b", "b/1", "b/10", "b/2"]
        assert [i.key for i in sm.list()] == ["a", "b", "b/1", "b/10", "b/2", "c"]
        assert sm.list("b/", limit=2) == [KvItem("b/1", "B/1", 3), KvItem("b/10", "B/10", 4)]
        assert sm.list("zz") == []
        # The listing follows later writes (new keys, deletes, a cas that creates a key).
        await apply(sm, commands.delete("b/1"), commands.put("b/0", "x"), commands.cas("b/3", None, "y"))
        assert [i.key for i in sm.list("b/")] == ["b/0", "b/10", "b/2", "b/3"]
    run(body())


def test_blank_membership_and_malformed_entries_change_nothing(run):
    async def body():
        sm = KvStateMachine()
        m = Membership({1, 2, 3}, {1: Node("a", {"http": "h1"}), 2: Node("b"), 3: Node("c")})
        payloads = [None, m, commands.put("a", "1"), b"\xc1", msgpack.packb([9, "a"]), msgpack.packb([1, 5, "v"]),
                    msgpack.packb([1, "a"]), msgpack.packb("text"), b""]
        kinds = bytes([BLANK, MEMBERSHIP] + [NORMAL] * 7)
        got = await sm.apply(entries(1, payloads, kinds))
        assert got == [None, None, 3, None, None, None, None, None, None]
        assert sm.list() == [KvItem("a", "1", 3)]
        assert sm.applied == LogId(LEADER, 9)
        assert sm.last_membership == (LogId(LEADER, 2), m)
    run(body())


def test_apply_many_batches_matches_one_by_one(run):
    async def body():
        cmds = []
        for i in range(300):
            k = f"k{i % 17}"
            cmds.append([commands.put(k, str(i)), commands.delete(k), commands.cas(k, str(i - 1), "c"),
                         commands.cas_revision(k, i, "r")][i % 4])
        batch, single = KvStateMachine(), KvStateMachine()
        a = await batch.apply(entries(1, cmds))
        b = []
        for i, c in enumerate(cmds):
            b.extend(await single.apply(entries(i + 1, [c])))
        assert a == b
        assert batch.list() == single.list()
        assert batch.applied == single.applied
    run(body())


def test_snapshot_round_trip_in_memory(run):
    async def body():
        sm = KvStateMachine()
        m = Membership({1, 2, 3})
        await sm.apply(entries(1, [m, commands.put("a", "1"), commands.put("b/c", "2")],
                               bytes([MEMBERSHIP, NORMAL, NORMAL])))
        snap = await sm.build_snapshot()
        assert snap.meta.last_log_id == LogId(LEADER, 3)
        other = KvStateMachine()
        await other.install_snapshot(snap.meta, snap.data)
        assert other.list() == sm.list()
        assert await other.applied_state() == (LogId(LEADER, 3), (LogId(LEADER, 1), m))
        assert (await other.get_current_snapshot()).data == snap.data
        # The installed state goes on applying from there.
        await other.apply(entries(4, [commands.put("a", "9")]))
        assert other.get("a") == KvItem("a", "9", 4)
        assert sm.get("a") == KvItem("a", "1", 2)
        assert (sm.snapshots_built, other.snapshots_installed) == (1, 1)
    run(body())


def test_a_large_snapshot_is_packed_in_slices_of_the_state_when_it_began(run):
    """Packing many keys lets the event loop run between slices (heartbeats and votes go on),
    and writes applied meanwhile are not in it: the snapshot is the state at its applied id."""
    import asyncio
    from openraft_fast.kv.state_machine import SNAPSHOT_FORMAT, SNAPSHOT_SLICE

    async def body():
        sm = KvStateMachine()
        n = SNAPSHOT_SLICE * 3 + 5
        await apply(sm, *[commands.put(f"k{i:06d}", f"v{i}") for i in range(n)])
        expected = msgpack.packb([SNAPSHOT_FORMAT, [[k, v, r] for k, v, r in sm.list()], sm.compacted_revision,
                                  [list(c) for c in sm.history], []])
        turns = 0
        writes = 0

        async def others():
            nonlocal turns, writes
            while True:
                turns += 1
                if writes < 3:          # a write applied while the snapshot is being packed
                    writes += 1
                    await apply(sm, commands.put(f"k{writes:06d}", "changed"), commands.put(f"new{writes}", "x"))
                await asyncio.sleep(0)

        task = asyncio.ensure_future(others())            # runs once build_snapshot first yields
        snap = await sm.build_snapshot()
        task.cancel()
        assert turns >= 3 and writes == 3                  # the loop ran, and wrote, while it packed
        assert snap.meta.last_log_id == LogId(LEADER, n)   # the state when it began...
        assert snap.data == expected                       # ...in the same bytes as one packb of it
        other = KvStateMachine()
        await other.install_snapshot(snap.meta, snap.data)
        assert other.get("k000001") == KvItem("k000001", "v1", 2) and other.get("new1") is None
        assert sm.get("k000001") == KvItem("k000001", "changed", n + 1)
    run(body())


def test_snapshot_on_disk_survives_a_restart(run, tmp_path):
    async def body():
        d = str(tmp_path / "snap")
        sm = KvStateMachine(d)
        m = Membership({1, 2}, {1: Node("r1", {"http": "h1"}), 2: Node("r2", {"http": "h2"})})
        await sm.apply(entries(1, [m, commands.put("x", "1"), commands.put("y", "2")],
                               bytes([MEMBERSHIP, NORMAL, NORMAL])))
        await sm.build_snapshot()
        await sm.apply(entries(4, [commands.put("z", "3")]))       # after the snapshot: not in it
        again = KvStateMachine(d)
        assert again.list() == [KvItem("x", "1", 2), KvItem("y", "2", 3)]
        applied, (mid, mem) = await again.applied_state()
        assert applied == LogId(LEADER, 3) and mid == LogId(LEADER, 1)
        assert mem == m and mem.get_node(1).data == {"http": "h1"}
        # An installed snapshot is written too (std-mode leader ids round-trip).
        std = LeaderId(7, 2, std=True)
        src = KvStateMachine()
        await src.apply(LogSlice(1, [commands.put("q", "w")], None, [(1, std)]))
        snap = await src.build_snapshot()
        await again.install_snapshot(snap.meta, snap.data)
        third = KvStateMachine(d)
        assert third.list() == [KvItem("q", "w", 1)]
        assert (await third.applied_state())[0] == LogId(std, 1)
        assert not [f for f in os.listdir(d) if f.endswith(".tmp")]
    run(body())


@pytest.mark.parametrize("damage", ["flip", "truncate", "magic"])
def test_a_corrupt_snapshot_file_is_refused(run, tmp_path, damage):
    async def body():
        d = str(tmp_path)
        sm = KvStateMachine(d)
        await apply(sm, commands.put("a", "1"))
        await sm.build_snapshot()
        path = SnapshotStore(d).file
        raw = bytearray(open(path, "rb").read())
        if damage == "flip":
            raw[-3] ^= 0x40
        elif damage == "truncate":
            raw = raw[:5]
        else:
            raw[0:8] = b"NOTASNAP"
        with open(path, "wb") as f:
            f.write(raw)
        with pytest.raises(StorageError, match="snapshot"):
            KvStateMachine(d)

    run(body())


def test_open_kv_storage_restarts_with_the_data(run, tmp_path):
    async def body():
        from openraft_fast.kv.state_machine import open_kv_storage
        log, sm = open_kv_storage(tmp_path / "n1")
        await apply(sm, commands.put("a", "1"))
        await sm.build_snapshot()
        await log.close()
        log2, sm2 = open_kv_storage(tmp_path / "n1")
        try:
            assert sm2.get("a") == KvItem("a", "1", 1)
            assert sorted(os.listdir(tmp_path / "n1")) == ["log", "snapshot"]
        finally:
            await log2.close()
    run(body())


def test_commands_check_their_arguments():
    with pytest.raises(InvalidArgumentType):
        commands.put(b"k", "v")
    with pytest.raises(InvalidArgumentType):
        commands.put("k", 5)
    with pytest.raises(InvalidArgument):
        commands.put("", "v")
    with pytest.raises(InvalidArgument):
        commands.delete("x" * (commands.MAX_KEY_BYTES + 1))
    with pytest.raises(InvalidArgument):
        commands.cas_revision("k", -1, "v")
    with pytest.raises(InvalidArgumentType):
        commands.cas_revision("k", True, "v")
    with pytest.raises(InvalidArgumentType):
        commands.cas("k", 3, "v")
    assert msgpack.unpackb(commands.cas("k", None, "v")) == [commands.CAS_VALUE, "k", None, "v"]


# ---------------------------------------------------------------------------------- model check
from hypothesis import given, settings, strategies as st  # noqa: E402

_keys = st.sampled_from(["a", "a/1", "a/2", "b", "ab"])
_vals = st.sampled_from(["", "x", "y"])
_cmd = st.one_of(
    st.tuples(st.just("put"), _keys, _vals),
    st.tuples(st.just("delete"), _keys),
    st.tuples(st.just("cas"), _keys, st.one_of(st.none(), _vals), _vals),
    st.tuples(st.just("casrev"), _keys, st.integers(0, 12), _vals),
)


def _model_apply(model, index, cmd):
    """The reference: a dict key -> (value, revision)."""
    op, key = cmd[0], cmd[1]
    cur = model.get(key)
    if op == "put":
        model[key] = (cmd[2], index)
        return index
    if op == "delete":
        model.pop(key, None)
        return (index, cur is not None)
    match = (cur is None and cmd[2] is None) or (cur is not None and cur[0] == cmd[2]) if op == "cas" else \
        (0 if cur is None else cur[1]) == cmd[2]
    if match:
        model[key] = (cmd[3], index)
        return (True, index, None)
    return (False, 0 if cur is None else cur[1], None if cur is None else cur[0])


def _encode(cmd):
    op = cmd[0]
    return {"put": lambda: commands.put(cmd[1], cmd[2]), "delete": lambda: commands.delete(cmd[1]),
            "cas": lambda: commands.cas(cmd[1], cmd[2], cmd[3]),
            "casrev": lambda: commands.cas_revision(cmd[1], cmd[2], cmd[3])}[op]()


@settings(max_examples=150, deadline=None)
@given(st.lists(_cmd, max_size=12), st.lists(_cmd, max_size=12), st.sampled_from(["", "a", "a/", "b"]))
def test_matches_a_dict_model_across_a_snapshot(first, second, prefix):
    import asyncio

    async def body():
        model = {}
        sm = KvStateMachine()
        answers = await sm.apply(entries(1, [_encode(c) for c in first])) if first else []
        assert answers == [_model_apply(model, i + 1, c) for i, c in enumerate(first)]
        snap = await sm.build_snapshot()
        restored = KvStateMachine()
        if snap.meta.last_log_id is not None:
            await restored.install_snapshot(snap.meta, snap.data)
        start = len(first) + 1
        for target in (sm, restored):
            m = dict(model)
            got = await target.apply(entries(start, [_encode(c) for c in second])) if second else []
            assert got == [_model_apply(m, start + i, c) for i, c in enumerate(second)]
            assert target.list(prefix) == [KvItem(k, v, r) for k, (v, r) in sorted(m.items()) if k.startswith(prefix)]
    asyncio.run(body())
