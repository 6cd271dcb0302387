"""OS processes for the TCP benchmark (B3): start follower processes, wait for their ready line,
kill them. Both sides live here: a child prints `READY <port>` once it serves and exits when
its stdin closes (the bench process died, even by kill -9)."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time
from typing import Callable, List, Optional, Sequence

import openraft_fast
from openraft_fast.errors import Timeout

READY = "READY"


# ---- child side ---------------------------------------------------------------------------

def announce_ready(port: int) -> None:
    print(f"{READY} {port}", flush=True)


def exit_with_parent(on_eof: Optional[Callable[[], None]] = None, grace: float = 5.0) -> None:
    """Exit this process when its stdin reaches EOF: the bench process closed it or died.
    `on_eof` (called on the watching thread) may ask the main thread to finish first; the
    process exits anyway `grace` seconds later."""
    def watch():
        try:
            # The raw descriptor, not sys.stdin: a daemon thread holding the buffered reader's
            # lock would abort the interpreter's shutdown.
            while os.read(0, 65536):
                pass
            if on_eof is not None:
                on_eof()
                time.sleep(grace)
        finally:
            os._exit(0)
    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


# ---- parent side --------------------------------------------------------------------------

def _child_env(use_uvloop: Optional[bool]) -> dict:
    env = dict(os.environ)
    # The child imports this very openraft_fast (a source tree or an installed one).
    root = os.path.dirname(os.path.dirname(os.path.abspath(openraft_fast.__file__)))
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    if use_uvloop is False:
        env["OPENRAFT_FAST_NO_UVLOOP"] = "1"
    return env


class Children:
    """Python child processes (`python -m module args`), each announcing its port. Use as
    `async with Children([...]) as kids: kids.ports`; leaving the block kills them all."""

    def __init__(self, argvs: Sequence[Sequence[str]], ready_timeout: float = 20.0,
                 use_uvloop: Optional[bool] = None):
        self._argvs = [list(a) for a in argvs]
        self._ready_timeout = ready_timeout
        self._use_uvloop = use_uvloop
        self._procs: List[asyncio.subprocess.Process] = []
        self._errs: list = []
        self.ports: List[int] = []

    async def __aenter__(self) -> "Children":
        try:
            env = _child_env(self._use_uvloop)
            for argv in self._argvs:
                err = tempfile.TemporaryFile()     # a file, not a pipe: a chatty child never blocks
                self._errs.append(err)
                self._procs.append(await asyncio.create_subprocess_exec(
                    sys.executable, "-m", *argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                    stderr=err, env=env))
            for proc, argv, err in zip(self._procs, self._argvs, self._errs):
                self.ports.append(await self._wait_ready(proc, argv, err))
        except BaseException:
            await self.close()
            raise
        return self

    async def _wait_ready(self, proc, argv, err) -> int:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._ready_timeout
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise Timeout(f"bench child {' '.join(argv)} not ready in {self._ready_timeout}s{_tail(err)}")
            try:
                line = await asyncio.wait_for(proc.stdout.readline(), left)
            except asyncio.TimeoutError:
                continue
            if not line:
                await asyncio.wait_for(proc.wait(), 5.0)
                raise Timeout(f"bench child {' '.join(argv)} exited with {proc.returncode} "
                              f"before it was ready{_tail(err)}")
            words = line.decode(errors="replace").split()
            if len(words) == 2 and words[0] == READY and words[1].isdigit():
                return int(words[1])

    @property
    def pids(self) -> List[int]:
        return [p.pid for p in self._procs]

    def alive(self) -> bool:
        return all(p.returncode is None for p in self._procs)

    async def close(self, grace: float = 2.0) -> None:
        """Close the children's stdin (they exit, after writing a profile if asked to), then
        kill whichever is still running `grace` seconds later."""
        for proc in self._procs:
            if proc.stdin is not None:
                proc.stdin.close()
        for proc in self._procs:
            try:
                await asyncio.wait_for(proc.wait(), grace)
            except asyncio.TimeoutError:
                pass
        for proc in self._procs:
            if proc.returncode is None:
                try:
                    proc.kill()
                except ProcessLookupError:
                    pass
        for proc in self._procs:
            try:
                await asyncio.wait_for(proc.wait(), 5.0)
            except asyncio.TimeoutError:
                pass
        for err in self._errs:
            err.close()
        self._procs, self._errs = [], []

    async def __aexit__(self, *exc) -> None:
        await self.close()


def _tail(err, limit: int = 2000) -> str:
    try:
        err.seek(0)
        text = err.read().decode(errors="replace")[-limit:].strip()
    except (OSError, ValueError):
        return ""
    return f"; its stderr:\n{text}" if text else ""
