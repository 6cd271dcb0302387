"""Storage conformance suite: run the LogStore / StateMachine contracts on your own store.

Subclass under pytest (the class name must start with ``Test`` so pytest collects it)::

    from openraft_fast.testing.conformance import LogStoreSuite, StateMachineSuite

    class TestMyLogStore(LogStoreSuite):
        def make_store(self):
            return MyLogStore(self.new_path())        # a fresh, empty store

        def reopen_store(self, store):                # optional: a durable store
            store.close()
            return MyLogStore(store.path)             # must see everything made durable

    class TestMyStateMachine(StateMachineSuite):
        def make_state_machine(self):
            return MyStateMachine(self.new_path())

        def make_payload(self, i):                    # optional: a command your SM understands
            return encode_set(f"k{i % 5}", i)

        async def assert_same_state(self, a, b):      # optional: compare application state
            await super().assert_same_state(a, b)
            assert a.table == b.table

No pytest-asyncio is needed: every test is a plain function that runs its coroutine on a
fresh event loop (uvloop when installed; set ``use_uvloop = False`` for stock asyncio),
bounded by ``timeout`` seconds. The factories (``make_store``, ``make_state_machine``,
``reopen_store``) run inside that loop and may be ``async def``; ``close_store`` /
``close_state_machine`` run at the end of every test.

Hooks and knobs (class attributes or methods to override):

- ``timeout``: seconds one test may take (default 10).
- ``flush_timeout``: seconds to wait for ``append``'s ``on_flushed`` (default 5).
- ``leader_id_modes``: ``("adv", "std")`` by default; drop ``"std"`` if your store is never
  used with ``Config.leader_id_mode="std"``.
- ``self.tmp_path`` (pytest's ``tmp_path``) and ``self.new_path()`` (a fresh sub-directory
  per call) for stores that live on disk.
"""
from __future__ import annotations

import asyncio
import inspect
import itertools
import random
import threading
from typing import Any, List, Optional, Sequence

import msgpack
import pytest

from openraft_fast import _aio
from openraft_fast._core.log import LogBuffer, LogSlice
from openraft_fast._core.messages import SnapshotMeta
from openraft_fast._core.types import BLANK, MEMBERSHIP, NORMAL, Entry, LeaderId, LogId, Membership, Node, Vote
from openraft_fast.storage.base import LogStore, Snapshot, StateMachine

__all__ = ["LogStoreSuite", "StateMachineSuite", "leader", "log_id", "make_slice"]

_KIND_NAMES = {NORMAL: "normal", BLANK: "blank", MEMBERSHIP: "membership"}


# ---------------------------------------------------------------------- entry builders
def leader(term: int, node: Optional[int], std: bool = False) -> LeaderId:
    """A leader id (advanced mode unless `std`)."""
    return LeaderId(term, node, std=std)


def log_id(term: int, node: Optional[int], index: int, std: bool = False) -> LogId:
    return LogId(LeaderId(term, node, std=std), index)


def make_slice(start: int, items: Sequence[tuple]) -> LogSlice:
    """Entries start, start+1, ... from (LeaderId, kind, payload) tuples."""
    return LogSlice.from_entries([Entry(LogId(lid, start + i), payload, kind)
                                  for i, (lid, kind, payload) in enumerate(items)])


def _normal_slice(start: int, n: int, lid: LeaderId, tag: str = "e") -> LogSlice:
    return make_slice(start, [(lid, NORMAL, f"{tag}{start + i}".encode()) for i in range(n)])


def _describe(entry: Entry) -> str:
    return f"{entry.log_id} {_KIND_NAMES.get(entry.kind, entry.kind)}"


def assert_entries_equal(got: Any, want: LogSlice, what: str = "entries") -> None:
    """`got` (a LogSlice read back from a store) holds exactly `want`, byte for byte."""
    assert isinstance(got, LogSlice), f"{what}: expected a LogSlice, got {type(got).__name__}"
    assert (got.start, got.stop) == (want.start, want.stop), (
        f"{what}: got entries [{got.start}, {got.stop}), expected [{want.start}, {want.stop})")
    for g, w in zip(got.entries(), want.entries()):
        assert g.log_id == w.log_id, f"{what}: entry {w.index} has log id {g.log_id}, expected {w.log_id}"
        assert g.log_id.leader_id.std == w.log_id.leader_id.std, (
            f"{what}: entry {w.index}: leader-id mode changed (std={g.log_id.leader_id.std})")
        assert g.kind == w.kind, (
            f"{what}: entry {w.index} is {_KIND_NAMES.get(g.kind, g.kind)}, expected {_KIND_NAMES[w.kind]}")
        if w.kind == NORMAL:
            assert isinstance(g.payload, (bytes, bytearray, memoryview)), (
                f"{what}: entry {w.index} payload is {type(g.payload).__name__}, expected bytes")
            assert bytes(g.payload) == w.payload, (
                f"{what}: entry {w.index} payload differs ({len(bytes(g.payload))} vs {len(w.payload)} bytes)")
        elif w.kind == MEMBERSHIP:
            assert isinstance(g.payload, Membership), f"{what}: entry {w.index} is not a Membership"
            assert g.payload == w.payload, f"{what}: entry {w.index}: {g.payload!r} != {w.payload!r}"
            assert g.payload.configs == w.payload.configs
            assert g.payload.nodes == w.payload.nodes
        else:
            assert g.payload is None, f"{what}: blank entry {w.index} has payload {g.payload!r}"


async def _maybe_await(value):
    if inspect.isawaitable(value):
        return await value
    return value


def _as_test(fn):
    """Turn `async def test_x(self)` into a plain test that runs it on a fresh loop."""
    def test(self):
        self.run_async(fn(self))
    test.__name__ = fn.__name__
    test.__qualname__ = fn.__qualname__
    test.__doc__ = fn.__doc__
    test.__module__ = fn.__module__
    return test


class _AsyncSuite:
    timeout: float = 10.0
    use_uvloop: Optional[bool] = None

    @pytest.fixture(autouse=True)
    def _conformance_tmp_path(self, tmp_path):
        self.tmp_path = tmp_path
        self._paths = itertools.count(1)

    def new_path(self):
        """A fresh, existing directory under pytest's tmp_path (one per call)."""
        base = getattr(self, "tmp_path", None)
        if base is None:
            import tempfile
            from pathlib import Path
            return Path(tempfile.mkdtemp(prefix="openraft-conformance-"))
        if not hasattr(self, "_paths"):
            self._paths = itertools.count(1)
        p = base / f"store{next(self._paths)}"
        p.mkdir()
        return p

    def run_async(self, coro):
        """Run `coro` on a fresh event loop, bounded by `self.timeout`."""
        timeout = self.timeout

        async def bounded():
            try:
                return await asyncio.wait_for(coro, timeout)
            except asyncio.TimeoutError:
                raise AssertionError(f"conformance test did not finish within {timeout}s") from None

        return _aio.run(bounded(), use_uvloop=self.use_uvloop)


# ---------------------------------------------------------------------- log store
class LogStoreSuite(_AsyncSuite):
    """The LogStore contract (openraft_fast.storage.base.LogStore). Override `make_store`."""

    flush_timeout: float = 5.0
    leader_id_modes: Sequence[str] = ("adv", "std")

    def make_store(self) -> LogStore:
        """A fresh, empty log store (may be async)."""
        raise NotImplementedError("override make_store() to return a fresh LogStore")

    def reopen_store(self, store: LogStore):
        """The store as a restarted process would open it (may be async): release `store`
        and open what it made durable. The default returns the same object, which is right
        for a memory store. Tests call it only after every on_flushed has been called."""
        return store

    def close_store(self, store: LogStore):
        """Release a store at the end of a test (may be async)."""
        return None

    # helpers --------------------------------------------------------------------------
    async def _with_store(self, body):
        store = await _maybe_await(self.make_store())
        assert isinstance(store, LogStore), f"make_store() returned {type(store).__name__}, not a LogStore"
        self._open = [store]
        try:
            await body(store)
        finally:
            for s in reversed(self._open):
                await _maybe_await(self.close_store(s))

    async def reopen(self, store: LogStore) -> LogStore:
        new = await _maybe_await(self.reopen_store(store))
        if new is not store:
            # reopen_store released the old store (as a process exit would).
            if store in self._open:
                self._open.remove(store)
            self._open.append(new)
        return new

    async def append(self, store: LogStore, entries: LogSlice, wait: bool = True) -> "asyncio.Future":
        """store.append(entries, on_flushed); with `wait`, await on_flushed (bounded)."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        calls = []

        def on_flushed():
            calls.append(threading.get_ident())
            if not fut.done():
                fut.set_result(len(calls))

        fut.calls = calls  # type: ignore[attr-defined]
        ret = store.append(entries, on_flushed)
        assert not inspect.isawaitable(ret), (
            "append() must be a plain method (it returned an awaitable, so it never ran); "
            "signal durability through on_flushed")
        if wait:
            await self.flushed(fut)
        return fut

    async def flushed(self, fut: "asyncio.Future") -> None:
        try:
            await asyncio.wait_for(asyncio.shield(fut), self.flush_timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"on_flushed was not called within {self.flush_timeout}s of append()") from None

    async def assert_state(self, store: LogStore, purged: Optional[LogId], last: Optional[LogId]) -> None:
        st = await store.get_log_state()
        assert st.last_purged_log_id == purged, f"last_purged_log_id is {st.last_purged_log_id}, expected {purged}"
        assert st.last_log_id == last, f"last_log_id is {st.last_log_id}, expected {last}"

    async def assert_log(self, store: LogStore, model: LogBuffer, what: str = "log") -> None:
        """get_log_state, every range of get_log_entries and read_log agree with `model`."""
        await self.assert_state(store, model.purged, model.last_log_id)
        first, last = model.first_index, model.last_index
        if last >= first:
            assert_entries_equal(await store.get_log_entries(first, last + 1), model.slice(first, last + 1),
                                 f"{what}: get_log_entries({first}, {last + 1})")
            # A sample of sub-ranges, including single entries and empty ranges at both ends.
            for a in sorted({first, first + 1, (first + last) // 2, last}):
                if first <= a <= last:
                    for b in sorted({a, a + 1, min(last + 1, a + 3), last + 1}):
                        got = await store.get_log_entries(a, b)
                        assert len(got) == b - a, f"{what}: get_log_entries({a}, {b}) returned {len(got)} entries"
                        if b > a:
                            assert_entries_equal(got, model.slice(a, b), f"{what}: get_log_entries({a}, {b})")
        buf = await store.read_log()
        assert isinstance(buf, LogBuffer), f"read_log() returned {type(buf).__name__}, not a LogBuffer"
        assert buf.purged == model.purged, f"{what}: read_log().purged is {buf.purged}, expected {model.purged}"
        assert (buf.first_index, buf.last_index) == (first, last), (
            f"{what}: read_log() holds [{buf.first_index}, {buf.last_index}], expected [{first}, {last}]")
        assert buf.last_log_id == model.last_log_id
        if last >= first:
            assert_entries_equal(buf.slice(first, last + 1), model.slice(first, last + 1), f"{what}: read_log()")

    # tests ----------------------------------------------------------------------------
    @_as_test
    async def test_empty_store(self):
        """A new store: no purged id, no last log id, no vote, no committed, an empty log."""
        async def body(store):
            st = await store.get_log_state()
            assert tuple(st) == (None, None), f"get_log_state() of an empty store is {st}"
            assert await store.read_vote() is None
            assert await store.read_committed() is None
            await self.assert_log(store, LogBuffer(), "empty store")
        await self._with_store(body)

    @_as_test
    async def test_save_and_read_vote(self):
        """save_vote is durable on return; read_vote gives back the last vote saved."""
        async def body(store):
            votes = [Vote.new(1, 1), Vote.new(1, 1, committed=True), Vote.new(2, 3), Vote.new(5, 2, committed=True)]
            for v in votes:
                ret = await store.save_vote(v)
                assert ret is None
                got = await store.read_vote()
                assert isinstance(got, Vote), f"read_vote() returned {type(got).__name__}"
                assert got == v and got.committed == v.committed, f"read_vote() is {got!r}, saved {v!r}"
            store = await self.reopen(store)
            got = await store.read_vote()
            assert got == votes[-1] and got.committed, f"after reopen read_vote() is {got!r}, saved {votes[-1]!r}"
        await self._with_store(body)

    @_as_test
    async def test_std_mode_vote_round_trip(self):
        """A std-mode vote (one leader per term) keeps its mode through the store."""
        if "std" not in self.leader_id_modes:
            pytest.skip("store not used in std leader-id mode")

        async def body(store):
            v = Vote.new(7, 2, committed=True, std=True)
            await store.save_vote(v)
            for s in (store, await self.reopen(store)):
                got = await s.read_vote()
                assert got == v and got.leader_id.std and got.committed, f"read_vote() is {got!r}, saved {v!r}"
        await self._with_store(body)

    @_as_test
    async def test_save_and_read_committed(self):
        """save_committed is a plain (non-blocking) call; read_committed returns the last id
        saved, or None for a store that does not keep it."""
        async def body(store):
            saved = [log_id(1, 1, 3), log_id(1, 1, 7), log_id(2, 2, 9)]
            await self.append(store, make_slice(1, [(leader(1, 1), NORMAL, b"x")] * 7))
            await self.append(store, make_slice(8, [(leader(2, 2), NORMAL, b"y")] * 2))
            for c in saved:
                ret = store.save_committed(c)
                assert not inspect.isawaitable(ret), (
                    "save_committed() must be a plain method (it returned an awaitable, so it never ran)")
                got = await store.read_committed()
                assert got is None or got == c, f"read_committed() is {got!r} after saving {c!r}"
            got = await (await self.reopen(store)).read_committed()
            assert got is None or got in saved, f"after reopen read_committed() is {got!r}, never saved"
        await self._with_store(body)

    @_as_test
    async def test_append_readable_on_return(self):
        """Appended entries are readable as soon as append() returns, before on_flushed."""
        async def body(store):
            s1 = _normal_slice(1, 5, leader(1, 1))
            fut = await self.append(store, s1, wait=False)
            await self.assert_state(store, None, log_id(1, 1, 5))
            assert_entries_equal(await store.get_log_entries(1, 6), s1, "right after append")
            await self.flushed(fut)
            s2 = _normal_slice(6, 3, leader(2, 3))
            fut2 = await self.append(store, s2, wait=False)
            await self.assert_state(store, None, log_id(2, 3, 8))
            assert_entries_equal(await store.get_log_entries(4, 9), make_slice(4, [
                (leader(1, 1), NORMAL, b"e4"), (leader(1, 1), NORMAL, b"e5"),
                (leader(2, 3), NORMAL, b"e6"), (leader(2, 3), NORMAL, b"e7"), (leader(2, 3), NORMAL, b"e8")]))
            await self.flushed(fut2)
        await self._with_store(body)

    @_as_test
    async def test_on_flushed_called_once_from_loop_thread(self):
        """on_flushed is called exactly once per append, from the event loop's thread."""
        async def body(store):
            loop_thread = threading.get_ident()
            futs = []
            for i in range(4):
                futs.append(await self.append(store, _normal_slice(1 + 3 * i, 3, leader(1, 1)), wait=False))
            for f in futs:
                await self.flushed(f)
            await asyncio.sleep(0.05)       # a second (wrong) call would show up by now
            for i, f in enumerate(futs):
                assert len(f.calls) == 1, f"on_flushed of append #{i} was called {len(f.calls)} times"
                assert f.calls[0] == loop_thread, "on_flushed was called from another thread than the loop's"
        await self._with_store(body)

    @_as_test
    async def test_durable_on_append_means_durable_on_return(self):
        """A store that sets `durable_on_append` (the engine then counts an append flushed at
        once) holds the entries after a reopen straight after append() returns, before
        on_flushed has run. Others must leave it a plain False."""
        async def body(store):
            flag = getattr(store, "durable_on_append", None)
            assert flag is True or flag is False, f"durable_on_append is {flag!r}, not a bool"
            if not flag:
                return
            s1 = _normal_slice(1, 4, leader(1, 1))
            fut = await self.append(store, s1, wait=False)
            fut.cancel()        # the reopen below must not depend on it
            store = await self.reopen(store)
            await self.assert_state(store, None, log_id(1, 1, 4))
            assert_entries_equal(await store.get_log_entries(1, 5), s1, "after a reopen right after append")
        await self._with_store(body)

    @_as_test
    async def test_on_flushed_in_append_order(self):
        """Durability is signalled in append order (a later flush covers the earlier ones)."""
        async def body(store):
            order: List[int] = []
            futs = []
            loop = asyncio.get_running_loop()
            for i in range(6):
                fut = loop.create_future()

                def cb(i=i, fut=fut):
                    order.append(i)
                    if not fut.done():
                        fut.set_result(None)
                store.append(_normal_slice(1 + 2 * i, 2, leader(1, 1)), cb)
                futs.append(fut)
            for f in futs:
                await self.flushed(f)
            assert order == sorted(order), f"on_flushed calls came in order {order}"
        await self._with_store(body)

    @_as_test
    async def test_get_log_entries_ranges(self):
        """get_log_entries(start, stop) returns exactly [start, stop), across appends and leader
        changes; an empty range gives an empty slice."""
        async def body(store):
            model = LogBuffer()
            for start, n, lid in ((1, 4, leader(1, 1)), (5, 1, leader(1, 1)), (6, 5, leader(2, 2)),
                                  (11, 3, leader(4, 1))):
                s = _normal_slice(start, n, lid)
                await self.append(store, s)
                model.append_slice(s)
            # A slice whose leader changes in the middle.
            s = make_slice(14, [(leader(4, 1), NORMAL, b"a"), (leader(5, 3), BLANK, None), (leader(5, 3), NORMAL, b"b")])
            await self.append(store, s)
            model.append_slice(s)
            for a in range(1, 18):
                for b in range(a, 18):
                    got = await store.get_log_entries(a, b)
                    assert len(got) == b - a, f"get_log_entries({a}, {b}) returned {len(got)} entries"
                    if b > a:
                        assert_entries_equal(got, model.slice(a, b), f"get_log_entries({a}, {b})")
            await self.assert_log(store, model)
        await self._with_store(body)

    @_as_test
    async def test_entries_round_trip(self):
        """Payloads come back byte for byte; kinds (normal, blank, membership), membership
        contents (joint configs, learners, node data) and leader ids are kept."""
        async def body(store):
            rng = random.Random(7)
            big = bytes(rng.getrandbits(8) for _ in range(70000))
            m1 = Membership({1, 2, 3}, {1: Node("10.0.0.1:7001"), 2: Node("10.0.0.2:7001", {"zone": "b"}),
                                        3: Node("10.0.0.3:7001"), 9: Node("10.0.0.9:7001", {"role": "learner"})})
            m2 = Membership([{1, 2, 3}, {3, 4, 5}], {i: Node(f"n{i}") for i in range(1, 6)})
            m3 = Membership({3, 4, 5})
            items = [
                (leader(0, None), MEMBERSHIP, m1),
                (leader(1, 1), BLANK, None),
                (leader(1, 1), NORMAL, b""),
                (leader(1, 1), NORMAL, b"\x00" * 17),
                (leader(1, 1), NORMAL, bytes(range(256))),
                (leader(1, 1), NORMAL, big),
                (leader(3, 2), BLANK, None),
                (leader(3, 2), MEMBERSHIP, m2),
                (leader(3, 2), NORMAL, "ünïcode ✓".encode()),
                (leader(3, 2), MEMBERSHIP, m3),
                (leader(12, 5), BLANK, None),
                (leader(2**40, 2**31 + 7), NORMAL, msgpack.packb(["key", {"nested": [1, 2.5, None]}])),
            ]
            model = LogBuffer()
            s = make_slice(1, items[:6])
            await self.append(store, s)
            model.append_slice(s)
            for i in range(6, len(items)):     # one entry per append as well
                s = make_slice(i + 1, [items[i]])
                await self.append(store, s)
                model.append_slice(s)
            await self.assert_log(store, model, "round trip")
            await self.assert_log(await self.reopen(store), model, "round trip after reopen")
        await self._with_store(body)

    @_as_test
    async def test_std_mode_log_ids_round_trip(self):
        """Std-mode log ids (term only) come back in std mode."""
        if "std" not in self.leader_id_modes:
            pytest.skip("store not used in std leader-id mode")

        async def body(store):
            s = make_slice(1, [(leader(0, None, std=True), MEMBERSHIP, Membership({1, 2, 3})),
                               (leader(1, 2, std=True), BLANK, None),
                               (leader(1, 2, std=True), NORMAL, b"a"),
                               (leader(4, 3, std=True), NORMAL, b"b")])
            await self.append(store, s)
            model = LogBuffer()
            model.append_slice(s)
            await self.assert_log(store, model, "std mode")
            st = await store.get_log_state()
            assert st.last_log_id.leader_id.std and st.last_log_id.leader_id.node_id is None
        await self._with_store(body)

    @_as_test
    async def test_truncate_after(self):
        """truncate_after(i) drops every entry after i; the log continues at i + 1, possibly
        under another leader; truncating at or past the end changes nothing."""
        async def body(store):
            model = LogBuffer()
            s = _normal_slice(1, 10, leader(1, 1))
            await self.append(store, s)
            model.append_slice(s)
            assert await store.truncate_after(10) is None
            await self.assert_log(store, model, "truncate_after(last)")
            await store.truncate_after(6)
            model.truncate_after(6)
            await self.assert_log(store, model, "truncate_after(6)")
            s = _normal_slice(7, 4, leader(2, 3), "new")
            await self.append(store, s)
            model.append_slice(s)
            await self.assert_log(store, model, "append after truncate")
            await store.truncate_after(0)
            model.truncate_after(0)
            await self.assert_state(store, None, None)
            await self.assert_log(store, model, "truncate_after(0)")
            s = _normal_slice(1, 2, leader(3, 1), "again")
            await self.append(store, s)
            model.append_slice(s)
            await self.assert_log(store, model, "append after truncate_after(0)")
            await self.assert_log(await self.reopen(store), model, "truncate after reopen")
        await self._with_store(body)

    @_as_test
    async def test_purge(self):
        """purge(upto) drops entries up to upto.index and remembers upto; the last log id
        stays; purging everything leaves last_log_id == last purged; the log continues."""
        async def body(store):
            model = LogBuffer()
            s = make_slice(1, [(leader(1, 1), NORMAL, b"a")] * 4 + [(leader(2, 2), NORMAL, b"b")] * 6)
            await self.append(store, s)
            model.append_slice(s)
            await store.purge(log_id(1, 1, 4))
            model.purge_upto(4)
            await self.assert_state(store, log_id(1, 1, 4), log_id(2, 2, 10))
            await self.assert_log(store, model, "purge(4)")
            await store.purge(log_id(2, 2, 7))
            model.purge_upto(7)
            await self.assert_log(store, model, "purge(7)")
            await store.purge(log_id(2, 2, 10))
            model.purge_upto(10)
            await self.assert_state(store, log_id(2, 2, 10), log_id(2, 2, 10))
            await self.assert_log(store, model, "purge everything")
            s = _normal_slice(11, 3, leader(3, 1))
            await self.append(store, s)
            model.append_slice(s)
            await self.assert_log(store, model, "append after purging everything")
            await self.assert_log(await self.reopen(store), model, "purge after reopen")
        await self._with_store(body)

    @_as_test
    async def test_purge_past_last_entry(self):
        """After a snapshot install a store is purged past its last entry: it then holds no
        entry, last purged == last log id == upto, and the log continues at upto.index + 1."""
        async def body(store):
            model = LogBuffer()
            s = _normal_slice(1, 5, leader(1, 1))
            await self.append(store, s)
            model.append_slice(s)
            upto = log_id(3, 2, 20)
            await store.purge(upto)
            model.reset(upto)
            await self.assert_state(store, upto, upto)
            await self.assert_log(store, model, "purge past the end")
            s = _normal_slice(21, 3, leader(3, 2))
            await self.append(store, s)
            model.append_slice(s)
            await self.assert_log(store, model, "append after purge past the end")
            await self.assert_log(await self.reopen(store), model, "after reopen")
        await self._with_store(body)

    @_as_test
    async def test_purge_empty_store(self):
        """A pristine node that installs a snapshot purges an empty store."""
        async def body(store):
            upto = log_id(2, 1, 7)
            await store.purge(upto)
            await self.assert_state(store, upto, upto)
            model = LogBuffer(upto)
            await self.assert_log(store, model, "purge on empty")
            s = _normal_slice(8, 2, leader(2, 1))
            await self.append(store, s)
            model.append_slice(s)
            await self.assert_log(store, model, "append after purge on empty")
        await self._with_store(body)

    @_as_test
    async def test_never_a_hole(self):
        """An append that does not start right after the last entry (or the last purged one)
        is refused: it raises or leaves the log unchanged, never stores a hole."""
        async def body(store):
            model = LogBuffer()
            await self._refuse_gap(store, model, _normal_slice(2, 2, leader(1, 1)), "first append at index 2")
            s = _normal_slice(1, 3, leader(1, 1))
            await self.append(store, s)
            model.append_slice(s)
            await self._refuse_gap(store, model, _normal_slice(5, 2, leader(1, 1)), "append at 5 after 3")
            await store.purge(log_id(1, 1, 3))
            model.purge_upto(3)
            await self._refuse_gap(store, model, _normal_slice(6, 1, leader(1, 1)), "append at 6 after purge(3)")
            await store.purge(log_id(2, 2, 10))
            model.reset(log_id(2, 2, 10))
            await self._refuse_gap(store, model, _normal_slice(12, 1, leader(2, 2)), "append at 12 after purge(10)")
            s = _normal_slice(11, 1, leader(2, 2))
            await self.append(store, s)
            model.append_slice(s)
            await self.assert_log(store, model, "after the refused appends")
        await self._with_store(body)

    async def _refuse_gap(self, store, model, s, what):
        try:
            fut = await self.append(store, s, wait=False)
        except Exception:
            pass
        else:
            # Accepted without an error: then it must not have stored anything.
            await asyncio.sleep(0)
            del fut
        await self.assert_log(store, model, f"{what} must not leave a hole")

    @_as_test
    async def test_read_log_is_independent(self):
        """read_log() returns a LogBuffer the caller owns: appending to it (as the engine does)
        does not change the store."""
        async def body(store):
            model = LogBuffer()
            s = _normal_slice(1, 3, leader(1, 1))
            await self.append(store, s)
            model.append_slice(s)
            buf = await store.read_log()
            buf.append(leader(1, 1), [b"engine-only"])
            buf.truncate_after(1)
            await self.assert_log(store, model, "after changing read_log()'s buffer")
        await self._with_store(body)

    @_as_test
    async def test_random_operations_match_model(self):
        """A seeded random mix of append / truncate_after / purge / purge past the end / vote,
        checked against a model after every step and after a reopen."""
        async def body(store):
            rng = random.Random(2024)
            model = LogBuffer()
            term, node = 1, 1
            vote = None
            for step in range(60):
                op = rng.random()
                last = model.last_index
                if op < 0.5 or last < model.first_index:
                    if rng.random() < 0.3:
                        term, node = term + 1, rng.randint(1, 5)
                    n = rng.randint(1, 6)
                    items = []
                    for i in range(n):
                        k = rng.random()
                        if k < 0.1:
                            items.append((leader(term, node), BLANK, None))
                        elif k < 0.15:
                            items.append((leader(term, node), MEMBERSHIP, Membership({1, 2, rng.randint(3, 6)})))
                        else:
                            items.append((leader(term, node), NORMAL, rng.randbytes(rng.randint(0, 40))))
                    s = make_slice(last + 1, items)
                    await self.append(store, s)
                    model.append_slice(s)
                    what = f"step {step}: append [{s.start}, {s.stop})"
                elif op < 0.7:
                    at = rng.randint(model.first_index - 1, last)
                    await store.truncate_after(at)
                    model.truncate_after(at)
                    what = f"step {step}: truncate_after({at})"
                elif op < 0.9:
                    at = rng.randint(model.first_index, last)
                    upto = model.log_id_at(at)
                    await store.purge(upto)
                    model.purge_upto(at)
                    what = f"step {step}: purge({upto})"
                elif op < 0.95:
                    term += 1
                    upto = LogId(leader(term, node), last + rng.randint(1, 5))
                    await store.purge(upto)
                    model.reset(upto)
                    what = f"step {step}: purge past the end ({upto})"
                else:
                    term += 1
                    vote = Vote.new(term, node, committed=rng.random() < 0.5)
                    await store.save_vote(vote)
                    what = f"step {step}: save_vote({vote})"
                await self.assert_log(store, model, what)
                assert await store.read_vote() == vote
            store = await self.reopen(store)
            await self.assert_log(store, model, "after reopen")
            assert await store.read_vote() == vote
        await self._with_store(body)


# ---------------------------------------------------------------------- state machine
class StateMachineSuite(_AsyncSuite):
    """The StateMachine contract (openraft_fast.storage.base.StateMachine). Override
    `make_state_machine`; override `make_payload` if your state machine only accepts its
    own commands, and `assert_same_state` to compare application state directly."""

    def make_state_machine(self) -> StateMachine:
        """A fresh, empty state machine (may be async)."""
        raise NotImplementedError("override make_state_machine() to return a fresh StateMachine")

    def close_state_machine(self, sm: StateMachine):
        return None

    def make_payload(self, i: int) -> bytes:
        """The i-th application command (bytes). Default: msgpack [key, value] (a set)."""
        return msgpack.packb([f"key{i % 5}", i])

    async def assert_same_state(self, a: StateMachine, b: StateMachine) -> None:
        """`a` and `b` hold the same state. Default: the same applied state, and snapshots
        built from both carry the same bytes (override if your snapshot bytes are not
        deterministic, or to compare application state directly)."""
        assert await a.applied_state() == await b.applied_state()
        sa, sb = await a.build_snapshot(), await b.build_snapshot()
        assert sa.meta.last_log_id == sb.meta.last_log_id
        assert bytes(sa.data) == bytes(sb.data), "the two state machines' snapshots differ"

    # helpers --------------------------------------------------------------------------
    async def _with_sms(self, body):
        self._open = []
        try:
            await body(self.new_sm)
        finally:
            for sm in reversed(self._open):
                await _maybe_await(self.close_state_machine(sm))

    async def new_sm(self) -> StateMachine:
        sm = await _maybe_await(self.make_state_machine())
        assert isinstance(sm, StateMachine), f"make_state_machine() returned {type(sm).__name__}"
        self._open.append(sm)
        return sm

    def entries(self, start: int, kinds: str, lid: Optional[LeaderId] = None, memberships=None, seed: int = 0) -> LogSlice:
        """Entries from a kinds string: "n" normal, "b" blank, "m" membership (taken in order
        from `memberships`, default Membership({1, 2, 3}))."""
        lid = lid or leader(1, 1)
        ms = list(memberships or [])
        items: List[tuple] = []
        for i, k in enumerate(kinds):
            if k == "n":
                items.append((lid, NORMAL, self.make_payload(seed + start + i)))
            elif k == "b":
                items.append((lid, BLANK, None))
            else:
                items.append((lid, MEMBERSHIP, ms.pop(0) if ms else Membership({1, 2, 3})))
        return make_slice(start, items)

    async def apply(self, sm: StateMachine, entries: LogSlice) -> list:
        out = await sm.apply(entries)
        out = list(out)
        assert len(out) == len(entries), f"apply() of {len(entries)} entries returned {len(out)} responses"
        for e, r in zip(entries.entries(), out):
            if e.kind != NORMAL:
                assert r is None, f"the response to {_describe(e)} is {r!r}, expected None"
        applied, _ = await sm.applied_state()
        assert applied == entries.last_log_id, f"applied is {applied} after applying up to {entries.last_log_id}"
        return out

    # tests ----------------------------------------------------------------------------
    @_as_test
    async def test_initial_state(self):
        """A fresh state machine has applied nothing, knows no membership, has no snapshot."""
        async def body(new_sm):
            sm = await new_sm()
            assert tuple(await sm.applied_state()) == (None, None)
            assert await sm.get_current_snapshot() is None
        await self._with_sms(body)

    @_as_test
    async def test_apply_one_response_per_entry(self):
        """apply() answers once per entry, None for blank and membership entries, and moves
        the applied log id to the last entry."""
        async def body(new_sm):
            sm = await new_sm()
            await self.apply(sm, self.entries(1, "m"))
            await self.apply(sm, self.entries(2, "bn", leader(1, 2)))
            await self.apply(sm, self.entries(4, "n", leader(1, 2)))
            await self.apply(sm, self.entries(5, "nnnbnnmnn", leader(2, 1)))
            await self.apply(sm, self.entries(14, "b", leader(3, 3)))
            await self.apply(sm, self.entries(15, "n" * 50, leader(3, 3)))
        await self._with_sms(body)

    @_as_test
    async def test_apply_remembers_membership(self):
        """applied_state() names the last applied membership entry (its log id and value),
        across apply() calls and within one."""
        async def body(new_sm):
            sm = await new_sm()
            m1 = Membership({1, 2, 3}, {1: Node("a"), 2: Node("b"), 3: Node("c"), 4: Node("d", {"x": 1})})
            m2 = Membership([{1, 2, 3}, {2, 3, 4}], {i: Node(f"n{i}") for i in range(1, 5)})
            m3 = Membership({2, 3, 4}, {i: Node(f"n{i}") for i in range(2, 5)})
            await self.apply(sm, self.entries(1, "mbn", leader(0, None), [m1]))
            assert await sm.applied_state() == (log_id(0, None, 3), (log_id(0, None, 1), m1))
            await self.apply(sm, self.entries(4, "nnn", leader(1, 1)))
            applied, mem = await sm.applied_state()
            assert mem == (log_id(0, None, 1), m1), f"membership forgotten after applying normal entries: {mem}"
            await self.apply(sm, self.entries(7, "nmnmn", leader(2, 2), [m2, m3]))
            applied, mem = await sm.applied_state()
            assert applied == log_id(2, 2, 11)
            assert mem == (log_id(2, 2, 10), m3), f"the last membership of the batch is {mem}, expected {m3!r} at 10"
            assert mem[1].configs == m3.configs and mem[1].nodes == m3.nodes
        await self._with_sms(body)

    @_as_test
    async def test_apply_is_deterministic(self):
        """The same entries give the same responses and state, however they are batched."""
        async def body(new_sm):
            a, b = await new_sm(), await new_sm()
            s = self.entries(1, "mb" + "n" * 30 + "b" + "n" * 10, leader(1, 1))
            ra = await self.apply(a, s)
            rb = []
            at = 1
            for size in (1, 2, 5, 1, 7, 100):
                stop = min(s.stop, at + size)
                if stop <= at:
                    break
                rb += await self.apply(b, make_slice(at, [(e.log_id.leader_id, e.kind, e.payload)
                                                          for e in s.entries()[at - 1:stop - 1]]))
                at = stop
            assert ra == rb, "responses differ with the batching"
            await self.assert_same_state(a, b)
        await self._with_sms(body)

    @_as_test
    async def test_build_snapshot(self):
        """build_snapshot() covers everything applied: meta names the applied log id and the
        applied membership; get_current_snapshot() returns it."""
        async def body(new_sm):
            sm = await new_sm()
            m = Membership({1, 2, 3}, {1: Node("a"), 2: Node("b"), 3: Node("c"), 7: Node("l")})
            await self.apply(sm, self.entries(1, "m", leader(0, None), [m]))
            await self.apply(sm, self.entries(2, "bnnnnn", leader(1, 1)))
            snap = await sm.build_snapshot()
            assert isinstance(snap, Snapshot), f"build_snapshot() returned {type(snap).__name__}"
            assert isinstance(snap.meta, SnapshotMeta)
            assert snap.meta.last_log_id == log_id(1, 1, 7)
            assert snap.meta.membership_log_id == log_id(0, None, 1)
            assert snap.meta.membership == m
            assert isinstance(snap.meta.snapshot_id, str)
            assert isinstance(snap.data, (bytes, bytearray, memoryview))
            cur = await sm.get_current_snapshot()
            assert cur is not None, "get_current_snapshot() is None after build_snapshot()"
            assert cur.meta == snap.meta and bytes(cur.data) == bytes(snap.data)
            # Building again after more entries moves the snapshot on.
            await self.apply(sm, self.entries(8, "nn", leader(2, 3)))
            snap2 = await sm.build_snapshot()
            assert snap2.meta.last_log_id == log_id(2, 3, 9)
            assert (await sm.get_current_snapshot()).meta == snap2.meta
        await self._with_sms(body)

    @_as_test
    async def test_snapshot_round_trip(self):
        """install_snapshot() into a fresh state machine gives the same state, applied log id,
        membership and current snapshot; both then go on alike."""
        async def body(new_sm):
            a, b = await new_sm(), await new_sm()
            m = Membership([{1, 2, 3}, {3, 4, 5}], {i: Node(f"n{i}") for i in range(1, 6)})
            await self.apply(a, self.entries(1, "mb" + "n" * 20, leader(1, 1), [Membership({1, 2, 3})]))
            await self.apply(a, self.entries(23, "mnnn", leader(2, 2), [m]))
            snap = await a.build_snapshot()
            assert await b.install_snapshot(snap.meta, snap.data) is None
            assert await b.applied_state() == await a.applied_state()
            assert await b.applied_state() == (log_id(2, 2, 26), (log_id(2, 2, 23), m))
            cur = await b.get_current_snapshot()
            assert cur is not None, "get_current_snapshot() is None after install_snapshot()"
            assert cur.meta == snap.meta and bytes(cur.data) == bytes(snap.data)
            await self.assert_same_state(a, b)
            more = self.entries(27, "nnbnn", leader(3, 1), seed=100)
            ra, rb = await self.apply(a, more), await self.apply(b, more)
            assert ra == rb, "responses differ after the snapshot install"
            await self.assert_same_state(a, b)
            # And a snapshot of the installed machine carries the same meta.
            snap_b = await b.build_snapshot()
            assert snap_b.meta.last_log_id == log_id(3, 1, 31)
            assert snap_b.meta.membership_log_id == log_id(2, 2, 23) and snap_b.meta.membership == m
        await self._with_sms(body)

    @_as_test
    async def test_install_replaces_state(self):
        """install_snapshot() replaces the whole state, whatever was applied before."""
        async def body(new_sm):
            a, b, c = await new_sm(), await new_sm(), await new_sm()
            await self.apply(a, self.entries(1, "m" + "n" * 8, leader(1, 1)))
            snap = await a.build_snapshot()
            await self.apply(b, self.entries(1, "mb" + "n" * 6, leader(1, 2), [Membership({1, 2})], seed=500))
            await b.install_snapshot(snap.meta, snap.data)
            await c.install_snapshot(snap.meta, snap.data)
            assert await b.applied_state() == await a.applied_state()
            await self.assert_same_state(a, b)
            await self.assert_same_state(b, c)
        await self._with_sms(body)

    @_as_test
    async def test_snapshot_is_point_in_time(self):
        """A built snapshot keeps the state of when it was built, while applying goes on."""
        async def body(new_sm):
            a, c, d = await new_sm(), await new_sm(), await new_sm()
            first = self.entries(1, "m" + "n" * 10, leader(1, 1))
            await self.apply(a, first)
            snap = await a.build_snapshot()
            await self.apply(a, self.entries(12, "n" * 10, leader(1, 1), seed=77))
            await c.install_snapshot(snap.meta, snap.data)
            await self.apply(d, first)
            assert (await c.applied_state())[0] == log_id(1, 1, 11)
            await self.assert_same_state(c, d)
        await self._with_sms(body)
