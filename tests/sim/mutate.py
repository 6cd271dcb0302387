"""Does the simulator catch real bugs? Break one Raft rule in a copy of the engine, build the
copy, run the simulator's default seeds on it, and expect a failure.

    python tests/sim/mutate.py [NAME ...] [--seeds N] [--steps M] [--jobs J]

Each mutation is an exact text edit of openraft_fast/_core/engine.pyx; the working tree is
never touched. Exit status 0 when every mutant was caught. A build takes ~1 minute.
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
ENGINE = os.path.join("openraft_fast", "_core", "engine.pyx")

# name -> (what the rule is, [(exact text, replacement), ...])
MUTATIONS = {
    "commit_older_term": (
        "a leader commits an entry of an older term by counting replicas (Raft 5.4.2)",
        [("        if accepted > self._committed_index() and accepted >= self.leader_first_log_id.index:\n",
          "        if accepted > self._committed_index():\n")],
    ),
    "skip_vote_persist": (
        "votes are not persisted (SaveVote never emitted)",
        [(re.compile(r"^( *)self\.out\.append\(SaveVote\((.*)\)\)$", re.M), r"\1pass  # mutant: SaveVote(\2) dropped")],
    ),
    "truncate_committed": (
        "a follower truncates from the first entry it receives, even entries it holds and that "
        "are committed (no skip of matching entries, no committed guard)",
        [("            first_conflict = self.log.c_first_conflict(entries)\n",
          "            first_conflict = entries.start if entries.start >= self.log.first_index else self.log.first_index\n"),
         ("        if after < self._committed_index():\n            raise AssertionError(",
          "        if False:\n            raise AssertionError(")],
    ),
}


def make_mutant(name: str, workdir: str) -> None:
    """Copy the package with its built extensions, edit the engine, rebuild only what changed."""
    for item in ("openraft_fast", "setup.py", "pyproject.toml", "README.md"):
        src = os.path.join(ROOT, item)
        dst = os.path.join(workdir, item)
        if os.path.isdir(src):
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.html"))
        else:
            shutil.copy2(src, dst)
    if os.path.isdir(os.path.join(ROOT, "build")):
        shutil.copytree(os.path.join(ROOT, "build"), os.path.join(workdir, "build"))
    path = os.path.join(workdir, ENGINE)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for old, new in MUTATIONS[name][1]:
        if isinstance(old, re.Pattern):
            text, n = old.subn(new, text)
        else:
            n = text.count(old)
            text = text.replace(old, new)
        if n == 0:
            raise SystemExit(f"mutation {name}: the engine no longer has the text it edits; update {__file__}")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    os.utime(path)
    subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace", "-j", "2"], cwd=workdir, check=True,
                   stdout=subprocess.DEVNULL)


def run_sim(workdir: str, seeds: int, steps: int, jobs: int) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=workdir)
    return subprocess.run([sys.executable, "-m", "openraft_fast.testing.sim", "--seeds", str(seeds), "--steps",
                           str(steps), "--mode", "both", "--jobs", str(jobs)], cwd=workdir, env=env,
                          capture_output=True, text=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", default=list(MUTATIONS), help=f"mutations ({', '.join(MUTATIONS)})")
    p.add_argument("--seeds", type=int, default=int(os.environ.get("SIM_SEEDS", "80")))
    p.add_argument("--steps", type=int, default=int(os.environ.get("SIM_STEPS", "15000")))
    p.add_argument("--jobs", type=int, default=2)
    a = p.parse_args(argv)
    missed = []
    for name in a.names:
        rule = MUTATIONS[name][0]
        with tempfile.TemporaryDirectory(prefix=f"mutant-{name}-") as workdir:
            t0 = time.perf_counter()
            make_mutant(name, workdir)
            built = time.perf_counter() - t0
            r = run_sim(workdir, a.seeds, a.steps, a.jobs)
        lines = (r.stdout + r.stderr).strip().splitlines()
        summary = next((line for line in reversed(lines) if " runs (" in line), lines[-1] if lines else "")
        failures = [line for line in lines if line.startswith("FAIL")]
        caught = r.returncode != 0 and bool(failures)
        print(f"{'CAUGHT' if caught else 'MISSED'} {name}: {rule}")
        print(f"    {summary}  (build {built:.0f}s)")
        for line in failures[:3]:
            print(f"    {line}")
        if not caught:
            missed.append(name)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
