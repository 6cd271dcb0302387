"""Does the simulator catch real bugs? Break one Raft rule in a copy of the engine, build the
copy, run the simulator's default seeds and its targeted scenarios on it, and expect a failure.

    python tests/sim/mutate.py [NAME ...] [--seeds N] [--steps M] [--jobs J] [--scenarios EXPR]

Each mutation is an exact text edit of the engine's sources (engine.pyx and the engine_*.pxi it
includes); the working tree is never touched. The scenarios are the tests of tests/sim that
`pytest -k EXPR` selects (default: the Figure 8 ones), run in the copy; a mutant is caught when
the seeds or the scenarios fail.
Exit status 0 when every mutant was caught. A build takes ~15 s to 1 minute.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORE = os.path.join("openraft_fast", "_core")


def engine_sources(root: str):
    """engine.pyx and the engine_*.pxi files it includes, where the engine's rules live."""
    pxi = sorted(f for f in os.listdir(os.path.join(root, CORE)) if f.startswith("engine_") and f.endswith(".pxi"))
    return [os.path.join(CORE, f) for f in ["engine.pyx"] + pxi]

# name -> (what the rule is, [(exact text, replacement), ...])
MUTATIONS = {
    "commit_older_term": (
        "a leader commits an entry of an older term by counting replicas (Raft 5.4.2)",
        [("    if accepted > self._committed_index() and accepted >= self.leader_first_log_id.index:\n",
          "    if accepted > self._committed_index():\n")],
    ),
    "skip_vote_persist": (
        "votes are not persisted (SaveVote never emitted)",
        [(re.compile(r"^( *)self\.out\.append\(SaveVote\((.*)\)\)$", re.M), r"\1pass  # mutant: SaveVote(\2) dropped")],
    ),
    "truncate_committed": (
        "a follower truncates from the first entry it receives, even entries it holds and that "
        "are committed (no skip of matching entries, no committed guard)",
        [("        first_conflict = self.log.c_first_conflict(entries)\n",
          "        first_conflict = entries.start if entries.start >= self.log.first_index else self.log.first_index\n"),
         ("    if after < self._committed_index():\n        raise AssertionError(",
          "    if False:\n        raise AssertionError(")],
    ),
}


def make_mutant(name: str, workdir: str) -> None:
    """Copy the package with its built extensions, edit the engine, rebuild only what changed."""
    for item in ("openraft_fast", "csrc", "setup.py", "pyproject.toml", "README.md", os.path.join("tests", "sim")):
        src = os.path.join(ROOT, item)
        dst = os.path.join(workdir, item)
        if os.path.isdir(src):
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.html"))
        else:
            shutil.copy2(src, dst)
    if os.path.isdir(os.path.join(ROOT, "build")):
        shutil.copytree(os.path.join(ROOT, "build"), os.path.join(workdir, "build"))
    texts = {}
    for rel in engine_sources(workdir):
        with open(os.path.join(workdir, rel), encoding="utf-8") as f:
            texts[rel] = f.read()
    edited = set()
    for old, new in MUTATIONS[name][1]:
        n = 0
        for rel, text in texts.items():
            if isinstance(old, re.Pattern):
                texts[rel], k = old.subn(new, text)
            else:
                k = text.count(old)
                texts[rel] = text.replace(old, new)
            if k:
                edited.add(rel)
            n += k
        if n == 0:
            raise SystemExit(f"mutation {name}: the engine no longer has the text it edits; update {__file__}")
    for rel in edited:
        path = os.path.join(workdir, rel)
        with open(path, "w", encoding="utf-8") as f:
            f.write(texts[rel])
        os.utime(path)
    subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace", "-j", "2"], cwd=workdir, check=True,
                   stdout=subprocess.DEVNULL)


def run_sim(workdir: str, seeds: int, steps: int, jobs: int) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=workdir)
    return subprocess.run([sys.executable, "-m", "openraft_fast.testing.sim", "--seeds", str(seeds), "--steps",
                           str(steps), "--mode", "both", "--jobs", str(jobs)], cwd=workdir, env=env,
                          capture_output=True, text=True)


def run_scenarios(workdir: str, expr: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=workdir, COLUMNS="400")
    return subprocess.run([sys.executable, "-m", "pytest", os.path.join("tests", "sim"), "-q", "-p", "no:cacheprovider",
                           "-k", expr], cwd=workdir, env=env, capture_output=True, text=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", default=list(MUTATIONS), help=f"mutations ({', '.join(MUTATIONS)})")
    p.add_argument("--seeds", type=int, default=int(os.environ.get("SIM_SEEDS", "80")))
    p.add_argument("--steps", type=int, default=int(os.environ.get("SIM_STEPS", "15000")))
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--scenarios", default="figure8",
                   help="pytest -k expression of the tests/sim scenarios to run too ('' for none)")
    a = p.parse_args(argv)
    missed = []
    for name in a.names:
        rule = MUTATIONS[name][0]
        with tempfile.TemporaryDirectory(prefix=f"mutant-{name}-") as workdir:
            t0 = time.perf_counter()
            make_mutant(name, workdir)
            built = time.perf_counter() - t0
            r = run_sim(workdir, a.seeds, a.steps, a.jobs)
            s = run_scenarios(workdir, a.scenarios) if a.scenarios else None
        lines = (r.stdout + r.stderr).strip().splitlines()
        summary = next((line for line in reversed(lines) if " runs (" in line), lines[-1] if lines else "")
        failures = [line for line in lines if line.startswith("FAIL")]
        caught_seeds = r.returncode != 0 and bool(failures)
        caught_scenarios = False
        if s is not None:
            slines = (s.stdout + s.stderr).strip().splitlines()
            ssummary = slines[-1] if slines else ""
            sfailures = [line for line in slines if line.startswith("FAILED")]
            # Exit status 1: tests ran and some failed (2 and up: interrupted, usage or collection errors).
            caught_scenarios = s.returncode == 1 and bool(sfailures)
            if s.returncode not in (0, 1, 5):
                ssummary = f"pytest exited with status {s.returncode}: {ssummary}"
        caught = caught_seeds or caught_scenarios
        print(f"{'CAUGHT' if caught else 'MISSED'} {name}: {rule}")
        print(f"    seeds: {summary}  (build {built:.0f}s)")
        for line in failures[:3]:
            print(f"    {line}")
        if s is not None:
            print(f"    scenarios (-k {a.scenarios}): {ssummary}")
            for line in sfailures[:4]:
                print(f"    {line[:300]}")
        if not caught:
            missed.append(name)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
