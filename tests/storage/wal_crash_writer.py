"""The writer process of the WAL crash test (test_wal_crash.py): appends batches to a
WalLogStore, saves increasing votes, truncates and purges now and then, and reports on stdout
(one flushed line each) what became durable, until it is killed:

  R <last index> <vote term>   opened
  F <first> <last> <term>      on_flushed fired for the batch <first>..<last>, appended in <term>
  V <term>                     save_vote(term) returned
  t <index>                    about to truncate after <index> (what is after it may go)
  P <index>                    purge up to <index> returned

Entry i appended in term T has the payload `payload(i, T)`, so the parent can check the bytes.
Usage: wal_crash_writer.py DIR SEED SEGMENT_BYTES
"""
import asyncio
import random
import sys

from openraft_fast._core.types import NORMAL, Vote
from openraft_fast.storage import WalLogStore
from openraft_fast.testing.conformance import leader, make_slice

MAX_SECONDS = 30.0      # never outlive a parent that failed to kill us


def payload(i: int, term: int) -> bytes:
    return b"%d:%d;" % (i, term) * (1 + (i * 7 + term) % 13)


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def main(path: str, seed: int, segment_bytes: int) -> None:
    rng = random.Random(seed)
    st = WalLogStore(path, segment_bytes=segment_bytes)
    vote = await st.read_vote()
    term = (vote.leader_id.term if vote is not None else 0) + 1
    state = await st.get_log_state()
    last = 0 if state.last_log_id is None else state.last_log_id.index
    say(f"R {last} {term - 1}")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + MAX_SECONDS
    await st.save_vote(Vote.new(term, 1, committed=True))
    say(f"V {term}")
    while loop.time() < deadline:
        r = rng.random()
        first = st.first_index
        if r < 0.02:
            term += 1
            await st.save_vote(Vote.new(term, 1, committed=True))
            say(f"V {term}")
        elif r < 0.04 and last >= first:
            to = max(first - 1, last - rng.randrange(0, 40))
            await st.flush()        # every F line of the entries it may drop comes before this
            say(f"t {to}")
            await st.truncate_after(to)
            last = to
        elif r < 0.06 and last - first > 3000:
            upto = last - rng.randrange(500, 2000)
            lid = (await st.get_log_entries(upto, upto + 1)).log_id_at(upto)
            await st.purge(lid)
            say(f"P {upto}")
        else:
            n = rng.choice((1, 1, 3, 17, 64, 200))
            s = make_slice(last + 1, [(leader(term, 1), NORMAL, payload(i, term)) for i in range(last + 1, last + 1 + n)])
            done = loop.create_future()
            end = last + n

            def flushed(start=last + 1, end=end, term=term, done=done):
                say(f"F {start} {end} {term}")
                done.set_result(None)
            st.append(s, flushed)
            last = end
            if rng.random() < 0.5:
                await done          # otherwise pipelined: the next batch goes out before this sync
    await st.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
