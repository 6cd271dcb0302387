"""Unit tests for openraft_fast._core.quorum.

Every quorum set is generated together with a plain-Python spec; the reference predicates
below evaluate the spec straight from the definitions (majority, weight threshold, all
children, `need` children, flexible read/write) and everything the compiled sets answer is
compared with them.
"""
import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openraft_fast._core.quorum import (
    Flexible,
    Hierarchical,
    Joint,
    Majority,
    VoteResult,
    Weighted,
    from_configs,
)

SETTINGS = settings(max_examples=200, deadline=None)


# ----------------------------------------------------------------------------- reference

def ref_voters(spec):
    kind = spec[0]
    if kind == "maj":
        return frozenset(spec[1])
    if kind == "w":
        return frozenset(spec[1])
    if kind in ("joint", "hier"):
        return frozenset().union(*(ref_voters(c) for c in spec[1]))
    if kind == "flex":
        return ref_voters(spec[1]) | ref_voters(spec[2])
    raise AssertionError(spec)


def ref_write(spec, s):
    """Is the set of ids `s` a write quorum of `spec`?"""
    kind = spec[0]
    if kind == "maj":
        members = frozenset(spec[1])
        return 2 * len(members & s) > len(members)
    if kind == "w":
        weights, thr = spec[1], spec[2]
        total = sum(weights.values())
        got = sum(w for v, w in weights.items() if v in s)
        return 2 * got > total if thr is None else got >= thr
    if kind == "joint":
        return all(ref_write(c, s) for c in spec[1])
    if kind == "hier":
        children, need = spec[1], spec[2]
        got = sum(ref_write(c, s) for c in children)
        return 2 * got > len(children) if need is None else got >= need
    if kind == "flex":
        return ref_write(spec[2], s)
    raise AssertionError(spec)


def ref_read(spec, s):
    """Is `s` a read (election) quorum of `spec`?"""
    kind = spec[0]
    if kind in ("maj", "w"):
        return ref_write(spec, s)
    if kind == "joint":
        return all(ref_read(c, s) for c in spec[1])
    if kind == "hier":
        children, need = spec[1], spec[2]
        got = sum(ref_read(c, s) for c in children)
        return 2 * got > len(children) if need is None else got >= need
    if kind == "flex":
        return ref_read(spec[1], s)
    raise AssertionError(spec)


def all_subsets(ids):
    ids = sorted(ids)
    return [frozenset(c) for r in range(len(ids) + 1) for c in itertools.combinations(ids, r)]


def ref_committed(spec, matched):
    """Largest k such that {voters with matched >= k} is a write quorum; 0 if none."""
    voters = ref_voters(spec)
    top = max([matched.get(v, 0) for v in voters] + [0])
    for k in range(top, 0, -1):
        if ref_write(spec, frozenset(v for v in voters if matched.get(v, 0) >= k)):
            return k
    return 0


def ref_safe(read_spec, write_spec):
    """Every read quorum of read_spec intersects every write quorum of write_spec.

    A read quorum R disjoint from a write quorum W lies inside the complement of W, and the
    reference predicates are monotone by definition, so it is enough to check that no write
    quorum leaves a read quorum in its complement.
    """
    voters = ref_voters(read_spec) | ref_voters(write_spec)
    for w in all_subsets(voters):
        if ref_write(write_spec, w) and ref_read(read_spec, voters - w):
            return False
    return True


def test_ref_safe_agrees_with_pairwise_definition():
    """Cross-check the complement shortcut against literal pairwise enumeration."""
    specs = [
        ("maj", (1, 2, 3)),
        ("w", {1: 1, 2: 1, 3: 1, 4: 1}, 2),
        ("w", {1: 2, 2: 2, 3: 2}, 3),
        ("hier", (("maj", (1, 2)), ("maj", (3, 4))), 1),
        ("joint", (("w", {1: 1, 2: 1}, 1), ("w", {2: 1, 3: 1}, 1))),
    ]
    for a in specs:
        for b in specs:
            voters = ref_voters(a) | ref_voters(b)
            subs = all_subsets(voters)
            reads = [s for s in subs if ref_read(a, s)]
            writes = [s for s in subs if ref_write(b, s)]
            assert ref_safe(a, b) == all(r & w for r in reads for w in writes)


def ref_vote(spec, granted, rejected):
    voters = ref_voters(spec)
    if ref_read(spec, frozenset(granted)):
        return VoteResult.WON
    if not ref_read(spec, voters - frozenset(rejected)):
        return VoteResult.LOST
    return VoteResult.PENDING


def build(spec):
    kind = spec[0]
    if kind == "maj":
        return Majority(spec[1])
    if kind == "w":
        if spec[2] is None:
            return Weighted(spec[1])
        return Weighted(spec[1], threshold=spec[2])
    if kind == "joint":
        return Joint([build(c) for c in spec[1]])
    if kind == "hier":
        if spec[2] is None:
            return Hierarchical([build(c) for c in spec[1]])
        return Hierarchical([build(c) for c in spec[1]], need=spec[2])
    if kind == "flex":
        return Flexible(build(spec[1]), build(spec[2]))
    raise AssertionError(spec)


# ----------------------------------------------------------------------------- strategies

IDS = st.integers(0, 9)
voter_lists = st.lists(IDS, min_size=1, max_size=7, unique=True)


@st.composite
def majority_specs(draw):
    return ("maj", tuple(draw(voter_lists)))


@st.composite
def weighted_specs(draw):
    voters = draw(voter_lists)
    weights = {v: draw(st.integers(0, 3)) for v in voters}
    total = sum(weights.values())
    if total == 0:
        weights[voters[0]] = 1
        total = 1
    thr = draw(st.one_of(st.none(), st.integers(1, total)))
    return ("w", weights, thr)


leaf_specs = st.one_of(majority_specs(), weighted_specs())


@st.composite
def composite_specs(draw, children):
    kind = draw(st.sampled_from(["joint", "hier", "flex"]))
    if kind == "joint":
        return ("joint", tuple(draw(st.lists(children, min_size=1, max_size=3))))
    if kind == "hier":
        cs = tuple(draw(st.lists(children, min_size=1, max_size=3)))
        need = draw(st.one_of(st.none(), st.integers(1, len(cs))))
        return ("hier", cs, need)
    read = draw(children)
    voters = tuple(sorted(ref_voters(read)))
    write = draw(st.one_of(
        children,
        st.just(("maj", voters)),
        st.builds(lambda t: ("w", {v: 1 for v in voters}, t), st.integers(1, len(voters))),
    ))
    if draw(st.booleans()):
        read, write = write, read
    if not ref_safe(read, write):
        # Flexible refuses a non-intersecting pair (tested separately): use a joint instead.
        return ("joint", (read, write))
    return ("flex", read, write)


@st.composite
def flexible_specs(draw):
    """A Flexible pair that intersects by construction: unit weights, r + w > n."""
    voters = draw(voter_lists)
    n = len(voters)
    r = draw(st.integers(1, n))
    w = draw(st.integers(n - r + 1, n))
    read, write = ("w", {v: 1 for v in voters}, r), ("w", {v: 1 for v in voters}, w)
    if draw(st.booleans()):
        # read side: a majority of the same voters is also fine whenever w > n / 2
        if 2 * w > n:
            read = ("maj", tuple(voters))
    return ("flex", read, write)


quorum_specs = st.recursive(leaf_specs, lambda ch: composite_specs(ch), max_leaves=4)
# always composite at the top, up to two levels deep
tree_specs = composite_specs(st.one_of(leaf_specs, leaf_specs, flexible_specs(), composite_specs(leaf_specs)))
majority_joint_specs = st.one_of(
    majority_specs(), st.builds(lambda cs: ("joint", tuple(cs)), st.lists(majority_specs(), min_size=2, max_size=3))
)
any_specs = st.one_of(
    majority_specs(), weighted_specs(), majority_joint_specs, flexible_specs(), quorum_specs, tree_specs, tree_specs
)
index_maps = st.dictionaries(IDS, st.integers(0, 20), max_size=10)
id_sets = st.frozensets(st.integers(0, 11), max_size=12)  # 10, 11 are never voters


# ----------------------------------------------------------------------------- properties

@SETTINGS
@given(any_specs, index_maps)
def test_committed_index_matches_brute_force(spec, matched):
    qs = build(spec)
    assert qs.committed_index(matched) == ref_committed(spec, matched)


@SETTINGS
@given(any_specs, id_sets)
def test_is_quorum_and_is_read_quorum_match_definitions(spec, s):
    qs = build(spec)
    assert qs.is_quorum(s) == ref_write(spec, s)
    assert qs.is_read_quorum(s) == ref_read(spec, s)
    # Any iterable works, and non-voters are ignored.
    assert qs.is_quorum(sorted(s)) == ref_write(spec, s)
    assert qs.is_quorum(list(s) + [10, 11, 42]) == ref_write(spec, s)


@SETTINGS
@given(any_specs, id_sets, id_sets)
def test_vote_result_matches_definition(spec, granted, rejected):
    qs = build(spec)
    res = qs.vote_result(granted, rejected)
    assert isinstance(res, VoteResult)
    assert res == ref_vote(spec, granted, rejected)
    # After the vote, the set still answers plain questions correctly (shared scratch buffers).
    assert qs.is_read_quorum(granted) == ref_read(spec, granted)


@SETTINGS
@given(any_specs, id_sets)
def test_vote_result_without_rejections(spec, granted):
    qs = build(spec)
    assert qs.vote_result(granted) == ref_vote(spec, granted, ())


@SETTINGS
@given(any_specs, id_sets, IDS)
def test_monotone_superset_of_quorum_is_quorum(spec, s, extra):
    qs = build(spec)
    bigger = s | {extra}
    if qs.is_quorum(s):
        assert qs.is_quorum(bigger)
    if qs.is_read_quorum(s):
        assert qs.is_read_quorum(bigger)
    # All voters are always both kinds of quorum; nobody never is.
    voters = ref_voters(spec)
    assert qs.is_quorum(voters) and qs.is_read_quorum(voters)
    assert not qs.is_quorum(()) and not qs.is_read_quorum(())


@SETTINGS
@given(any_specs, index_maps)
def test_slots_and_sequence_form_of_committed_index(spec, matched):
    qs = build(spec)
    voters = ref_voters(spec)
    assert sorted(qs.ids) == sorted(voters)
    assert len(set(qs.ids)) == len(qs.ids) == len(qs)
    for slot, v in enumerate(qs.ids):
        assert qs.slot_of(v) == slot
        assert v in qs
    for v in (10, 11, -1, "x"):
        assert qs.slot_of(v) == -1
        assert v not in qs
    seq = [matched.get(v, 0) for v in qs.ids]
    expect = ref_committed(spec, matched)
    assert qs.committed_index(seq) == expect
    assert qs.committed_index(tuple(seq)) == expect
    assert qs.committed_index(iter(seq)) == expect
    assert seq == [matched.get(v, 0) for v in qs.ids]  # input not reordered
    with pytest.raises(ValueError):
        qs.committed_index(seq + [0])
    with pytest.raises(ValueError):
        qs.committed_index(tuple(seq[:-1]))


@SETTINGS
@given(any_specs)
def test_safe_is_sound(spec):
    """`safe` must never claim safety for a set with a disjoint read/write quorum pair."""
    qs = build(spec)
    if qs.safe:
        assert ref_safe(spec, spec), spec


@SETTINGS
@given(any_specs)
def test_safe_is_exact(spec):
    """`safe` is documented as: every read quorum intersects every write quorum."""
    qs = build(spec)
    assert qs.safe == ref_safe(spec, spec), spec


@settings(max_examples=300, deadline=None)
@given(st.one_of(leaf_specs, quorum_specs, tree_specs), st.one_of(leaf_specs, quorum_specs, tree_specs))
def test_flexible_accepts_iff_read_and_write_quorums_intersect(read, write):
    ok = ref_safe(read, write)
    r, w = build(read), build(write)
    if ok:
        fx = Flexible(r, w)
        assert fx.safe
        spec = ("flex", read, write)
        for s in all_subsets(ref_voters(spec))[:64]:
            assert fx.is_quorum(s) == ref_write(write, s)
            assert fx.is_read_quorum(s) == ref_read(read, s)
    else:
        with pytest.raises(ValueError) as ei:
            Flexible(r, w)
        _check_flexible_message(str(ei.value), read, write)


def _check_flexible_message(msg, read, write):
    """The error names a read quorum and a write quorum that really are disjoint quorums."""
    m = re.search(r"read quorum \[([\d, ]*)\].*write quorum \[([\d, ]*)\]", msg)
    assert m, msg
    rq = frozenset(int(x) for x in m.group(1).split(",") if x.strip())
    wq = frozenset(int(x) for x in m.group(2).split(",") if x.strip())
    assert ref_read(read, rq), msg
    assert ref_write(write, wq), msg
    assert not (rq & wq), msg


# ----------------------------------------------------------------------------- examples

def test_majority_examples():
    m = Majority([1, 2, 3, 4, 5])
    assert m.is_quorum({1, 2, 3}) and not m.is_quorum({1, 2})
    assert m.committed_index({1: 10, 2: 9, 3: 8, 4: 1, 5: 0}) == 8
    assert m.committed_index({1: 10, 2: 9}) == 0
    assert m.committed_index([5, 4, 3, 2, 1]) == 3
    assert Majority([1, 2, 3, 4]).committed_index({1: 4, 2: 3, 3: 2, 4: 1}) == 2
    assert Majority([7]).committed_index({7: 12}) == 12
    assert m.members == (1, 2, 3, 4, 5)
    assert m.safe


def test_vote_result_examples():
    m = Majority([1, 2, 3])
    assert m.vote_result({1}) == VoteResult.PENDING
    assert m.vote_result({1, 2}) == VoteResult.WON
    assert m.vote_result({1}, {2, 3}) == VoteResult.LOST
    assert m.vote_result({1}, {2}) == VoteResult.PENDING
    assert m.vote_result(set(), {1, 2}) == VoteResult.LOST
    j = Joint([Majority([1, 2, 3]), Majority([3, 4, 5])])
    assert j.vote_result({1, 2}) == VoteResult.PENDING
    assert j.vote_result({1, 2, 4, 5}) == VoteResult.WON
    assert j.vote_result({3}, {4, 5}) == VoteResult.LOST
    assert {VoteResult.PENDING, VoteResult.WON, VoteResult.LOST} == set(VoteResult)


def test_weighted_examples():
    w = Weighted({1: 3, 2: 1, 3: 1})
    assert w.threshold == 3  # more than half of 5
    assert w.is_quorum({1}) and not w.is_quorum({2, 3})
    assert w.committed_index({1: 7, 2: 9, 3: 9}) == 7
    assert w.committed_index({1: 2, 2: 9, 3: 9}) == 2
    w2 = Weighted({1: 1, 2: 1, 3: 1, 4: 1}, threshold=3)
    assert w2.committed_index({1: 4, 2: 3, 3: 2, 4: 1}) == 2
    # zero-weight voter never counts
    w3 = Weighted({1: 0, 2: 1})
    assert not w3.is_quorum({1}) and w3.is_quorum({2})
    assert w3.committed_index({1: 100, 2: 5}) == 5
    assert w3.weights == {1: 0, 2: 1}


def test_hierarchical_examples():
    dcs = [Majority([1, 2, 3]), Majority([4, 5, 6]), Majority([7, 8, 9])]
    h = Hierarchical(dcs)
    assert h.need == 2
    assert h.is_quorum({1, 2, 4, 5}) and not h.is_quorum({1, 2, 3, 4})
    assert h.committed_index({1: 9, 2: 9, 4: 5, 5: 6, 7: 100}) == 5
    h1 = Hierarchical(dcs, need=1)
    assert h1.is_quorum({7, 8}) and not h1.safe
    h3 = Hierarchical(dcs, need=3)
    assert not h3.is_quorum({1, 2, 4, 5}) and h3.is_quorum({1, 2, 4, 5, 8, 9})


def test_flexible_example_weighted_pair():
    voters = [1, 2, 3, 4, 5]
    read = Weighted({v: 1 for v in voters}, threshold=2)
    write = Weighted({v: 1 for v in voters}, threshold=4)
    assert not read.safe and write.safe
    fx = Flexible(read=read, write=write)
    assert fx.safe
    assert fx.read == read and fx.write == write
    assert fx.is_read_quorum({1, 2}) and not fx.is_read_quorum({1})
    assert fx.is_quorum({1, 2, 3, 4}) and not fx.is_quorum({1, 2, 3})
    assert fx.vote_result({4, 5}) == VoteResult.WON
    assert fx.vote_result({1}, {2, 3, 4, 5}) == VoteResult.LOST
    assert fx.committed_index({1: 5, 2: 4, 3: 3, 4: 2, 5: 1}) == 2


def test_flexible_rejects_disjoint_pair_naming_both():
    read = Majority([1, 2, 3])
    write = Weighted({1: 1, 2: 1, 3: 1}, threshold=1)
    with pytest.raises(ValueError) as ei:
        Flexible(read, write)
    msg = str(ei.value)
    assert "read" in msg and "write" in msg
    _check_flexible_message(msg, ("maj", (1, 2, 3)), ("w", {1: 1, 2: 1, 3: 1}, 1))
    with pytest.raises(ValueError):
        Flexible(Weighted({v: 1 for v in range(5)}, threshold=2), Weighted({v: 1 for v in range(5)}, threshold=3))
    with pytest.raises(ValueError):  # disjoint voter sets
        Flexible(Majority([1, 2]), Majority([3, 4]))


def test_joint_examples():
    j = Joint([Majority([1, 2, 3]), Majority([3, 4, 5])])
    assert sorted(j.ids) == [1, 2, 3, 4, 5]
    assert not j.is_quorum({1, 2, 3}) and j.is_quorum({1, 3, 4})
    assert j.committed_index({1: 9, 2: 8, 3: 1, 4: 7, 5: 6}) == 6
    assert j.committed_index({1: 9, 2: 8, 3: 1, 4: 0, 5: 6}) == 1
    assert len(j.children) == 2


def test_from_configs():
    assert from_configs([{1, 2, 3}]) == Majority([1, 2, 3])
    assert isinstance(from_configs([[3, 2, 1]]), Majority)
    j = from_configs([{1, 2, 3}, {3, 4, 5}])
    assert j == Joint([Majority([1, 2, 3]), Majority([3, 4, 5])])
    for s in all_subsets(range(1, 6)):
        assert j.is_quorum(s) == (2 * len(s & {1, 2, 3}) > 3 and 2 * len(s & {3, 4, 5}) > 3)
    assert from_configs((frozenset({9}),)).committed_index({9: 4}) == 4


@SETTINGS
@given(st.lists(voter_lists, min_size=1, max_size=3), index_maps)
def test_from_configs_matches_joint_majority(configs, matched):
    qs = from_configs([set(c) for c in configs])
    spec = ("joint", tuple(("maj", tuple(c)) for c in configs))
    assert qs.committed_index(matched) == ref_committed(spec, matched)
    assert qs.safe


# ----------------------------------------------------------------------------- invalid args

@pytest.mark.parametrize(
    "make",
    [
        lambda: Majority([]),
        lambda: Majority([-1, 2]),
        lambda: Majority(["a"]),
        lambda: Majority([1.5]),
        lambda: Weighted({}),
        lambda: Weighted({1: -1, 2: 3}),
        lambda: Weighted({1: 1.5}),
        lambda: Weighted({-1: 1}),
        lambda: Weighted({1: 0}),  # total weight 0: no threshold possible
        lambda: Weighted({1: 1, 2: 1}, threshold=0),
        lambda: Weighted({1: 1, 2: 1}, threshold=3),
        lambda: Weighted({1: 1, 2: 1}, threshold=-1),
        lambda: Weighted({1: 1, 2: 1}, threshold=1.5),
        lambda: Joint([]),
        lambda: Hierarchical([]),
        lambda: Hierarchical([Majority([1])], need=0),
        lambda: Hierarchical([Majority([1])], need=2),
        lambda: Hierarchical([Majority([1]), Majority([2])], need=-1),
        lambda: Hierarchical([Majority([1]), Majority([2])], need=1.0),
    ],
)
def test_invalid_args_raise_value_error(make):
    with pytest.raises(ValueError):
        make()


def test_invalid_children_raise_type_error():
    with pytest.raises(TypeError):
        Joint([Majority([1]), 3])
    with pytest.raises(TypeError):
        Hierarchical(["x"])
    with pytest.raises(TypeError):
        Flexible(None, Majority([1]))
    with pytest.raises(TypeError):
        Flexible(Majority([1]), None)


# ----------------------------------------------------------------------------- eq / hash / repr

def test_equality_and_hash():
    assert Majority([3, 1, 2]) == Majority([1, 2, 3]) == Majority({1, 2, 3, 3})
    assert hash(Majority([3, 1, 2])) == hash(Majority([1, 2, 3]))
    assert Majority([1, 2]) != Majority([1, 2, 3])
    # Same quorums, different kinds: not equal.
    assert Majority([1, 2, 3]) != Weighted({1: 1, 2: 1, 3: 1})
    assert Weighted({1: 1, 2: 2}, threshold=2) == Weighted({2: 2, 1: 1}, threshold=2)
    assert Weighted({1: 1, 2: 2}, threshold=2) != Weighted({1: 1, 2: 2}, threshold=3)
    a = Joint([Majority([1, 2, 3]), Majority([3, 4])])
    b = Joint([Majority([3, 2, 1]), Majority([4, 3])])
    assert a == b and hash(a) == hash(b)
    assert Hierarchical([Majority([1]), Majority([2]), Majority([3])], need=2) != Hierarchical(
        [Majority([1]), Majority([2]), Majority([3])], need=3
    )
    assert len({Majority([1, 2]), Majority([2, 1]), Majority([1])}) == 2


REPR_NS = {
    "Majority": Majority,
    "Weighted": Weighted,
    "Joint": Joint,
    "Hierarchical": Hierarchical,
    "Flexible": Flexible,
}


@SETTINGS
@given(any_specs)
def test_repr_is_readable_and_round_trips(spec):
    qs = build(spec)
    r = repr(qs)
    assert r.startswith(type(qs).__name__ + "(")
    for v in ref_voters(spec):
        assert str(v) in r
    again = eval(r, dict(REPR_NS))
    assert type(again) is type(qs)
    assert again == qs and hash(again) == hash(qs)


def test_repr_examples():
    assert repr(Majority([3, 1, 2])) == "Majority([1, 2, 3])"
    r = repr(Weighted({1: 2, 2: 1}, threshold=2))
    assert "Weighted" in r and "threshold=2" in r and "1: 2" in r


def test_safe_examples():
    # disjoint quorums exist: must not be reported safe
    assert not Weighted({1: 1, 2: 1, 3: 1, 4: 1}, threshold=2).safe
    assert not Hierarchical([Majority([1, 2, 3]), Majority([4, 5, 6])], need=1).safe
    assert not Joint([Weighted({1: 1, 2: 1}, threshold=1), Weighted({1: 1, 2: 1}, threshold=1)]).safe
    # intersecting
    assert Majority([1, 2]).safe and Majority([1, 2, 3, 4]).safe
    assert Weighted({1: 1, 2: 1, 3: 1, 4: 1}).safe
    assert Joint([Majority([1, 2, 3]), Weighted({4: 1, 5: 1}, threshold=1)]).safe
    assert Hierarchical([Majority([1, 2, 3]), Majority([4, 5, 6]), Majority([7, 8, 9])]).safe
    assert from_configs([{1, 2}, {2, 3}]).safe
