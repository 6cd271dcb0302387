"""StallWatch reports a blocked event loop once per stall, with its length and where it was."""
import asyncio
import logging
import time

import pytest

from openraft_fast.stall_watch import StallWatch


def _hold_the_loop(seconds):
    time.sleep(seconds)         # a callback that never yields


async def _run(holds, caplog, stacks=False):
    # A threshold well above what a loaded test machine's scheduling can add, holds well above it.
    watch = StallWatch(0.3, interval=0.01, stacks=stacks).start()
    try:
        for seconds in holds:
            await asyncio.sleep(0.1)
            _hold_the_loop(seconds)
        await asyncio.sleep(0.2)          # the watch sees the loop turn again
    finally:
        watch.close()
    return watch


def test_a_stall_is_reported_with_its_length(caplog):
    caplog.set_level(logging.WARNING, logger="openraft_fast.stall")
    watch = asyncio.run(_run([0.8], caplog))
    assert watch.stalls == 1
    assert 0.75 <= watch.longest < 2.0
    [rec] = [r for r in caplog.records if r.name == "openraft_fast.stall"]
    assert "event loop blocked for" in rec.getMessage()
    assert "_hold_the_loop" not in rec.getMessage()        # no thread, no stack


def test_with_stacks_it_says_where_the_loop_was(caplog):
    caplog.set_level(logging.WARNING, logger="openraft_fast.stall")
    watch = asyncio.run(_run([0.8], caplog, stacks=True))
    assert watch.stalls == 1
    assert 0.75 <= watch.longest < 2.0
    [rec] = [r for r in caplog.records if r.name == "openraft_fast.stall"]
    assert "event loop blocked for" in rec.getMessage()
    assert "_hold_the_loop" in rec.getMessage()


def test_short_pauses_are_not_reported(caplog):
    caplog.set_level(logging.WARNING, logger="openraft_fast.stall")
    watch = asyncio.run(_run([0.02, 0.03, 0.02], caplog))
    assert watch.stalls == 0
    assert not [r for r in caplog.records if r.name == "openraft_fast.stall"]


def test_two_stalls_two_reports(caplog):
    caplog.set_level(logging.WARNING, logger="openraft_fast.stall")
    watch = asyncio.run(_run([0.8, 0.8], caplog))
    assert watch.stalls == 2


def test_threshold_must_be_positive():
    with pytest.raises(ValueError):
        StallWatch(0)
