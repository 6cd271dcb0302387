"""Watch: the hub over a KvStateMachine (backlog, live changes, filters, compaction, slow
watchers, snapshot installs), GET /v1/watch over HTTP, KvClient.watch across failovers, and
`kv watch`."""
import asyncio
import json

import pytest

from kv_support import WAIT, KvCluster
from openraft_fast.kv import KvClient, KvStateMachine, commands
from openraft_fast.kv.errors import KvCompacted
from openraft_fast.kv.state_machine import CompactedRevision
from openraft_fast.kv.watch import WatchHub
from test_kv_http import call, scrape
from test_kv_state_machine import apply


class Sink:
    """Where a watcher writes: lines kept, a buffer size to report, closed or not."""

    def __init__(self, buffered=0):
        self.data = b""
        self.size = buffered
        self.closed = False

    def write(self, data):
        self.data += data

    def buffered(self):
        return self.size

    def close(self):
        self.closed = True

    def events(self):
        return [json.loads(line) for line in self.data.splitlines()]


def changes(sink):
    return [(e["type"], e["key"], e["value"], e["revision"], e["prev_revision"]) for e in sink.events()
            if e["type"] in ("put", "delete")]


def test_a_watcher_gets_its_backlog_then_live_changes_filtered_by_prefix_or_key(run):
    async def body():
        sm = KvStateMachine()
        hub = WatchHub(sm)
        await apply(sm, commands.put("a/1", "x"), commands.put("b", "y"))           # 1, 2
        assert sm.change_listeners == []         # nobody watches: applies build no lines
        from_start, live, exact = Sink(), Sink(), Sink()
        hub.watch("a/", False, 1).attach(from_start.write, from_start.buffered, from_start.close)
        hub.watch("a/", False, None).attach(live.write, live.buffered, live.close)
        hub.watch("a/2", True, None).attach(exact.write, exact.buffered, exact.close)
        await apply(sm, commands.put("a/2", "z"), commands.delete("a/1"), commands.put("a/22", "w"))   # 3, 4, 5
        assert changes(from_start) == [("put", "a/1", "x", 1, 0), ("put", "a/2", "z", 3, 0),
                                       ("delete", "a/1", None, 4, 1), ("put", "a/22", "w", 5, 0)]
        assert from_start.events()[1] == {"type": "progress", "revision": 2}      # after the backlog
        assert changes(live) == changes(from_start)[1:]
        assert changes(exact) == [("put", "a/2", "z", 3, 0)]
        hub.progress()
        assert live.events()[-1] == {"type": "progress", "revision": 5}
        assert len(hub.watchers) == 3
        hub.close()
        assert not hub.watchers and live.closed and sm.change_listeners == []
    run(body())


def test_a_watcher_registered_before_it_is_attached_misses_nothing(run):
    async def body():
        sm = KvStateMachine()
        hub = WatchHub(sm)
        w = hub.watch("", False, None)                 # the HTTP head is not sent yet
        await apply(sm, commands.put("k", "1"))
        sink = Sink()
        w.attach(sink.write, sink.buffered, sink.close)
        await apply(sm, commands.put("k", "2"))
        assert [c[3] for c in changes(sink)] == [1, 2]
    run(body())


def test_a_lagging_node_sends_a_watcher_only_changes_from_where_it_asked(run):
    """Found by the control-plane chaos run (seed 2, 90 s): a node restarted from its snapshot
    replays the log it had; a watcher that resumed there at a later revision was sent the
    replayed older changes again."""
    async def body():
        sm = KvStateMachine()
        hub = WatchHub(sm)
        await apply(sm, commands.put("k", "1"), commands.put("k", "2"))           # at revision 2
        sink = Sink()
        hub.watch("k", True, 5).attach(sink.write, sink.buffered, sink.close)
        await apply(sm, *(commands.put("k", str(i)) for i in range(3, 8)))       # 3..7
        assert [c[3] for c in changes(sink)] == [5, 6, 7]
        assert sink.events()[0] == {"type": "progress", "revision": 2}
    run(body())


def test_a_revision_older_than_the_history_is_compacted(run):
    async def body():
        sm = KvStateMachine(watch_history=2)
        hub = WatchHub(sm)
        await apply(sm, *(commands.put("k", str(i)) for i in range(5)))
        with pytest.raises(CompactedRevision) as info:
            hub.watch("k", True, 3)
        assert info.value.compacted_revision == 3 and not hub.watchers
        sink = Sink()
        hub.watch("k", True, 4).attach(sink.write, sink.buffered, sink.close)
        assert [c[3] for c in changes(sink)] == [4, 5]
    run(body())


def test_a_slow_watcher_is_cut_off_with_its_revision(run):
    async def body():
        sm = KvStateMachine()
        hub = WatchHub(sm, max_buffered=1000)
        slow, fast = Sink(buffered=0), Sink()
        hub.watch("", False, None).attach(slow.write, slow.buffered, slow.close)
        hub.watch("", False, None).attach(fast.write, fast.buffered, fast.close)
        await apply(sm, commands.put("k", "1"))
        slow.size = 5000                               # the client stopped reading
        await apply(sm, commands.put("k", "2"))
        assert slow.closed and slow.events()[-1]["code"] == "slow_watcher" and slow.events()[-1]["revision"] == 2
        await apply(sm, commands.put("k", "3"))
        assert [c[3] for c in changes(slow)] == [1, 2] and [c[3] for c in changes(fast)] == [1, 2, 3]
        assert len(hub.watchers) == 1
    run(body())


def test_installing_a_snapshot_ends_every_watch_so_it_resumes_from_its_revision(run):
    async def body():
        source = KvStateMachine()
        await apply(source, commands.put("k", "1"), commands.put("k", "2"))
        snap = await source.build_snapshot()
        sm = KvStateMachine()
        hub = WatchHub(sm)
        sink = Sink()
        hub.watch("", False, None).attach(sink.write, sink.buffered, sink.close)
        await sm.install_snapshot(snap.meta, snap.data)
        assert sink.closed and sink.events()[-1]["code"] == "snapshot_installed"
        # The snapshot keeps the history: a watch resumes from it.
        again = Sink()
        hub.watch("", False, 1).attach(again.write, again.buffered, again.close)
        assert [c[3] for c in changes(again)] == [1, 2]
    run(body())


# ---------------------------------------------------------------------------- over HTTP
def test_watch_route_streams_json_lines_on_any_node(run):
    import aiohttp


    async def body():
        async with KvCluster() as c:
            lead = await c.start_kv([1, 2, 3])
            follower = next(i for i in (1, 2, 3) if i != lead)
            st, b, _ = await call("PUT", c.url(lead) + "/v1/kv/cfg/a", {"value": "1"})
            first = b["revision"]
            async with aiohttp.ClientSession() as s:
                async with s.get(c.url(follower) + f"/v1/watch?prefix=cfg/&from_revision={first}",
                                 timeout=aiohttp.ClientTimeout(total=WAIT)) as r:
                    assert r.status == 200 and r.headers["Content-Type"] == "application/x-ndjson"
                    await call("PUT", c.url(lead) + "/v1/kv/other", {"value": "x"})
                    await call("PUT", c.url(lead) + "/v1/kv/cfg/b", {"value": "2"})
                    lines = []
                    while len([e for e in lines if e["type"] == "put"]) < 2:
                        lines.append(json.loads(await r.content.readline()))
                    puts = [(e["key"], e["value"]) for e in lines if e["type"] == "put"]
                    assert puts == [("cfg/a", "1"), ("cfg/b", "2")]
                    assert (await scrape(c.url(follower)))["kv_watchers"].samples[0].value == 1
            for query, status, code in (("", 400, "bad_request"), ("?prefix=a&key=b", 400, "bad_request"),
                                        ("?prefix=a&from_revision=0", 400, "bad_request"),
                                        ("?prefix=a&from_revision=x", 400, "bad_request")):
                st, b, _ = await call("GET", c.url(lead) + "/v1/watch" + query)
                assert (st, b["error"]["code"]) == (status, code), query
    run(body())


def test_watch_of_a_compacted_revision_answers_410(run):
    async def body():
        async with KvCluster() as c:
            lead = await c.start_kv([1, 2, 3])
            c.sm(lead).watch_history = 2
            for i in range(5):
                await call("PUT", c.url(lead) + "/v1/kv/k", {"value": str(i)})
            st, b, _ = await call("GET", c.url(lead) + "/v1/watch?key=k&from_revision=1")
            assert st == 410 and b["error"]["code"] == "compacted"
            assert b["compacted_revision"] == b["error"]["compacted_revision"] == c.sm(lead).compacted_revision > 1
    run(body())


# ---------------------------------------------------------------------------- KvClient.watch
def test_client_watch_delivers_each_change_once_in_order_across_node_stops(run):
    async def body():
        async with KvCluster() as c:
            await c.start_kv([1, 2, 3, 4, 5])
            async with KvClient(c.urls(), timeout=20) as kv, KvClient(c.urls(), timeout=20) as writer:
                start = await writer.put("w/start", "0")
                seen = []
                done = asyncio.Event()
                expected = []

                async def consume():
                    async for ch in kv.watch("w/", from_revision=start):
                        seen.append((ch.revision, ch.type, ch.key))
                        if ch.key == "w/end":
                            done.set()

                task = asyncio.ensure_future(consume())
                while not any(c.servers[i].watch_hub.watchers for i in c.live()):
                    await asyncio.sleep(0.01)
                expected.append((start, "put", "w/start"))
                for round_no in range(2):
                    for i in range(10):
                        expected.append((await writer.put(f"w/{round_no}/{i}", str(i)), "put", f"w/{round_no}/{i}"))
                    r = await writer.txn(success=[{"put": {"key": f"w/t{round_no}a", "value": "1"}},
                                                  {"put": {"key": f"w/t{round_no}b", "value": "1"}}])
                    expected += [(r.revision, "put", f"w/t{round_no}a"), (r.revision, "put", f"w/t{round_no}b")]
                    # Stop the node serving the watch, then the leader.
                    lead = await c.wait_leader()
                    serving = [i for i in c.live() if c.servers[i].watch_hub.watchers]
                    await c.stop(serving[0] if round_no == 0 else lead)
                    await c.wait_leader()
                expected.append((await writer.put("w/end", "1"), "put", "w/end"))
                await asyncio.wait_for(done.wait(), 20)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                assert seen == expected
    run(body())


def test_client_watch_from_a_compacted_revision_raises(run):
    async def body():
        async with KvCluster() as c:
            lead = await c.start_kv([1, 2, 3])
            for i in c.live():
                c.sm(i).watch_history = 1
            async with KvClient(c.urls()) as kv:
                for i in range(4):
                    await kv.put("k", str(i))
                with pytest.raises(KvCompacted) as info:
                    async for _ in kv.watch(key="k", from_revision=1):
                        pass
                assert info.value.compacted_revision >= 3 and info.value.status == 410
                with pytest.raises(Exception, match="exactly one"):
                    async for _ in kv.watch("a", key="b"):
                        pass
    run(body())


def test_cli_kv_watch_prints_one_line_per_change(run):
    import sys


    async def body():
        async with KvCluster() as c:
            await c.start_kv([1, 2, 3])
            async with KvClient(c.urls()) as kv:
                first = await kv.put("job/1", "a")
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "openraft_fast.cli", "kv", "watch", "job/", "--from-revision", str(first),
                    "--endpoints", ",".join(c.urls()), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
                try:
                    second = await kv.put("job/2", "b")
                    await kv.delete("job/1")
                    lines = [json.loads(await asyncio.wait_for(proc.stdout.readline(), 20)) for _ in range(3)]
                finally:
                    proc.terminate()
                    await proc.wait()
            assert [(e["type"], e["key"], e["revision"]) for e in lines] == [
                ("put", "job/1", first), ("put", "job/2", second), ("delete", "job/1", second + 1)]
    run(body())
