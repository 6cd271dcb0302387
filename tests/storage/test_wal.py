"""WalLogStore: durability across reopen, recovery from torn tails, refusal of corruption,
the directory lock, foreign layouts and disk errors."""
import asyncio
import errno
import os
import shutil

import msgpack
import pytest

from openraft_fast._core.types import NORMAL, Vote
from openraft_fast.errors import StorageError
from openraft_fast.storage import WalLogStore
from openraft_fast.testing.faults import FaultyOs
from openraft_fast.testing.conformance import assert_entries_equal, leader, log_id, make_slice


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


def _entries(start, n, term=1):
    return make_slice(start, [(leader(term, 1), NORMAL, b"p%d" % (start + i)) for i in range(n)])


async def _append(store, s):
    fut = asyncio.get_running_loop().create_future()
    store.append(s, lambda: fut.done() or fut.set_result(None))
    await fut


async def _fill(path, batches, segment_bytes=4096):
    st = WalLogStore(path, segment_bytes=segment_bytes)
    nxt = 1
    for n in batches:
        await _append(st, _entries(nxt, n))
        nxt += n
    last_off = st._segs[-1].offsets[-1]
    seg_path = st._segs[-1].path
    await st.save_vote(Vote.new(3, 1, committed=True))
    st.save_committed(log_id(1, 1, nxt - 2))
    await st.close()
    return nxt - 1, seg_path, last_off


def test_reopen_gives_same_vote_log_committed(tmp_path):
    async def main():
        last, _, _ = await _fill(tmp_path / "w", [5, 50, 1, 200])
        st = WalLogStore(tmp_path / "w", segment_bytes=4096)
        assert len(st._segs) >= 2          # rotation happened
        assert await st.read_vote() == Vote.new(3, 1, committed=True)
        assert await st.read_committed() == log_id(1, 1, last - 1)
        assert (await st.get_log_state()).last_log_id == log_id(1, 1, last)
        assert_entries_equal(await st.get_log_entries(1, last + 1), _entries(1, last))
        await st.close()
    run(main())


def test_torn_tail_at_every_byte_of_the_last_record(tmp_path):
    async def main():
        last, seg, off = await _fill(tmp_path / "w", [3, 4])
        size = off + 12 + 26 + len(b"p%d" % last)
        for cut in range(off, size):
            for zero_fill in (False, True):
                d = tmp_path / "c"
                shutil.copytree(tmp_path / "w", d)
                p = d / os.path.basename(seg)
                if zero_fill:        # a torn write into preallocated space
                    with open(p, "r+b") as f:
                        f.seek(cut)
                        f.write(bytes(size - cut))
                else:                # a cut file
                    os.truncate(p, cut)
                st = WalLogStore(d, segment_bytes=4096)
                assert (await st.get_log_state()).last_log_id == log_id(1, 1, last - 1), (cut, zero_fill)
                assert_entries_equal(await st.get_log_entries(1, last), _entries(1, last - 1))
                await _append(st, _entries(last, 1, term=2))     # the log goes on
                await st.close()
                st = WalLogStore(d, segment_bytes=4096)
                assert (await st.get_log_state()).last_log_id == log_id(2, 1, last)
                await st.close()
                shutil.rmtree(d)
    run(main())


def test_bit_flips_before_the_last_record_raise_naming_file_and_offset(tmp_path):
    async def main():
        last, seg, off = await _fill(tmp_path / "w", [6], segment_bytes=1 << 16)
        for pos in range(0, off, 3):
            d = tmp_path / "c"
            shutil.copytree(tmp_path / "w", d)
            p = d / os.path.basename(seg)
            with open(p, "r+b") as f:
                f.seek(pos)
                b = f.read(1)[0]
                f.seek(pos)
                f.write(bytes([b ^ 0x40]))
            with pytest.raises(StorageError) as ei:
                WalLogStore(d, segment_bytes=1 << 16)
            assert os.path.basename(seg) in str(ei.value) and "offset" in str(ei.value)
            shutil.rmtree(d)
    run(main())


def test_second_opener_refused_until_closed(tmp_path):
    async def main():
        st = WalLogStore(tmp_path / "w")
        with pytest.raises(StorageError, match="already open"):
            WalLogStore(tmp_path / "w")
        await st.close()
        st2 = WalLogStore(tmp_path / "w")
        await st2.close()
    run(main())


def test_foreign_or_broken_layout_is_an_error(tmp_path):
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "data.db").write_bytes(b"x")
    with pytest.raises(StorageError, match="not an openraft_fast WAL"):
        WalLogStore(tmp_path / "f")
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "FORMAT").write_bytes(b"something else 9\n")
    with pytest.raises(StorageError, match="unknown WAL format"):
        WalLogStore(tmp_path / "g")

    async def main():
        await _fill(tmp_path / "w", [40, 40, 40])
        os.unlink(tmp_path / "w" / "meta")
        with pytest.raises(StorageError, match="meta"):
            WalLogStore(tmp_path / "w", segment_bytes=4096)
    run(main())


def test_enospc_on_write_is_a_storage_error_and_loses_nothing_acknowledged(tmp_path):
    async def main():
        fo = FaultyOs()
        st = WalLogStore(tmp_path / "w", segment_bytes=4096, _os=fo)
        await _append(st, _entries(1, 10))
        fo.fail["pwrite"] = errno.ENOSPC
        with pytest.raises(StorageError, match="ENOSPC"):
            st.append(_entries(11, 5), lambda: None)
        with pytest.raises(StorageError, match="ENOSPC"):      # stays failed
            st.append(_entries(11, 5), lambda: None)
        await st.close()
        st = WalLogStore(tmp_path / "w", segment_bytes=4096)
        assert (await st.get_log_state()).last_log_id == log_id(1, 1, 10)
        await st.close()
    run(main())


def test_save_vote_failure_raises_and_keeps_old_vote_on_disk(tmp_path):
    async def main():
        fo = FaultyOs()
        st = WalLogStore(tmp_path / "w", _os=fo)
        await st.save_vote(Vote.new(2, 1))
        fo.fail["fsync"] = errno.ENOSPC
        with pytest.raises(StorageError, match="ENOSPC"):
            await st.save_vote(Vote.new(3, 1))
        await st.close()
        st = WalLogStore(tmp_path / "w")
        assert await st.read_vote() == Vote.new(2, 1)
        await st.close()
    run(main())


def test_missing_last_segment_is_an_error_not_a_shorter_log(tmp_path):
    async def main():
        await _fill(tmp_path / "w", [40] * 6)
        segs = sorted(n for n in os.listdir(tmp_path / "w") if n.startswith("seg-"))
        assert len(segs) >= 3
        shutil.copytree(tmp_path / "w", tmp_path / "c")
        os.unlink(tmp_path / "c" / segs[-1])
        with pytest.raises(StorageError, match="missing") as ei:
            WalLogStore(tmp_path / "c", segment_bytes=4096)
        assert segs[-1] in str(ei.value)
        for n in segs:                      # every segment gone
            os.unlink(tmp_path / "w" / n)
        with pytest.raises(StorageError, match="missing"):
            WalLogStore(tmp_path / "w", segment_bytes=4096)
    run(main())


def test_newest_segment_recorded_before_its_entries_are_acknowledged(tmp_path):
    async def main():
        st = WalLogStore(tmp_path / "w", segment_bytes=4096)
        nxt = 1
        for _ in range(6):
            await _append(st, _entries(nxt, 30))
            nxt += 30
            newest = st._segs[-1]
            # No close: what is on disk now is what a crash leaves.
            with open(tmp_path / "w" / "meta", "rb") as f:
                assert msgpack.unpackb(f.read()[4:])["last_seg"] == newest.first
        await st.close()
    run(main())


def test_truncation_that_drops_segments_keeps_the_missing_segment_check_right(tmp_path):
    async def main():
        st = WalLogStore(tmp_path / "w", segment_bytes=4096)
        for start in range(1, 241, 30):
            await _append(st, _entries(start, 30))
        assert len(st._segs) >= 3
        second = st._segs[1].first
        await st.truncate_after(second - 1)         # drops every segment from the second on
        await st.close()
        st = WalLogStore(tmp_path / "w", segment_bytes=4096)     # no false "missing" error
        assert (await st.get_log_state()).last_log_id == log_id(1, 1, second - 1)
        for start in range(second, second + 120, 30):
            await _append(st, _entries(start, 30, term=2))
        await st.truncate_after(0)
        await st.close()
        st = WalLogStore(tmp_path / "w", segment_bytes=4096)
        assert (await st.get_log_state()).last_log_id is None
        await st.close()
    run(main())


def test_failed_sync_fails_flush_and_calls_the_error_handler(tmp_path):
    async def main():
        fo = FaultyOs()
        st = WalLogStore(tmp_path / "w", segment_bytes=4096, _os=fo)
        errors = []
        st.set_error_handler(errors.append)
        await _append(st, _entries(1, 3))
        assert errors == []
        fo.fail["fdatasync"] = errno.EIO
        flushed = []
        st.append(_entries(4, 2), lambda: flushed.append(1))
        with pytest.raises(StorageError, match="EIO"):
            await asyncio.wait_for(st.flush(), 5)
        for _ in range(100):
            if errors:
                break
            await asyncio.sleep(0.01)
        assert errors and isinstance(errors[0], StorageError) and "EIO" in str(errors[0])
        del fo.fail["fdatasync"]        # a later sync that succeeds still acknowledges nothing
        with pytest.raises(StorageError):
            await st.flush()
        with pytest.raises(StorageError, match="EIO"):
            st.append(_entries(6, 1), lambda: None)
        with pytest.raises(StorageError, match="EIO"):
            await st.save_vote(Vote.new(1, 1))
        await asyncio.sleep(0.05)
        assert flushed == []
        await st.close()
        st = WalLogStore(tmp_path / "w", segment_bytes=4096)
        assert (await st.get_log_state()).last_log_id.index >= 3
        await st.close()
    run(main())


def test_close_now_releases_the_directory(tmp_path):
    st = WalLogStore(tmp_path / "w")
    st.close_now()
    WalLogStore(tmp_path / "w").close_now()


def test_purge_interrupted_with_an_older_segment_left_reopens(tmp_path):
    async def main():
        await _fill(tmp_path / "w", [30] * 14)
        segs = sorted(n for n in os.listdir(tmp_path / "w") if n.startswith("seg-"))
        assert len(segs) >= 4
        oldest = (tmp_path / "w" / segs[0]).read_bytes()
        third = int(segs[2][4:-4])
        st = WalLogStore(tmp_path / "w", segment_bytes=4096)
        await st.purge(log_id(1, 1, third + 1))
        await st.close()
        # The unlink of the oldest segment did not reach the disk; the second one's did.
        (tmp_path / "w" / segs[0]).write_bytes(oldest)
        st = WalLogStore(tmp_path / "w", segment_bytes=4096)
        assert st.first_index == third + 2
        last = (await st.get_log_state()).last_log_id.index
        assert_entries_equal(await st.get_log_entries(third + 2, last + 1), _entries(third + 2, last - third - 1))
        await st.close()
        assert segs[0] not in os.listdir(tmp_path / "w")
    run(main())


def test_truncate_interrupted_after_dropping_segments_leaves_a_prefix(tmp_path):
    async def main():
        last, _, _ = await _fill(tmp_path / "w", [30] * 14)
        fo = FaultyOs()
        st = WalLogStore(tmp_path / "w", segment_bytes=4096, _os=fo)
        second = st._segs[1].first
        fo.fail["ftruncate"] = errno.EIO          # the cut of the kept segment fails (a crash there)
        with pytest.raises(StorageError, match="EIO"):
            await st.truncate_after(second - 10)
        await st.close()
        st = WalLogStore(tmp_path / "w", segment_bytes=4096)
        got = (await st.get_log_state()).last_log_id.index
        assert second - 10 <= got < last
        assert_entries_equal(await st.get_log_entries(1, got + 1), _entries(1, got))
        await st.close()
    run(main())


def test_unsynced_bytes_after_the_end_are_zeroed_not_left_as_garbage(tmp_path):
    async def main():
        last, seg, off = await _fill(tmp_path / "w", [3, 4])
        with open(seg, "r+b") as f:         # a later page survived a power loss, this one not
            f.seek(off + 4096)
            f.write(os.urandom(20000))     # the appends below end inside it
        st = WalLogStore(tmp_path / "w", segment_bytes=1 << 16)
        assert (await st.get_log_state()).last_log_id == log_id(1, 1, last)
        for start in range(last + 1, last + 200, 20):       # appends run over the old garbage
            await _append(st, _entries(start, 20, term=2))
        await st.close()
        st = WalLogStore(tmp_path / "w", segment_bytes=1 << 16)
        assert (await st.get_log_state()).last_log_id == log_id(2, 1, last + 200)
        assert_entries_equal(await st.get_log_entries(last + 1, last + 201), _entries(last + 1, 200, term=2))
        await st.close()
    run(main())


def test_torn_last_record_before_an_empty_newer_segment(tmp_path):
    async def main():
        last, seg, off = await _fill(tmp_path / "w", [3, 4])
        os.truncate(seg, off + 20)                        # the last record torn
        with open(tmp_path / "w" / f"seg-{last + 1:020d}.wal", "wb") as f:
            f.write(bytes(4096))                          # made, never written
        st = WalLogStore(tmp_path / "w", segment_bytes=4096)
        assert (await st.get_log_state()).last_log_id == log_id(1, 1, last - 1)
        await _append(st, _entries(last, 2, term=2))
        await st.close()
        st = WalLogStore(tmp_path / "w", segment_bytes=4096)
        assert (await st.get_log_state()).last_log_id == log_id(2, 1, last + 1)
        await st.close()
    run(main())


def test_committed_id_reaches_disk_without_a_close(tmp_path):
    async def main():
        st = WalLogStore(tmp_path / "w")
        await _append(st, _entries(1, 5))
        st.save_committed(log_id(1, 1, 4))
        for _ in range(500):                    # the writer thread saves it within META_INTERVAL
            with open(tmp_path / "w" / "meta", "rb") as f:
                if msgpack.unpackb(f.read()[4:])["committed"] is not None:
                    break
            await asyncio.sleep(0.01)
        st.close_now()                          # as a crash: no final metadata write
        st = WalLogStore(tmp_path / "w")
        assert await st.read_committed() == log_id(1, 1, 4)
        await st.close()
    run(main())


def test_random_ops_with_syncs_in_flight_match_a_model(tmp_path):
    """Appends not waited for, truncations and purges while syncs are in flight (tiny segments:
    they drop segments the writer thread has yet to sync); the log matches a model, on line
    and after reopening, and every on_flushed fires."""
    import random
    from openraft_fast._core.log import LogBuffer

    async def main():
        rng = random.Random(5)
        st = WalLogStore(tmp_path / "w", segment_bytes=4096)
        model = LogBuffer()
        fired = []
        calls = 0
        term = 1
        for step in range(400):
            r = rng.random()
            last = model.last_index
            if r < 0.15 and last >= model.first_index:
                to = max(model.first_index - 1, last - rng.randrange(0, 60))
                await st.truncate_after(to)
                if to == model.first_index - 1 and model.purged is not None:
                    model.reset(model.purged)
                else:
                    model.truncate_after(to)
                term += 1
            elif r < 0.2 and last - model.first_index > 50:
                upto = model.log_id_at(last - 20)
                await st.purge(upto)
                model.purge_upto(upto.index)
            else:
                s = _entries(last + 1, rng.randrange(1, 40), term=term)
                st.append(s, lambda: fired.append(1))
                model.append_slice(s)
                calls += 1
            if step % 50 == 0:
                await asyncio.sleep(0)
        await st.flush()
        for _ in range(100):
            if len(fired) == calls:
                break
            await asyncio.sleep(0.01)
        assert len(fired) == calls
        for store in (st, None):
            if store is None:
                await st.close()
                store = WalLogStore(tmp_path / "w", segment_bytes=4096)
            assert (await store.get_log_state()) == (model.purged, model.last_log_id)
            assert_entries_equal(await store.get_log_entries(model.first_index, model.last_index + 1),
                                 model.slice(model.first_index, model.last_index + 1))
        await store.close()
    run(main())


def test_enospc_creating_a_segment_fails_the_append_and_keeps_the_log(tmp_path):
    async def main():
        fo = FaultyOs()
        st = WalLogStore(tmp_path / "w", segment_bytes=4096, _os=fo)
        await _append(st, _entries(1, 30))
        fo.fail["ftruncate"] = errno.ENOSPC         # preallocating the next segment fails
        with pytest.raises(StorageError, match="ENOSPC"):
            for start in range(31, 400, 30):
                await _append(st, _entries(start, 30))
        good = st.last_index
        await st.close()
        st = WalLogStore(tmp_path / "w", segment_bytes=4096)
        assert (await st.get_log_state()).last_log_id == log_id(1, 1, good)
        await _append(st, _entries(good + 1, 30))
        await st.close()
    run(main())
