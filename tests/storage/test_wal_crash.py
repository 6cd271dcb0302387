"""Crash test of WalLogStore: a writer process (wal_crash_writer.py) appends, votes, truncates
and purges, reporting what became durable; the test kills it with SIGKILL at random moments,
reopens the log and checks that every entry whose on_flushed fired is there with its bytes,
that the log has no hole (its first..last are all readable) and that the vote never went back.

WAL_CRASH_ITERS=N runs N kills (default 30, about 20-30 s); WAL_CRASH_SEED=S picks the
schedule (default 1). A failure prints the line that replays it.
"""
import asyncio
import os
import random
import sys

from openraft_fast.storage import WalLogStore

from sigkill import ROOT, run_and_kill
from wal_crash_writer import payload

ITERS = int(os.environ.get("WAL_CRASH_ITERS", "30"))
SEED = int(os.environ.get("WAL_CRASH_SEED", "1"))
WRITER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wal_crash_writer.py")
SEGMENT_BYTES = 16 << 10        # small: rotation, and purges of whole segments, happen often


class Model:
    """What the writers reported durable so far, over every incarnation."""

    def __init__(self) -> None:
        self.acked: dict = {}       # index -> term of an entry whose on_flushed fired
        self.vote = 0               # highest term whose save_vote returned
        self.purged = 0             # highest index whose purge returned

    def feed(self, line: str) -> None:
        kind, *args = line.split()
        if kind == "F":
            first, last, term = map(int, args)
            for i in range(max(first, self.purged + 1), last + 1):
                self.acked[i] = term
        elif kind == "V":
            self.vote = max(self.vote, int(args[0]))
        elif kind == "t":
            after = int(args[0])
            for i in [i for i in self.acked if i > after]:
                del self.acked[i]
        elif kind == "P":
            self.purged = max(self.purged, int(args[0]))
            for i in [i for i in self.acked if i <= self.purged]:
                del self.acked[i]


def _run_writer(path: str, seed: int, kill_after: float) -> list:
    """Start a writer, SIGKILL it `kill_after` seconds after it opened the log; its complete lines."""
    return run_and_kill(WRITER, [path, seed, SEGMENT_BYTES], b"R ", kill_after, "writer")


async def _check(path: str, model: Model, hint: str) -> None:
    st = WalLogStore(path, segment_bytes=SEGMENT_BYTES)
    try:
        vote = await st.read_vote()
        got_vote = 0 if vote is None else vote.leader_id.term
        assert got_vote >= model.vote, f"vote went back: {got_vote} < {model.vote}; {hint}"
        state = await st.get_log_state()
        first = st.first_index
        last = 0 if state.last_log_id is None else state.last_log_id.index
        assert first - 1 >= model.purged, f"purge went back: first index {first}, purged {model.purged}; {hint}"
        top = max(model.acked, default=0)
        assert last >= top, f"log ends at {last}, but entry {top} was flushed; {hint}"
        if last >= first:
            s = await st.get_log_entries(first, last + 1)      # the whole log: no hole
            assert s.start == first and len(s) == last - first + 1, hint
            for i in range(first, last + 1):
                term = s.log_id_at(i).leader_id.term
                assert s.payloads[i - first] == payload(i, term), f"entry {i}: wrong bytes; {hint}"
                want = model.acked.get(i)
                assert want is None or want == term, f"entry {i}: term {term}, flushed in {want}; {hint}"
    finally:
        await st.close()


def test_sigkill_at_random_moments_loses_nothing_flushed(tmp_path):
    rng = random.Random(SEED)
    path = str(tmp_path / "wal")
    model = Model()
    flushed_total = 0
    for it in range(ITERS):
        hint = (f"iteration {it}; replay: WAL_CRASH_SEED={SEED} WAL_CRASH_ITERS={it + 1} "
                f"{sys.executable} -m pytest {os.path.relpath(__file__, ROOT)}")
        lines = _run_writer(path, rng.randrange(1 << 30), rng.uniform(0.0, 0.4))
        for line in lines:
            model.feed(line)
        flushed_total += sum(1 for x in lines if x.startswith("F"))
        asyncio.run(asyncio.wait_for(_check(path, model, hint), 60))
    assert flushed_total > ITERS, f"the writers flushed only {flushed_total} batches: the test tested little"
