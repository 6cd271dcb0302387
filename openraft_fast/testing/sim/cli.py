"""Command line: run one seed (replay) or many (in parallel with --jobs)."""
import argparse
import multiprocessing
import sys
import time

from openraft_fast.testing.sim.runner import run_seed


def _run(args):
    seed, steps, mode, trace, params = args
    return run_seed(seed, steps, mode, trace_lines=trace, params=params)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m openraft_fast.testing.sim",
                                description="Deterministic simulation of openraft_fast engines.")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--seed", type=int, help="run this one seed (replay)")
    g.add_argument("--seeds", type=int, default=20, help="how many seeds to run")
    p.add_argument("--start", type=int, default=0, help="first seed of --seeds")
    p.add_argument("--steps", type=int, default=20000, help="steps of random load and faults per run")
    p.add_argument("--mode", choices=("adv", "std", "both"), default="both", help="leader id mode")
    p.add_argument("--jobs", type=int, default=1, help="parallel processes")
    p.add_argument("--trace", type=int, default=0, help="print this many trace lines of a failing run")
    p.add_argument("-v", "--verbose", action="store_true", help="print every run, with its counters")
    p.add_argument("--install", choices=("sync", "async"), default="sync",
                   help="InstallSnapshot durable before the next command (sync) or completing later")
    p.add_argument("--strict-truncate", action="store_true",
                   help="refuse truncating committed entries even right before a covering InstallSnapshot")
    p.add_argument("--profile", choices=("default", "harsh", "stability"), default="default",
                   help="harsh: 5/7 voters, more drops, duplicates, late acks, long partitions, crashes; "
                        "stability: routine operations only (restart storms, removed nodes left running, "
                        "bridges, one-way cuts, healing), no election no fault explains")
    p.add_argument("--forward", action="store_true",
                   help="writes sent to a follower are forwarded to the leader it knows (client_write(forward=True))")
    p.add_argument("--sync-log", type=float, default=None, metavar="SHARE",
                   help="share of nodes whose log store is durable on append (Engine(sync_log=True)); "
                        "default: drawn per seed from 0, 0.5, 1")
    a = p.parse_args(argv)

    modes = ("adv", "std") if a.mode == "both" else (a.mode,)
    seeds = [a.seed] if a.seed is not None else list(range(a.start, a.start + a.seeds))
    if a.seed is not None and a.trace == 0:
        a.trace = 100
    params = {}
    if a.install != "sync":
        params["install"] = a.install
    if a.strict_truncate:
        params["strict_truncate"] = True
    if a.profile != "default":
        params["profile"] = a.profile
    if a.forward:
        params["forward"] = True
    if a.sync_log is not None:
        params["sync_log"] = a.sync_log
    work = [(s, a.steps, m, a.trace, params or None) for m in modes for s in seeds]
    t0 = time.perf_counter()
    results = []

    def collect(r):
        results.append(r)
        _report(r, a.verbose or a.seed is not None)
        if not a.verbose and len(work) > 1 and len(results) % 100 == 0:
            print(f"... {len(results)}/{len(work)} runs, {sum(not x.ok for x in results)} failed, "
                  f"{time.perf_counter() - t0:.0f}s", flush=True)

    if a.jobs > 1 and len(work) > 1:
        with multiprocessing.Pool(a.jobs) as pool:
            for r in pool.imap_unordered(_run, work):
                collect(r)
    else:
        for w in work:
            collect(_run(w))
    wall = time.perf_counter() - t0
    failures = [r for r in results if not r.ok]
    sim_time = sum(r.sim_time for r in results)
    print(f"\n{len(results)} runs ({len(seeds)} seeds x {'/'.join(modes)}, {a.steps} steps), "
          f"{len(failures)} failed, {sim_time:.0f}s simulated, {wall:.1f}s wall")
    for r in sorted(failures, key=lambda r: (r.mode, r.seed)):
        print(f"  FAIL {r.error.splitlines()[0]}\n       {r.minimal_replay}")
    return 1 if failures else 0


def _report(r, verbose):
    if r.ok:
        if verbose:
            print(f"ok   {r.mode} seed={r.seed} {r.wall:.1f}s wall, {r.sim_time:.1f}s simulated\n     "
                  + r.description + "\n     " + ", ".join(f"{k}={v}" for k, v in sorted(r.stats.items())),
                  flush=True)
        return
    print(f"FAIL {r.mode} seed={r.seed}: {r.error}", flush=True)
    if r.description:
        print("     " + r.description)
    if r.trace:
        print(r.trace)
    print(f"     replay: {r.minimal_replay}", flush=True)
    sys.stdout.flush()
