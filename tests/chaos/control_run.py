"""A chaos run of the control plane (issue 22): the nemesis of chaos_run (kills, pauses,
partitions, one-way cuts, resets, delays, membership changes) against

- transfers between accounts (a linearizable read of two balances, then a transaction that
  moves an amount only if neither changed), and cas chains on other keys: the multi-key history
  must be linearizable (testing.lincheck_txn) and the balances must always sum to the total;
- a watcher of the accounts from revision 1: every change once, in revision order, no gap (its
  changes rebuild exactly the final balances, and every acknowledged transfer is among them);
- lease keepers: a key on a lease kept alive for a while, then left to expire: no linearizable
  read may find it gone before its TTL has passed since the send time of the last keepalive
  the service acknowledged (one monotonic clock: every process runs on this host), and it is
  gone in the end;
- lock contenders: holders never overlap, and fencing tokens only grow.
"""
from __future__ import annotations

import asyncio
import random
import time
from typing import Any, Dict, List, Optional, Tuple

from chaos_run import Run
from openraft_fast.kv.errors import KvError, KvOutcomeUnknown, KvUnavailable
from openraft_fast.testing import lincheck_txn
from openraft_fast.testing.lincheck_txn import TxnOp
from openraft_fast.testing.localcluster import LocalCluster

ACCOUNTS = [f"acct/{i}" for i in range(4)]
START = 100
LEASE_TTL = 2.0
LOCK_TTL = 5.0


def _amount(value: Optional[str]) -> int:
    return int(value.split("@")[0]) if value else 0


class ControlRun(Run):
    def __init__(self, nodes: int, seed: int, seconds: float, **kw) -> None:
        super().__init__(nodes, seed, seconds, **kw)
        self.keys = ACCOUNTS + ["chain/0", "chain/1"]
        self.txns: List[TxnOp] = []
        self.transfers: List[Tuple[int, str, str, str, str]] = []  # (revision, a, new a, b, new b) acknowledged
        self.watched: List[Tuple[int, str, str, Optional[str]]] = []
        self.leases: List[Dict[str, Any]] = []                    # per lease key: what its keeper saw
        self.holds: List[Tuple[float, float, int, bool]] = []     # (acquired, released, token, lost)
        self.txn_seq = 0

    # ------------------------------------------------------------------ workers
    async def start_workers(self, cluster: LocalCluster) -> List[asyncio.Task]:
        async with cluster.client(timeout=30.0) as kv:
            r = await kv.txn(success=[{"put": {"key": a, "value": f"{START}@init"}} for a in ACCOUNTS])
        self.txns.append(TxnOp(0.0, [], [("put", a, f"{START}@init") for a in ACCOUNTS], [], time.monotonic(), True,
                               [None] * len(ACCOUNTS), client=0, id=self._next_id()))
        self.transfers.append((r.revision, "", "", "", ""))
        workers = [asyncio.ensure_future(self.watcher(cluster, r.revision))]
        ids = sorted(cluster.nodes)
        for i in range(2 * len(ids)):
            workers.append(asyncio.ensure_future(self.transferrer(100 + i, cluster, ids[i % len(ids)])))
        workers.append(asyncio.ensure_future(self.chainer(200, cluster)))
        for i in range(2):
            workers.append(asyncio.ensure_future(self.lease_keeper(300 + i, cluster)))
        for i in range(3):
            workers.append(asyncio.ensure_future(self.locker(400 + i, cluster)))
        return workers

    def _next_id(self) -> int:
        self.txn_seq += 1
        return 1_000_000 + self.txn_seq

    def _client(self, cluster: LocalCluster, home: Optional[int] = None, **kw):
        urls = [n.url for n in cluster.nodes.values()]
        if home is not None:
            urls = [cluster.nodes[home].url] + [u for u in urls if u != cluster.nodes[home].url]
        opts = dict(timeout=3.0, request_timeout=1.0, retry_ambiguous_writes=False, max_backoff=0.2)
        opts.update(kw)
        return cluster.client(urls, **opts)

    async def transferrer(self, wid: int, cluster: LocalCluster, home: int) -> None:
        rnd = random.Random(f"{self.n}-{self.seed}-{wid}")
        seq = 0
        async with self._client(cluster, home) as kv:
            while not self.stop.is_set():
                a, b = rnd.sample(ACCOUNTS, 2)
                last: Dict[str, Optional[str]] = {}
                await self._get(kv, wid, a, "linearizable", last)
                await self._get(kv, wid, b, "linearizable", last)
                if a not in last or b not in last:
                    continue
                seq += 1
                va, vb = last[a], last[b]
                x = rnd.randint(1, 10)
                na, nb = f"{_amount(va) - x}@{wid}.{seq}", f"{_amount(vb) + x}@{wid}.{seq}"
                compares = [{"key": a, "target": "value", "op": "==", "value": va},
                            {"key": b, "target": "value", "op": "==", "value": vb}]
                op = TxnOp(time.monotonic(), [(a, "value", "==", va), (b, "value", "==", vb)],
                           [("put", a, na), ("put", b, nb)], [], client=wid, id=self._next_id())
                self.txns.append(op)
                try:
                    r = await kv.txn(compare=compares, success=[{"put": {"key": a, "value": na}},
                                                                {"put": {"key": b, "value": nb}}])
                except KvError as exc:
                    if not isinstance(exc, (KvOutcomeUnknown, KvUnavailable)) or \
                            (isinstance(exc, KvUnavailable) and not exc.ambiguous):
                        self.txns.remove(op)         # refused before it was appended
                    continue                         # else: outcome unknown, stays pending
                op.response, op.succeeded = time.monotonic(), r.succeeded
                op.results = [None, None] if r.succeeded else []
                if r.succeeded:
                    self.transfers.append((r.revision, a, na, b, nb))

    async def chainer(self, wid: int, cluster: LocalCluster) -> None:
        """cas chains on their own keys (single-key ops in the same history)."""
        rnd = random.Random(f"{self.n}-{self.seed}-{wid}")
        last: Dict[str, Optional[str]] = {}
        seq = 0
        async with self._client(cluster) as kv:
            while not self.stop.is_set():
                key = rnd.choice(["chain/0", "chain/1"])
                seq += 1
                if rnd.random() < 0.3:
                    await self._get(kv, wid, key, "linearizable", last)
                else:
                    await self._cas(kv, wid, key, f"c{wid}.{seq}", last)

    async def watcher(self, cluster: LocalCluster, from_revision: int) -> None:
        async with self._client(cluster, timeout=60.0) as kv:
            async for change in kv.watch("acct/", from_revision=from_revision):
                self.watched.append((change.revision, change.type, change.key, change.value))

    async def lease_keeper(self, wid: int, cluster: LocalCluster) -> None:
        rnd = random.Random(f"{self.n}-{self.seed}-{wid}")
        n = 0
        async with self._client(cluster, timeout=3.0) as kv:
            while not self.stop.is_set():
                n += 1
                sent = time.monotonic()
                try:
                    lease = await kv.grant_lease(LEASE_TTL)
                    key = f"lease/{wid}.{n}"
                    await kv.put(key, "x", lease=lease)
                except KvError:
                    continue
                rec: Dict[str, Any] = {"key": key, "lease": lease, "acked": sent, "absent": []}
                self.leases.append(rec)
                until = time.monotonic() + rnd.uniform(0.5, 4.0)
                while time.monotonic() < until and not self.stop.is_set():
                    await asyncio.sleep(LEASE_TTL / 4)
                    t = time.monotonic()
                    try:
                        await kv.keepalive(lease)
                        rec["acked"] = max(rec["acked"], t)
                    except KvError:
                        pass
                # Left to expire: read it until it is gone.
                while not self.stop.is_set():
                    t0 = time.monotonic()
                    try:
                        item = await kv.get(key)
                    except KvError:
                        continue
                    if item is None:
                        rec["absent"].append((t0, time.monotonic()))
                        break
                    await asyncio.sleep(0.1)

    async def locker(self, wid: int, cluster: LocalCluster) -> None:
        rnd = random.Random(f"{self.n}-{self.seed}-{wid}")
        async with self._client(cluster, timeout=10.0) as kv:
            while not self.stop.is_set():
                try:
                    async with kv.lock("chaos-lock", ttl=LOCK_TTL) as lock:
                        acquired = time.monotonic()
                        await asyncio.sleep(rnd.uniform(0.02, 0.2))
                        released = time.monotonic()
                        self.holds.append((acquired, released, lock.fencing_token, lock.lost.is_set()))
                except KvError:
                    await asyncio.sleep(0.1)

    # ------------------------------------------------------------------ checks
    def check_history(self):
        return lincheck_txn.check(self.history.operations() + self.txns, budget=5_000_000)

    async def final_checks(self, cluster: LocalCluster) -> None:
        await super().final_checks(cluster)
        problems = self.result.problems
        async with cluster.client(timeout=10.0) as kv:
            final = {a: (await kv.get(a)) for a in ACCOUNTS}
            # The watcher catches up with the final revision of the accounts.
            top = max(item.revision for item in final.values() if item is not None)
            deadline = time.monotonic() + 20.0
            while (not self.watched or self.watched[-1][0] < top) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            # Every lease is left to expire now: its key goes (a new leader restarts the TTL
            # once, so within a few TTLs).
            deadline = time.monotonic() + 4 * LEASE_TTL + 5.0
            for rec in self.leases:
                while await kv.get(rec["key"]) is not None:
                    if time.monotonic() > deadline:
                        problems.append(f"{rec['key']}: still there {4 * LEASE_TTL + 5.0:g}s after nobody keeps "
                                        f"its lease alive")
                        break
                    await asyncio.sleep(0.2)
        total = sum(_amount(item.value if item else None) for item in final.values())
        if total != START * len(ACCOUNTS):
            problems.append(f"balances sum to {total}, not {START * len(ACCOUNTS)}: {final}")
        problems.extend(self._watch_problems({a: (item.value if item else None) for a, item in final.items()}))
        for rec in self.leases:
            for t0, t1 in rec["absent"]:
                if t1 < rec["acked"] + LEASE_TTL:
                    problems.append(f"{rec['key']}: found gone {t1 - rec['acked']:.3f}s after the last acknowledged "
                                    f"keepalive was sent (TTL {LEASE_TTL}s)")
        holds = sorted(self.holds)
        for (a0, a1, ta, lost_a), (b0, b1, tb, lost_b) in zip(holds, holds[1:]):
            if tb <= ta:
                problems.append(f"fencing tokens did not grow: {ta} then {tb}")
            if b0 < a1 and not (lost_a or lost_b):
                problems.append(f"lock holders overlapped: [{a0:.3f}, {a1:.3f}] token {ta} and [{b0:.3f}, {b1:.3f}] "
                                f"token {tb}")

    async def run(self):
        result = await super().run()
        result.ops.update(transfers=len(self.transfers) - 1, watched=len(self.watched),
                          leases=sum(1 for r in self.leases if r["absent"]), locks=len(self.holds))
        return result

    def _watch_problems(self, final: Dict[str, Optional[str]]) -> List[str]:
        out = []
        seen = set()
        state: Dict[str, Optional[str]] = {}
        prev = 0
        for revision, kind, key, value in self.watched:
            if revision < prev:
                out.append(f"watch went back from revision {prev} to {revision}")
            if (revision, key) in seen:
                out.append(f"watch delivered {key!r} at revision {revision} twice")
            seen.add((revision, key))
            prev = revision
            state[key] = value if kind == "put" else None
        if state != final:
            out.append(f"the watched changes rebuild {state}, not the final balances {final}")
        for revision, a, na, b, nb in self.transfers[1:]:
            if (revision, a) not in seen or (revision, b) not in seen:
                out.append(f"the transfer at revision {revision} ({a}, {b}) was never watched")
        return out[:20]

    def _save(self) -> None:
        super()._save()
        self.result.replay = (f"CHAOS_SEEDS={self.seed} CHAOS_SECONDS={self.seconds:g} python -m pytest "
                              f"tests/chaos/test_control_chaos.py -s -p no:cacheprovider")
