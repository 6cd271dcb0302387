"""The WAL record codec (openraft_fast._core.walrec) and its CRC-32C."""
import random

import pytest

from openraft_fast._core import walrec
from openraft_fast._core.types import BLANK, MEMBERSHIP, NORMAL, Membership
from openraft_fast.testing.conformance import leader, make_slice


def test_crc32c_known_vectors_and_software_agrees():
    assert walrec.crc32c(b"123456789") == 0xE3069283
    assert walrec.crc32c(b"") == 0
    assert walrec.crc32c(bytes(32)) == 0x8A9136AA
    rng = random.Random(1)
    for n in list(range(0, 40)) + [1000, 4097]:
        data = rng.randbytes(n)
        assert walrec.crc32c(data) == walrec.crc32c_software(data)
        # Continuation equals one pass.
        k = n // 3
        assert walrec.crc32c(data[k:], walrec.crc32c(data[:k])) == walrec.crc32c(data)


def _slice():
    return make_slice(3, [(leader(1, 1), NORMAL, b"ab"), (leader(1, 1), BLANK, None),
                          (leader(2, 3, std=True).to_committed(), NORMAL, bytearray(b"xyz")),
                          (leader(4, 2), MEMBERSHIP, Membership({1, 2})), (leader(4, 2), NORMAL, memoryview(b"m"))])


def test_round_trip_and_offsets():
    s = _slice()
    out, offs = walrec.encode(s, lambda m: b"M", base=100)
    status, end, first, count, offs2, payloads, kinds, runs, last = walrec.decode(
        out + bytes(50), 0, 3, True, lambda b: Membership({1, 2}))
    assert (status, end, first, count) == (walrec.END, len(out), 3, 5)
    assert [int.from_bytes(offs[i:i + 8], "little") - 100 for i in range(0, 40, 8)] == \
        [int.from_bytes(offs2[i:i + 8], "little") for i in range(0, 40, 8)]
    assert payloads == [b"ab", None, b"xyz", Membership({1, 2}), b"m"]
    assert kinds == bytes([NORMAL, BLANK, NORMAL, MEMBERSHIP, NORMAL])
    assert [r[0] for r in runs] == [3, 5, 6] and runs[1][1].std and last == leader(4, 2)


def test_refuses_non_bytes_payload():
    with pytest.raises(TypeError):
        walrec.encode(make_slice(1, [(leader(1, 1), NORMAL, "text")]), None)


def test_every_truncation_is_torn_and_every_flip_detected():
    out, _ = walrec.encode(_slice(), lambda m: b"M")
    last_start = int.from_bytes(walrec.encode(_slice(), lambda m: b"M")[1][32:40], "little")
    for cut in range(last_start + 1, len(out)):
        st = walrec.decode(out[:cut], 0, 3, False)
        assert st[0] == walrec.TORN and st[1] == last_start and st[3] == 4
    for i in range(len(out)):
        bad = bytearray(out)
        bad[i] ^= 0x10
        st = walrec.decode(bytes(bad), 0, 3, False)
        assert st[0] != walrec.END or st[3] < 5, f"flip at {i} undetected"
    assert walrec.decode(out, 0, 4, False)[0] == walrec.BAD_INDEX
