"""`openraft-fast demo` end to end (real processes): the summary says zero lost writes, and the
demo leaves no node process or data behind, also when interrupted with Ctrl-C (SIGINT)."""
import os
import re
import signal
import subprocess
import sys
import time

import openraft_fast

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(openraft_fast.__file__)))
CLI = "import sys; from openraft_fast.cli.main import main; sys.exit(main(sys.argv[1:]))"


def _demo(*args):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.Popen([sys.executable, "-c", CLI, "demo", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=env, text=True)


def _processes_using(path):
    """Pids whose command line mentions `path` (the demo's data directory)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if path.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            continue
    return found


def _base_dir(text):
    m = re.search(r"data and logs in (\S+)\)", text)
    assert m, text
    return m.group(1)


def test_demo_survives_the_leader_kill_and_loses_nothing():
    proc = _demo("--nodes", "3", "--seconds", "1.5", "--writers", "8")
    try:
        out, _ = proc.communicate(timeout=150)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    assert re.search(r"acknowledged writes lost\s+0\b", out), out
    acked = int(re.search(r"writes acknowledged\s+(\d+)", out).group(1))
    assert acked > 0
    assert re.search(r"SIGKILL leader n\d", out) and "new leader" in out and "caught up" in out, out
    assert re.search(r"^PASS: \d+ acknowledged writes, 0 lost, failover \d+ ms$", out, re.M), out
    up = next(line for line in out.splitlines() if "cluster up" in line)
    assert re.search(r"leader n(\d) \(http://127\.0\.0\.1:\d+\); ", up) and up.count("n" + up.split("leader n")[1][0] + " ") == 1, up
    assert "removed at exit unless --keep" in out
    base = _base_dir(out)
    assert not os.path.exists(base)              # cleaned up
    assert _processes_using(base) == []


def test_demo_cleans_up_on_ctrl_c():
    proc = _demo("--nodes", "3", "--seconds", "30")
    lines = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:   # wait until it writes, then interrupt
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "writes acknowledged" in line:
                break
        base = _base_dir("".join(lines))
        assert _processes_using(base), "the nodes should be running"
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, "".join(lines) + out
    deadline = time.monotonic() + 10
    while _processes_using(base) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_using(base) == []
    assert not os.path.exists(base)


def test_demo_without_the_kv_extra_says_what_to_install():
    code = ("import sys; sys.modules['aiohttp'] = None; from openraft_fast.cli.main import main; "
            "sys.exit(main(['demo']))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, PYTHONPATH=ROOT))
    assert p.returncode == 2 and p.stdout == "", (p.stdout, p.stderr)
    assert p.stderr.strip().splitlines() == ["openraft-fast demo: error: aiohttp is not installed: "
                                             "pip install 'openraft-fast[kv]'"]
