"""One chaos run: a cluster of `serve` processes behind fault proxies, KvClient workers recording a
history, a seeded nemesis, then healing, convergence and the checks.

Checks: the history (put / linearizable get / cas with unique values, plus a final read of every
key) is linearizable; after healing every node has applied the same index and holds the same
key-value contents (`consistency=local`), equal to the final linearizable reads; every
observation of a value carries the revision its write got (no acknowledged write lost or
rewritten). A failing run keeps its directory (history.json, schedule.json, node logs) and says
how to replay it.
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from openraft_fast.kv import KvOutcomeUnknown, KvRequestError, KvUnavailable
from openraft_fast.errors import RaftError
from openraft_fast.testing.faultproxy import FaultNetworkProcess
from openraft_fast.testing.lincheck import History, check, dump_history
from openraft_fast.testing.localcluster import ClusterError, LocalCluster

RESULTS: List["RunResult"] = []     # every run of this session, for the summary

FAULTS = ("kill_leader", "kill_follower", "pause", "partition", "one_way", "reset", "delay", "membership")


@dataclass
class RunResult:
    nodes: int
    seed: int
    seconds: float
    ops: Dict[str, int] = field(default_factory=dict)
    faults: Dict[str, int] = field(default_factory=dict)
    keys: int = 0
    verdict: str = ""
    problems: List[str] = field(default_factory=list)
    run_dir: Optional[str] = None
    replay: str = ""
    elapsed: float = 0.0
    history: list = field(default_factory=list, repr=False)
    bytes_dropped: int = 0      # by the fault proxies: the network faults did bite
    final_term: int = 0         # elections happened

    @property
    def ok(self) -> bool:
        return not self.problems

    def line(self) -> str:
        o = self.ops
        return (f"chaos nodes={self.nodes} seed={self.seed} {self.seconds:.0f}s: ops {o.get('invoked', 0)} "
                f"(ok {o.get('ok', 0)}, failed {o.get('failed', 0)}, unknown {o.get('unknown', 0)}), "
                f"faults {sum(self.faults.values())} {dict(sorted(self.faults.items()))}, "
                f"{self.bytes_dropped} bytes dropped, final term {self.final_term}, "
                f"{self.keys} keys, lincheck {self.verdict}, violations {len(self.problems)}, "
                f"{self.elapsed:.0f}s wall")


class Run:
    def __init__(self, nodes: int, seed: int, seconds: float, workers_per_node: int = 3, keys: int = 6,
                 base_dir: Optional[str] = None, lease_reads: bool = False) -> None:
        self.n = nodes
        self.seed = seed
        self.seconds = seconds
        self.workers_per_node = workers_per_node
        self.keys = [f"k{i}" for i in range(keys)]
        self.lease_reads = lease_reads
        self.rnd = random.Random(f"{nodes}-{seed}")
        self.dir = tempfile.mkdtemp(prefix=f"openraft-chaos-n{nodes}-s{seed}-", dir=base_dir)
        self.history = History()
        self.revisions: Dict[str, set] = {}     # value -> revisions seen with it
        self.schedule: List[Dict[str, Any]] = []
        self.result = RunResult(nodes, seed, seconds, run_dir=self.dir)
        self.stop = asyncio.Event()
        self.t0 = time.monotonic()
        self.unexpected: List[str] = []

    # ------------------------------------------------------------------ workers
    def _seen(self, value: Optional[str], revision: int) -> None:
        if value is not None:
            self.revisions.setdefault(value, set()).add(revision)

    async def worker(self, wid: int, cluster: LocalCluster, home: int) -> None:
        """Put, linearizable get and cas with values unique to this run, until told to stop."""
        rnd = random.Random(f"{self.n}-{self.seed}-{wid}")
        urls = [cluster.nodes[home].url] + [n.url for i, n in cluster.nodes.items() if i != home]
        last: Dict[str, Optional[str]] = {}     # the value this worker last saw, for its cas
        seq = 0
        async with cluster.client(urls, timeout=3.0, request_timeout=1.0, retry_ambiguous_writes=False,
                                  max_backoff=0.2) as kv:
            while not self.stop.is_set():
                key = rnd.choice(self.keys)
                seq += 1
                r = rnd.random()
                if r < 0.35:
                    await self._put(kv, wid, key, f"w{wid}.{seq}")
                elif r < 0.7:
                    lease = self.lease_reads and rnd.random() < 0.3
                    await self._get(kv, wid, key, "lease" if lease else "linearizable", last)
                else:
                    await self._cas(kv, wid, key, f"w{wid}.{seq}", last)

    async def _put(self, kv, wid: int, key: str, value: str) -> None:
        op = self.history.start("put", key, client=wid, value=value)
        try:
            rev = await kv.put(key, value)
        except Exception as exc:
            self._write_failed(op, exc)
            return
        self.history.finish(op)
        self._seen(value, rev)

    async def _get(self, kv, wid: int, key: str, consistency: str, last: Dict[str, Optional[str]]) -> None:
        op = self.history.start("get", key, client=wid)
        try:
            item = await kv.get(key, consistency=consistency)
        except Exception as exc:
            self.history.fail(op)     # a read that failed constrains nothing
            self._note(exc)
            return
        value = None if item is None else item.value
        self.history.finish(op, output=value)
        if item is not None:
            self._seen(item.value, item.revision)
        last[key] = value

    async def _cas(self, kv, wid: int, key: str, value: str, last: Dict[str, Optional[str]]) -> None:
        expected = last.get(key)
        op = self.history.start("cas", key, client=wid, value=value, expected=expected)
        try:
            res = await kv.cas(key, value, expected=expected)
        except Exception as exc:
            self._write_failed(op, exc)
            return
        if res.ok:
            self.history.finish(op, ok=True)
            self._seen(value, res.revision)
            last[key] = value
        else:
            self.history.finish(op, ok=False, output=res.value)
            self._seen(res.value, res.revision)
            last[key] = res.value

    def _write_failed(self, op, exc: BaseException) -> None:
        if isinstance(exc, KvRequestError) or (isinstance(exc, KvUnavailable) and not exc.ambiguous):
            self.history.fail(op)          # refused before it was appended: never applied
        else:
            self._note(exc)               # outcome unknown: stays pending in the history

    def _note(self, exc: BaseException) -> None:
        if not isinstance(exc, (KvOutcomeUnknown, KvUnavailable, KvRequestError)):
            if len(self.unexpected) < 20:
                self.unexpected.append(f"{type(exc).__name__}: {exc}")

    # ------------------------------------------------------------------ nemesis
    def _log(self, event: str, **kw) -> None:
        entry = {"t": round(time.monotonic() - self.t0, 3), "event": event, **kw}
        self.schedule.append(entry)

    async def nemesis(self, cluster: LocalCluster, net: FaultNetworkProcess) -> None:
        rnd = self.rnd
        ids = sorted(cluster.nodes)
        deadline = self.t0 + self.seconds
        await asyncio.sleep(rnd.uniform(0.5, 1.5))
        order: List[str] = []
        while time.monotonic() < deadline - 1.0:
            if not order:      # every kind of fault once, in a seeded order, then again
                order = list(FAULTS)
                rnd.shuffle(order)
            kind = order.pop()
            hold = rnd.uniform(0.4, 1.8)
            self.result.faults[kind] = self.result.faults.get(kind, 0) + 1
            try:
                leader = await cluster.leader(timeout=3.0)
            except ClusterError:
                leader = rnd.choice(ids)
            others = [i for i in ids if i != leader]
            if kind in ("kill_leader", "kill_follower"):
                victim = leader if kind == "kill_leader" else rnd.choice(others)
                self._log(kind, node=victim)
                cluster.kill(victim)
                await asyncio.sleep(hold)
                self._log("restart", node=victim)
                await cluster.restart(victim)
            elif kind == "pause":
                victim = leader if rnd.random() < 0.5 else rnd.choice(others)
                self._log("pause", node=victim)
                cluster.pause(victim)
                await asyncio.sleep(hold)
                self._log("resume", node=victim)
                cluster.resume(victim)
            elif kind == "partition":
                side = rnd.sample(ids, rnd.randint(1, (len(ids) - 1) // 2))
                if rnd.random() < 0.5 and leader not in side:
                    side = [leader] + side[1:]
                rest = [i for i in ids if i not in side]
                self._log("partition", groups=[sorted(side), rest])
                await net.partition([side, rest])
                await asyncio.sleep(hold)
                self._log("heal")
                await net.heal()
            elif kind == "one_way":
                if rnd.random() < 0.5:
                    pairs = [(leader, o) for o in others]        # the leader can hear but not speak
                else:
                    a, b = rnd.sample(ids, 2)
                    pairs = [(a, b)]
                self._log("one_way", cuts=pairs)
                for a, b in pairs:
                    await net.cut(a, b)
                await asyncio.sleep(hold)
                self._log("heal")
                await net.heal()
            elif kind == "reset":
                self._log("reset")
                await net.reset()
                await asyncio.sleep(hold / 4)
            elif kind == "delay":
                d = rnd.uniform(0.02, 0.15)
                self._log("delay", seconds=round(d, 3))
                await net.delay(None, None, d)
                await asyncio.sleep(hold)
                self._log("heal")
                await net.heal()
            else:
                await self.membership_fault(cluster, net, rnd, ids, leader, others, hold)
            await asyncio.sleep(rnd.uniform(0.2, 0.8))

    async def membership_fault(self, cluster, net, rnd, ids, leader, others, hold) -> None:
        """Demote a follower to learner while another fault runs, then make it a voter again."""
        demoted = rnd.choice(others)
        voters = [i for i in ids if i != demoted]
        also = rnd.choice(["pause", "partition", "kill"])
        self._log("membership", voters=voters, during=also)
        change = asyncio.ensure_future(self._change_membership(cluster, voters, retain=True))
        victim = rnd.choice([i for i in ids if i != demoted])
        if also == "pause":
            cluster.pause(victim)
        elif also == "partition":
            await net.partition([[victim], [i for i in ids if i != victim]])
        else:
            cluster.kill(victim)
        await asyncio.sleep(hold)
        if also == "pause":
            cluster.resume(victim)
        elif also == "partition":
            await net.heal()
        else:
            await cluster.restart(victim)
        self._log(f"membership.{also}.healed", node=victim)
        await change
        await self._change_membership(cluster, ids, retain=False)
        self._log("membership.restored")

    async def _change_membership(self, cluster: LocalCluster, voters: List[int], retain: bool) -> bool:
        """Ask for the change until it goes through or 10 s pass (faults make it fail or time out)."""
        deadline = time.monotonic() + 10.0
        async with cluster.client(timeout=3.0, request_timeout=2.0) as kv:
            while time.monotonic() < deadline:
                try:
                    await kv.change_membership(voters, retain=retain)
                    return True
                except RaftError:
                    await asyncio.sleep(0.2)
        return False

    # ------------------------------------------------------------------ healing and checks
    async def heal_all(self, cluster: LocalCluster, net: FaultNetworkProcess) -> None:
        self._log("heal_all")
        await net.heal()
        for i, node in cluster.nodes.items():
            if node.paused:
                cluster.resume(i)
            if not node.alive:
                await cluster.restart(i)
        ids = sorted(cluster.nodes)
        for _ in range(5):
            sts = await cluster.statuses()
            if all(st is not None and st["voters"] == ids and not st["joint"] for st in sts.values()):
                return
            await self._change_membership(cluster, ids, retain=False)
            await asyncio.sleep(0.5)

    async def final_checks(self, cluster: LocalCluster) -> None:
        problems = self.result.problems
        try:
            statuses = await cluster.converge(timeout=45.0)
        except ClusterError as exc:
            problems.append(str(exc))
            return
        applied = {i: st["applied"] for i, st in statuses.items()}
        self._log("converged", applied=applied)
        self.result.final_term = max(st["term"] for st in statuses.values())
        # final linearizable reads: a lost acknowledged write shows up in the history
        final: Dict[str, Optional[str]] = {}
        async with cluster.client(timeout=10.0) as kv:
            for key in self.keys:
                op = self.history.start("get", key, client=-1)
                try:
                    item = await kv.get(key)
                except RaftError as exc:
                    problems.append(f"final read of {key!r} failed: {exc}")
                    self.history.fail(op)
                    continue
                self.history.finish(op, output=None if item is None else item.value)
                final[key] = None if item is None else item.value
                if item is not None:
                    self._seen(item.value, item.revision)
        # every node's own copy (consistency=local) is the same, and is what was read
        for i, node in cluster.nodes.items():
            async with cluster.client([node.url], timeout=5.0) as kv:
                try:
                    items = await kv.list(consistency="local")
                except RaftError as exc:
                    problems.append(f"node {i}: local list failed: {exc}")
                    continue
            local = {it.key: it.value for it in items if it.key in final or it.key in self.keys}
            expect = {k: v for k, v in final.items() if v is not None}
            if local != expect:
                diff = {k: (local.get(k), expect.get(k)) for k in set(local) | set(expect)
                        if local.get(k) != expect.get(k)}
                problems.append(f"node {i} (applied {applied[i]}) differs from the linearizable reads: "
                                f"{{key: (node, read)}} = {diff}")
        for value, revs in self.revisions.items():
            if len(revs) > 1:
                problems.append(f"value {value!r} seen with revisions {sorted(revs)}: one write, one revision")

    async def run(self) -> RunResult:
        net = await FaultNetworkProcess.start()
        workers: List[asyncio.Task] = []
        try:
            async with LocalCluster(self.n, self.dir, faults=net) as cluster:
                await cluster.start()
                self.t0 = time.monotonic()
                workers = await self.start_workers(cluster)
                try:
                    await self.nemesis(cluster, net)
                finally:
                    await self.heal_all(cluster, net)
                # a little traffic on the healed cluster, then stop the workers
                await asyncio.sleep(1.0)
                self.stop.set()
                done, pending = await asyncio.wait(workers, timeout=15.0)
                for t in pending:
                    t.cancel()
                for t in done:
                    if t.exception() is not None:
                        self.result.problems.append(f"worker crashed: {t.exception()!r}")
                await self.final_checks(cluster)
                self.result.bytes_dropped = (await net.stats())["dropped"]
        finally:
            self.stop.set()
            for t in workers:
                t.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            await net.close()
        r = self.check_history()
        self.result.verdict = r.status
        self.result.keys = r.keys_checked
        if not r.ok:
            self.result.problems.append(r.explain())
        self.result.ops = self.history.counts()
        self.result.history = self.history.operations()
        if self.unexpected:
            self.result.problems.append(f"unexpected client errors: {self.unexpected}")
        self.result.elapsed = time.monotonic() - self.t0
        self._save()
        return self.result

    async def start_workers(self, cluster: LocalCluster) -> List[asyncio.Task]:
        """The clients that make the history: `workers_per_node` per node, each starting there."""
        workers = []
        wid = 0
        for home in sorted(cluster.nodes):
            for _ in range(self.workers_per_node):
                wid += 1
                workers.append(asyncio.ensure_future(self.worker(wid, cluster, home)))
        return workers

    def check_history(self):
        return check(self.history.operations(), budget=5_000_000)

    def _save(self) -> None:
        res = self.result
        res.replay = (f"CHAOS_SEEDS={self.seed} CHAOS_SECONDS={self.seconds:g} python -m pytest "
                      f"tests/chaos/test_chaos.py -k 'nodes{self.n}' -s -p no:cacheprovider")
        if res.ok and not os.environ.get("CHAOS_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)
            res.run_dir = None
            return
        dump_history(self.history.operations(), os.path.join(self.dir, "history.json"))
        with open(os.path.join(self.dir, "schedule.json"), "w", encoding="utf-8") as f:
            json.dump({"nodes": self.n, "seed": self.seed, "seconds": self.seconds, "events": self.schedule,
                       "faults": res.faults, "ops": res.ops, "problems": res.problems}, f, indent=1)


async def chaos(nodes: int, seed: int, seconds: float, **kw) -> RunResult:
    return await Run(nodes, seed, seconds, **kw).run()


__all__ = ["FAULTS", "Run", "RunResult", "chaos"]
