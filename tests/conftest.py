"""Fixtures shared by every suite that drives nodes from a test body (integration, kv, tcp,
replicated, ...): `run` runs the body on a fresh event loop, once on uvloop and once on stock
asyncio (`loop_kind`), bounded in time."""
import asyncio

import pytest

from openraft_fast import _aio

LOOPS = ("uvloop", "asyncio")
# No test may take longer than this (seconds), whatever happens inside it.
TEST_TIMEOUT = 30.0


@pytest.fixture(params=LOOPS)
def loop_kind(request):
    """The event loop the test runs on: "uvloop" or "asyncio"."""
    if request.param == "uvloop":
        pytest.importorskip("uvloop")
    return request.param


@pytest.fixture
def run(loop_kind):
    """run(coro, timeout=TEST_TIMEOUT): run a test body on a fresh loop of `loop_kind`."""
    use_uvloop = loop_kind == "uvloop"

    def runner(coro, timeout: float = TEST_TIMEOUT):
        async def bounded():
            loop = asyncio.get_running_loop()
            is_uv = type(loop).__module__.startswith("uvloop")
            assert is_uv == use_uvloop, f"asked for {loop_kind}, running on {type(loop)}"
            task = asyncio.ensure_future(coro)
            done, _ = await asyncio.wait({task}, timeout=timeout)
            if not done:
                task.cancel()
                await asyncio.wait({task}, timeout=1.0)
                raise AssertionError(f"test body did not finish within {timeout}s")
            return task.result()

        return _aio.run(bounded(), use_uvloop=use_uvloop)

    return runner
