"""`openraft-fast demo`: a local cluster of real `serve` processes surviving the SIGKILL of its leader.

It starts the nodes (data in a temporary directory), runs a write workload with a live progress
line, kills the leader with SIGKILL, shows the failover (the time without a leader, the first
write acknowledged after the kill), restarts the node and shows it catch up, then reads back
every acknowledged write and prints a summary (lost writes: must be zero). Everything is cleaned
up at the end, also on Ctrl-C.
"""
from __future__ import annotations

import asyncio
import shutil
import signal
import sys
import tempfile
import time
from typing import Dict, List, Optional

from openraft_fast.cli.args import bounded
from openraft_fast.testing.localcluster import ClusterError, LocalCluster


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="a local cluster surviving the SIGKILL of its leader",
                       description="Start a local cluster of serve processes, write to it, SIGKILL the "
                                   "leader, restart it, and check that no acknowledged write was lost.")
    p.add_argument("--nodes", type=bounded(int, 3, what="a node count", high=7), default=3, help="cluster size (3-7, default 3)")
    p.add_argument("--writers", type=bounded(int, 1, what="an integer"), default=16, help="concurrent writers (default 16)")
    p.add_argument("--seconds", type=bounded(float, 0, inclusive=False, what="seconds", high=600), default=3.0,
                   help="seconds of writes before the kill, and again after it (default 3)")
    p.add_argument("--keep", action="store_true", help="keep the data directory and node logs")


class Workload:
    """Writers putting unique keys; remembers every acknowledged write and when it was acked."""

    def __init__(self, cluster: LocalCluster, writers: int) -> None:
        self.cluster = cluster
        self.writers = writers
        self.acked: Dict[str, str] = {}
        self.ack_times: List[float] = []
        self.unknown = 0
        self.failed = 0
        self.stop = asyncio.Event()
        self.tasks: List[asyncio.Task] = []

    def start(self) -> None:
        self.tasks = [asyncio.ensure_future(self._writer(w)) for w in range(self.writers)]

    async def _writer(self, w: int) -> None:
        from openraft_fast.kv import KvOutcomeUnknown
        from openraft_fast.errors import RaftError
        urls = self.cluster.urls
        urls = urls[w % len(urls):] + urls[:w % len(urls)]
        seq = 0
        async with self.cluster.client(urls, timeout=5.0, request_timeout=1.0, retry_ambiguous_writes=False,
                                       max_backoff=0.1) as kv:
            while not self.stop.is_set():
                seq += 1
                key, value = f"demo/{w}/{seq}", f"v{w}.{seq}"
                try:
                    await kv.put(key, value)
                except KvOutcomeUnknown:
                    self.unknown += 1       # may or may not have applied: not counted as acknowledged
                    continue
                except RaftError:
                    self.failed += 1
                    continue
                self.acked[key] = value
                self.ack_times.append(time.monotonic())

    async def finish(self) -> None:
        self.stop.set()
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=10.0)
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


class Progress:
    """One live line on a terminal; a plain line per second otherwise."""

    def __init__(self, out=sys.stdout) -> None:
        self.out = out
        self.tty = out.isatty()
        self.last_plain = 0.0

    def show(self, text: str) -> None:
        if self.tty:
            self.out.write("\r\x1b[2K" + text)
            self.out.flush()
        elif time.monotonic() - self.last_plain >= 1.0:
            self.last_plain = time.monotonic()
            self.out.write(text + "\n")
            self.out.flush()

    def say(self, text: str) -> None:
        if self.tty:
            self.out.write("\r\x1b[2K")
        self.out.write(text + "\n")
        self.out.flush()


async def _run_for(seconds: float, work: Workload, cluster: LocalCluster, progress: Progress, t0: float,
                   label: str) -> None:
    end = time.monotonic() + seconds
    prev_n, prev_t = len(work.acked), time.monotonic()
    rate = 0.0
    while time.monotonic() < end:
        await asyncio.sleep(0.25)
        now = time.monotonic()
        n = len(work.acked)
        rate = 0.7 * rate + 0.3 * (n - prev_n) / max(now - prev_t, 1e-6) if rate else (n - prev_n) / (now - prev_t)
        prev_n, prev_t = n, now
        progress.show(f"[{now - t0:6.1f}s] {label}: {n} writes acknowledged ({rate:,.0f}/s), "
                      f"{work.unknown} outcome unknown, {work.failed} refused")


async def demo(cluster: LocalCluster, writers: int, seconds: float, progress: Progress) -> int:
    say = progress.say
    nodes, base_dir = len(cluster.nodes), cluster.base_dir
    work: Optional[Workload] = None
    try:
        t0 = time.monotonic()
        say(f"starting {nodes} nodes (data and logs in {base_dir}); the directory is removed at exit unless --keep")
        leader = await cluster.start()
        others = ", ".join(f"n{i} {n.url}" for i, n in cluster.nodes.items() if i != leader)
        say(f"cluster up in {time.monotonic() - t0:.1f}s: leader n{leader} ({cluster.nodes[leader].url}); {others}")
        work = Workload(cluster, writers)
        t0 = time.monotonic()
        work.start()
        await _run_for(seconds, work, cluster, progress, t0, f"writing, leader n{leader}")

        # --- the failover
        victim = cluster.nodes[leader]
        before = len(work.acked)
        killed_at = time.monotonic()
        victim.kill()
        say(f"[{killed_at - t0:6.1f}s] SIGKILL leader n{leader} (pid {victim.proc.pid if victim.proc else '?'}) "
            f"after {before} acknowledged writes")
        new_leader = await cluster.leader(timeout=30.0, exclude=(leader,))
        no_leader = time.monotonic() - killed_at
        say(f"[{time.monotonic() - t0:6.1f}s] n{new_leader} is the new leader: {no_leader * 1000:.0f} ms without a leader")
        await _run_for(seconds / 2, work, cluster, progress, t0, f"writing, leader n{new_leader}, n{leader} down")
        after = [t for t in work.ack_times if t > killed_at]
        first_ack = (after[0] - killed_at) if after else None
        if first_ack is not None:
            say(f"[{time.monotonic() - t0:6.1f}s] first write acknowledged {first_ack * 1000:.0f} ms after the kill")

        # --- the restart and catch-up
        restarted_at = time.monotonic()
        await cluster.restart(leader)
        say(f"[{time.monotonic() - t0:6.1f}s] n{leader} restarted from its data directory")
        caught_up = None
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline:
            st, lst = await cluster.status(leader), await cluster.status(new_leader)
            if st is not None and lst is not None:
                lag = (lst["committed"] or 0) - (st["applied"] or 0)
                progress.show(f"[{time.monotonic() - t0:6.1f}s] n{leader} catching up: applied {st['applied']}, "
                              f"leader committed {lst['committed']} (lag {lag}), {len(work.acked)} writes acknowledged")
                if lag <= 0:
                    caught_up = time.monotonic() - restarted_at
                    break
            await asyncio.sleep(0.1)
        if caught_up is None:
            say(f"n{leader} did not catch up within 30s")
        else:
            say(f"[{time.monotonic() - t0:6.1f}s] n{leader} caught up {caught_up:.2f}s after its restart")
        await _run_for(seconds / 2, work, cluster, progress, t0, "writing, all nodes up")
        await work.finish()

        # --- read back every acknowledged write
        say(f"reading back {len(work.acked)} acknowledged writes (linearizable reads)...")
        lost = await _read_back(cluster, work.acked)
        say("")
        say("summary")
        say(f"  nodes                         {nodes}")
        say(f"  writes acknowledged           {len(work.acked)}")
        say(f"  writes with unknown outcome   {work.unknown} (not counted as acknowledged)")
        say(f"  leader killed                 n{leader} (SIGKILL) at {killed_at - t0:.1f}s")
        say(f"  time without a leader         {no_leader * 1000:.0f} ms (new leader n{new_leader})")
        say("  first write after the kill    "
            + (f"{first_ack * 1000:.0f} ms" if first_ack is not None else "none"))
        say("  restarted node caught up      " + (f"{caught_up:.2f} s" if caught_up is not None else "no"))
        say(f"  acknowledged writes lost      {lost}")
        failover = first_ack if first_ack is not None else no_leader
        problems = ([f"{lost} acknowledged writes lost"] if lost else []) + \
            ([] if caught_up is not None else [f"n{leader} did not catch up"])
        if problems:
            say(f"FAIL: {'; '.join(problems)} ({len(work.acked)} acknowledged writes)")
            return 1
        say(f"PASS: {len(work.acked)} acknowledged writes, 0 lost, failover {failover * 1000:.0f} ms")
        return 0
    finally:
        if work is not None:
            await work.finish()
        await cluster.close()


async def _read_back(cluster: LocalCluster, acked: Dict[str, str]) -> int:
    from openraft_fast.errors import RaftError
    lost = 0
    sem = asyncio.Semaphore(32)
    async with cluster.client(timeout=10.0) as kv:
        async def one(key: str, value: str) -> bool:
            async with sem:
                try:
                    item = await kv.get(key)
                except RaftError:
                    item = None
                return item is not None and item.value == value
        results = await asyncio.gather(*(one(k, v) for k, v in acked.items()))
    lost = sum(1 for ok in results if not ok)
    return lost


async def _interruptible(work):
    """Run `work`; Ctrl-C (SIGINT) cancels it, so its cleanup runs, then KeyboardInterrupt. A
    signal handler on the loop, not Python's default one: that raises KeyboardInterrupt inside
    whatever callback runs, and a transport's error handling can swallow it."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(work)
    interrupted = []

    def on_sigint() -> None:
        interrupted.append(True)
        task.cancel()

    loop.add_signal_handler(signal.SIGINT, on_sigint)
    try:
        return await task
    except asyncio.CancelledError:
        if interrupted:
            raise KeyboardInterrupt from None
        raise
    finally:
        loop.remove_signal_handler(signal.SIGINT)


def main(args) -> int:
    from openraft_fast._aio import run
    from openraft_fast.kv.endpoints import missing_service_dependency
    missing = missing_service_dependency()
    if missing:
        print(f"openraft-fast demo: error: {missing}", file=sys.stderr)
        return 2
    base = tempfile.mkdtemp(prefix="openraft-fast-demo-")
    progress = Progress()
    cluster = LocalCluster(args.nodes, base)
    code = 1
    try:
        code = run(_interruptible(demo(cluster, args.writers, args.seconds, progress)))
    except KeyboardInterrupt:
        progress.say("interrupted: stopping the nodes")
        code = 130
    except ClusterError as exc:
        progress.say(f"FAIL: openraft-fast demo: {exc}")
        code = 1
    finally:
        for node in cluster.nodes.values():     # whatever happened above, no node outlives the demo
            node.kill()
        if args.keep or code not in (0, 130):
            progress.say(f"data and node logs kept in {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    return code


__all__ = ["add_parser", "demo", "main"]
