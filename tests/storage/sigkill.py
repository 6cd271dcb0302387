"""Run a script as a child process and SIGKILL it: the harness of the crash tests."""
import os
import signal
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_and_kill(script: str, args, ready: bytes, kill_after: float, what: str) -> list:
    """Start `script args`; once it printed a line starting with `ready`, let it run
    `kill_after` seconds more, then SIGKILL it. Returns its complete stdout lines (a line cut by
    the kill is not a report)."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, script, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, cwd=ROOT)
    lines: list = []
    up = threading.Event()

    def read():
        for raw in proc.stdout:
            if raw.endswith(b"\n"):
                lines.append(raw.decode())
                if raw.startswith(ready):
                    up.set()
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if not up.wait(30):
            raise AssertionError(f"{what} did not come up: {proc.stderr.read1(4000)!r}")
        time.sleep(kill_after)
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited early ({proc.returncode}): {proc.stderr.read1(4000)!r}")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        reader.join(10)
        proc.stdout.close()
        proc.stderr.close()
    return lines
