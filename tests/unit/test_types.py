"""Unit tests for openraft_fast._core.types: LeaderId, Vote, LogId, Node, Membership, Entry.

Comparison results are checked against reference definitions written here in plain Python
(openraft's rules), not against values taken from the implementation.
"""
import itertools
import operator
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openraft_fast._core import types as T
from openraft_fast._core.types import Entry, LeaderId, LogId, Membership, Node, Vote

SETTINGS = settings(max_examples=300, deadline=None)

LT, EQ, GT, NONE = "lt", "eq", "gt", "none"
OPS = {
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
}
ORDERING_OPS = ("<", "<=", ">", ">=")


def expected_ops(order):
    """What each rich comparison must return for a partial-order result."""
    return {
        "<": order == LT,
        "<=": order in (LT, EQ),
        "==": order == EQ,
        "!=": order != EQ,
        ">": order == GT,
        ">=": order in (GT, EQ),
    }


def cmp_keys(a, b):
    return LT if a < b else GT if a > b else EQ


# ----------------------------------------------------------------------------- references

def ref_leader_cmp(a, b):
    """(term, node) pairs; node None == no node.  `std` selects openraft's standard mode."""
    (ta, na, std), (tb, nb, _) = a, b
    if ta != tb:
        return cmp_keys(ta, tb)
    if na == nb:
        return EQ
    if std:
        # One leader per term: only "no node" is below a node of the same term.
        if na is None:
            return LT
        if nb is None:
            return GT
        return NONE
    return cmp_keys(-1 if na is None else na, -1 if nb is None else nb)


def ref_vote_cmp(a, b):
    (la, ca), (lb, cb) = a, b
    c = ref_leader_cmp(la, lb)
    if c == EQ:
        return cmp_keys(int(ca), int(cb))
    if c == NONE:
        if ca and not cb:
            return GT
        if cb and not ca:
            return LT
        return NONE
    return c


def ref_log_id_cmp(a, b):
    """LogIds compare by (committed leader id, index); std mode keeps only the term."""
    (ta, na, std, ia), (tb, nb, _, ib) = a, b
    if std:
        na = nb = None
    c = ref_leader_cmp((ta, na, std), (tb, nb, std))
    assert c != NONE  # committed leader ids are totally ordered
    if c != EQ:
        return c
    return cmp_keys(ia, ib)


# ----------------------------------------------------------------------------- strategies

terms = st.integers(0, 4)
nodes = st.one_of(st.none(), st.integers(0, 3))
leader_specs = st.tuples(terms, nodes)
vote_specs = st.tuples(leader_specs, st.booleans())
log_specs = st.tuples(leader_specs, st.integers(0, 4))


def mk_leader(spec, std):
    t, n = spec
    return LeaderId(t, n, std=std)


def mk_vote(spec, std):
    lspec, committed = spec
    return Vote(mk_leader(lspec, std), committed)


def mk_log_id(spec, std):
    lspec, index = spec
    return LogId(mk_leader(lspec, std), index)


def assert_ops(a, b, order):
    exp = expected_ops(order)
    got = {name: fn(a, b) for name, fn in OPS.items()}
    assert got == exp, (a, b, order)


# ----------------------------------------------------------------------------- LeaderId

@SETTINGS
@given(leader_specs, leader_specs)
def test_leader_id_advanced_is_total_order_on_term_then_node(a, b):
    la, lb = mk_leader(a, False), mk_leader(b, False)
    order = ref_leader_cmp((*a, False), (*b, False))
    assert order != NONE
    assert_ops(la, lb, order)


@SETTINGS
@given(leader_specs, leader_specs)
def test_leader_id_std_partial_order(a, b):
    la, lb = mk_leader(a, True), mk_leader(b, True)
    assert_ops(la, lb, ref_leader_cmp((*a, True), (*b, True)))


def test_leader_id_std_same_term_different_nodes_incomparable():
    a, b = LeaderId(3, 1, std=True), LeaderId(3, 2, std=True)
    assert not (a < b) and not (a <= b) and not (a > b) and not (a >= b)
    assert not (a == b)
    assert a != b
    # ...whereas advanced mode orders them by node id.
    assert LeaderId(3, 1) < LeaderId(3, 2)


def test_leader_id_none_node_is_lowest_of_its_term():
    assert LeaderId(3, None, std=True) < LeaderId(3, 0, std=True)
    assert LeaderId(3, None) < LeaderId(3, 0)
    assert LeaderId(3, 7) < LeaderId(4, None)
    assert LeaderId(3, 7, std=True) < LeaderId(4, None, std=True)


def test_leader_id_attributes():
    a = LeaderId(5, 2)
    assert (a.term, a.node_id, a.std) == (5, 2, False)
    b = LeaderId(5)
    assert b.node_id is None
    c = LeaderId(5, 0, std=True)
    assert (c.term, c.node_id, c.std) == (5, 0, True)


def test_leader_id_to_committed():
    std = LeaderId(4, 3, std=True)
    c = std.to_committed()
    assert c.term == 4 and c.node_id is None and c.std
    assert c == LeaderId(4, None, std=True)
    assert LeaderId(4, None, std=True).to_committed() == LeaderId(4, None, std=True)
    adv = LeaderId(4, 3)
    assert adv.to_committed() == adv
    assert adv.to_committed().node_id == 3


@pytest.mark.parametrize("args", [(-1, None), (0, -1), (-5, 3)])
def test_leader_id_rejects_negative(args):
    with pytest.raises(ValueError):
        LeaderId(*args)


# ----------------------------------------------------------------------------- Vote

@SETTINGS
@given(vote_specs, vote_specs, st.booleans())
def test_vote_comparison_follows_openraft(a, b, std):
    va, vb = mk_vote(a, std), mk_vote(b, std)
    (la, ca), (lb, cb) = a, b
    assert_ops(va, vb, ref_vote_cmp(((*la, std), ca), ((*lb, std), cb)))


def test_vote_examples():
    # Same leader: committed beats uncommitted.
    assert Vote.new(2, 1, committed=True) > Vote.new(2, 1)
    assert Vote.new(2, 1, committed=True, std=True) > Vote.new(2, 1, std=True)
    # Higher leader id wins regardless of committed.
    assert Vote.new(3, 0) > Vote.new(2, 5, committed=True)
    # Std mode, incomparable leader ids.
    a, b = Vote.new(2, 1, std=True), Vote.new(2, 2, std=True)
    assert not (a < b) and not (a > b) and not (a <= b) and not (a >= b) and not (a == b)
    ac = Vote.new(2, 1, committed=True, std=True)
    assert ac > b and b < ac and ac >= b and b <= ac and ac != b
    # Std mode: an uncommitted vote for a node beats "no vote" of the same term.
    assert Vote.new(2, None, std=True) < Vote.new(2, 1, std=True)


def test_vote_attributes():
    v = Vote.new(7, 3, committed=True)
    assert v.term == 7 and v.node_id == 3 and v.committed
    assert v.leader_id == LeaderId(7, 3)
    assert Vote(LeaderId(7, 3), True) == v
    assert not Vote(LeaderId(1)).committed
    with pytest.raises(TypeError):
        Vote(None)


# ----------------------------------------------------------------------------- LogId

@SETTINGS
@given(log_specs, log_specs, st.booleans())
def test_log_id_compares_by_committed_leader_then_index(a, b, std):
    la, lb = mk_log_id(a, std), mk_log_id(b, std)
    (ta, ia), (tb, ib) = a, b
    order = ref_log_id_cmp((*ta, std, ia), (*tb, std, ib))
    assert_ops(la, lb, order)


def test_log_id_std_keeps_only_the_term():
    a = LogId(LeaderId(3, 1, std=True), 10)
    b = LogId(LeaderId(3, 2, std=True), 10)
    assert a == b and hash(a) == hash(b)
    assert a.leader_id.node_id is None and a.term == 3 and a.index == 10
    assert LogId(LeaderId(3, 2, std=True), 9) < b
    # Advanced mode keeps the node: (3,1) < (3,2).
    assert LogId(LeaderId(3, 1), 10) < LogId(LeaderId(3, 2), 10)
    assert LogId(LeaderId(3, 1), 99) < LogId(LeaderId(3, 2), 0)
    assert LogId(LeaderId(3, 1), 10).leader_id.node_id == 1


def test_log_id_rejects_negative_index():
    with pytest.raises(ValueError):
        LogId(LeaderId(1, 1), -1)
    with pytest.raises(TypeError):
        LogId(None, 1)


# ----------------------------------------------------------------------------- mixed modes

def _mixed_pairs():
    yield LeaderId(1, 2), LeaderId(1, 2, std=True)
    yield LeaderId(1, None), LeaderId(1, None, std=True)
    yield LeaderId(1, 2), LeaderId(5, 2, std=True)
    yield Vote.new(1, 2), Vote.new(1, 2, std=True)
    yield Vote.new(1, None, committed=True), Vote.new(1, None, committed=True, std=True)
    yield LogId(LeaderId(1, 2), 5), LogId(LeaderId(1, 2, std=True), 5)
    yield LogId(LeaderId(1, None), 5), LogId(LeaderId(1, None, std=True), 5)
    yield LogId(LeaderId(1, None), 4), LogId(LeaderId(2, 7, std=True), 5)


@pytest.mark.parametrize("a,b", list(_mixed_pairs()), ids=repr)
def test_mixed_std_and_advanced_never_equal_and_not_ordered(a, b):
    for x, y in ((a, b), (b, a)):
        assert (x == y) is False
        assert (x != y) is True
        for name in ORDERING_OPS:
            with pytest.raises(TypeError):
                OPS[name](x, y)


def test_comparison_with_other_types():
    assert (LeaderId(1, 1) == (1, 1)) is False
    assert (Vote.new(1, 1) == "x") is False
    assert (LogId(LeaderId(1), 1) == 1) is False
    with pytest.raises(TypeError):
        LeaderId(1, 1) < 3


# ----------------------------------------------------------------------------- hash / eq

any_leader = st.builds(mk_leader, leader_specs, st.booleans())
any_vote = st.builds(mk_vote, vote_specs, st.booleans())
any_log_id = st.builds(mk_log_id, log_specs, st.booleans())


@SETTINGS
@given(st.one_of(any_leader, any_vote, any_log_id), st.one_of(any_leader, any_vote, any_log_id))
def test_hash_consistent_with_eq(a, b):
    if a == b:
        assert hash(a) == hash(b)
        assert b == a
    assert (a == b) != (a != b)
    assert a == a and hash(a) == hash(a)


def test_values_usable_as_dict_keys():
    d = {LeaderId(1, 2): "a", LogId(LeaderId(1, 2, std=True), 3): "b", Vote.new(1, 2): "c"}
    assert d[LeaderId(1, 2)] == "a"
    assert d[LogId(LeaderId(1, 9, std=True), 3)] == "b"
    assert d[Vote.new(1, 2)] == "c"
    assert Vote.new(1, 2, committed=True) not in d


# ----------------------------------------------------------------------------- pickling

M3 = Membership([{1, 2, 3}, {3, 4}], nodes={i: Node(f"h{i}:80", {"z": i}) for i in range(1, 7)})

PICKLE_VALUES = [
    LeaderId(0),
    LeaderId(3, 0),
    LeaderId(3, 7),
    LeaderId(3, None, std=True),
    LeaderId(3, 4, std=True),
    Vote.new(2, 1),
    Vote.new(2, 1, committed=True),
    Vote.new(2, None, std=True),
    Vote.new(9, 5, committed=True, std=True),
    LogId(LeaderId(1, 2), 0),
    LogId(LeaderId(1, 2), 17),
    LogId(LeaderId(4, 2, std=True), 17),
    Node(),
    Node("10.0.0.1:5000"),
    Node("a", {"zone": "eu", "n": [1, 2]}),
    Membership({1}),
    Membership({1, 2, 3}),
    M3,
    Entry(LogId(LeaderId(1, 1), 1), b"payload"),
    Entry(LogId(LeaderId(1, 1), 2), {"k": [1, 2]}),
    Entry.blank(LogId(LeaderId(2, 1, std=True), 3)),
    Entry.membership(LogId(LeaderId(2, 3), 4), M3),
]


@pytest.mark.parametrize("x", PICKLE_VALUES, ids=repr)
def test_pickle_round_trip(x):
    for proto in (2, pickle.HIGHEST_PROTOCOL):
        y = pickle.loads(pickle.dumps(x, protocol=proto))
        assert type(y) is type(x)
        assert y == x
        assert hash(y) == hash(x)
        assert repr(y) == repr(x)


def test_pickle_keeps_mode_and_node():
    for lid in (LeaderId(3, 4, std=True), LeaderId(3, 4), LeaderId(3, None, std=True)):
        y = pickle.loads(pickle.dumps(lid))
        assert (y.term, y.node_id, y.std) == (lid.term, lid.node_id, lid.std)
    m = pickle.loads(pickle.dumps(M3))
    assert m.configs == M3.configs and m.nodes == M3.nodes
    assert m.learner_ids == frozenset({5, 6})


# ----------------------------------------------------------------------------- Node

def test_node():
    assert Node() == Node("")
    assert Node().addr == "" and Node().data == {}
    d = {"a": 1}
    n = Node("x", d)
    d["a"] = 2
    assert n.data == {"a": 1}
    assert Node("x", {"a": 1}) == n and hash(Node("x", {"a": 1})) == hash(n)
    assert Node("x") != n
    assert Node("y", {"a": 1}) != n


# ----------------------------------------------------------------------------- Membership

def test_membership_uniform_defaults():
    m = Membership({1, 2, 3})
    assert m.configs == (frozenset({1, 2, 3}),)
    assert m.voter_ids == frozenset({1, 2, 3})
    assert m.learner_ids == frozenset()
    assert m.nodes == {1: Node(), 2: Node(), 3: Node()}
    assert not m.is_joint
    assert m.is_voter(2) and not m.is_voter(4)
    assert not m.is_learner(2)
    assert m == Membership([{3, 2, 1}]) == Membership([[1, 2, 3]]) == Membership(frozenset({1, 2, 3}))
    assert hash(m) == hash(Membership([[3, 1, 2]]))


def test_membership_joint_with_learners():
    nodes = {i: Node(f"n{i}") for i in (1, 2, 3, 4, 8, 9)}
    m = Membership([{1, 2, 3}, {3, 4}], nodes=nodes)
    assert m.configs == (frozenset({1, 2, 3}), frozenset({3, 4}))
    assert m.is_joint
    assert m.voter_ids == frozenset({1, 2, 3, 4})
    assert m.learner_ids == frozenset({8, 9})
    assert m.is_learner(8) and not m.is_voter(8)
    assert m.node_ids() == frozenset(nodes)
    assert m.get_node(8) == Node("n8") and m.get_node(77) is None
    assert m.nodes == nodes
    # `nodes` is a copy.
    m.nodes[1] = Node("changed")
    assert m.get_node(1) == Node("n1")


def test_membership_add_learner():
    m = Membership({1, 2})
    m2 = m.add_learner(5, Node("five"))
    assert m2.learner_ids == frozenset({5}) and m2.voter_ids == m.voter_ids
    assert m.learner_ids == frozenset()  # unchanged
    assert m2.add_learner(5, Node("other")).get_node(5) == Node("five")
    assert m2.add_learner(1, Node("x")) == m2


@pytest.mark.parametrize(
    "configs,nodes,exc",
    [
        ([], None, ValueError),
        ([set()], None, ValueError),
        ([{1, 2}, set()], None, ValueError),
        (set(), None, ValueError),
        ({1, -2}, None, ValueError),
        ([{1}, {None}], None, ValueError),
        ({1, 2}, {1: Node()}, ValueError),          # voter 2 missing from explicit nodes
        ({1, 2}, {}, ValueError),
        ({1}, {1: Node(), -3: Node()}, ValueError),  # negative learner id
        ({1}, {1: "not a node"}, TypeError),
    ],
)
def test_membership_validation(configs, nodes, exc):
    with pytest.raises(exc):
        Membership(configs, nodes=nodes)


def _maj(voters, s):
    return 2 * len(voters & s) > len(voters)


def _is_quorum(configs, s):
    return all(_maj(c, s) for c in configs)


def _quorums_intersect(m1, m2):
    ids = sorted(m1.voter_ids | m2.voter_ids)
    subsets = [frozenset(c) for r in range(len(ids) + 1) for c in itertools.combinations(ids, r)]
    q1 = [s for s in subsets if _is_quorum(m1.configs, s)]
    q2 = [s for s in subsets if _is_quorum(m2.configs, s)]
    return all(a & b for a in q1 for b in q2)


def test_next_coherent_uniform_to_goal():
    a, b = {1, 2, 3}, {3, 4, 5}
    nodes = {i: Node(str(i)) for i in range(1, 6)}
    m = Membership([a], nodes=nodes)
    step1 = m.next_coherent(b)
    assert step1.configs == (frozenset(a), frozenset(b))
    step2 = step1.next_coherent(b)
    assert step2.configs == (frozenset(b),)
    assert step2.voter_ids == frozenset(b)
    # Without retain, the leaving voters are gone from nodes.
    assert step2.node_ids() == frozenset(b)
    assert step2.learner_ids == frozenset()
    # Already there: stays.
    assert step2.next_coherent(b).configs == (frozenset(b),)


def test_next_coherent_from_joint_to_third_config():
    a, b, c = {1, 2, 3}, {3, 4}, {5, 6, 7}
    nodes = {i: Node() for i in range(1, 8)}
    m = Membership([a, b], nodes=nodes)
    nxt = m.next_coherent(c)
    assert nxt.configs == (frozenset(b), frozenset(c))
    # Voters of `a` only (1, 2) are dropped without retain; 3 is still a voter of b.
    assert nxt.node_ids() == frozenset({3, 4, 5, 6, 7})
    kept = m.next_coherent(c, retain=True)
    assert kept.configs == (frozenset(b), frozenset(c))
    assert kept.learner_ids == frozenset({1, 2})
    assert kept.voter_ids == frozenset({3, 4, 5, 6, 7})


def test_next_coherent_retain_keeps_leaving_voters_as_learners():
    m = Membership([{1, 2, 3}, {2, 3, 4}], nodes={i: Node(f"n{i}") for i in (1, 2, 3, 4, 9)})
    dropped = m.next_coherent({2, 3, 4})
    assert dropped.configs == (frozenset({2, 3, 4}),)
    assert dropped.learner_ids == frozenset({9})  # existing learners stay
    assert 1 not in dropped.node_ids()
    kept = m.next_coherent({2, 3, 4}, retain=True)
    assert kept.configs == (frozenset({2, 3, 4}),)
    assert kept.learner_ids == frozenset({1, 9})
    assert kept.get_node(1) == Node("n1")


def test_next_coherent_new_nodes_and_errors():
    m = Membership({1, 2, 3})
    with pytest.raises(KeyError):
        m.next_coherent({1, 2, 4})
    with pytest.raises(ValueError):
        m.next_coherent(set())
    with pytest.raises(ValueError):
        m.next_coherent({1, -1})
    n = m.next_coherent({1, 2, 4}, new_nodes={4: Node("four")})
    assert n.configs == (frozenset({1, 2, 3}), frozenset({1, 2, 4}))
    assert n.get_node(4) == Node("four")
    # new_nodes does not override an existing node.
    m2 = Membership({1, 2}, nodes={1: Node("one"), 2: Node("two")})
    assert m2.next_coherent({1}, new_nodes={1: Node("x")}).get_node(1) == Node("one")


voter_sets = st.frozensets(st.integers(0, 7), min_size=1, max_size=5)


@settings(max_examples=200, deadline=None)
@given(st.lists(voter_sets, min_size=1, max_size=2), voter_sets, st.booleans())
def test_next_coherent_reaches_goal_through_intersecting_steps(configs, goal, retain):
    nodes = {i: Node(str(i)) for i in frozenset().union(*configs)}
    m = Membership(configs, nodes=nodes)
    new = {i: Node(str(i)) for i in goal}
    steps = [m]
    cur = m
    for _ in range(3):
        cur = cur.next_coherent(goal, retain=retain, new_nodes=new)
        steps.append(cur)
        if cur.configs == (goal,):
            break
    assert cur.configs == (goal,), steps
    assert len(steps) - 1 <= 2
    for prev, nxt in zip(steps, steps[1:]):
        assert _quorums_intersect(prev, nxt), (prev, nxt)
        assert len(nxt.configs) <= 2
        # Leaving voters: dropped without retain, learners with it.
        leaving = prev.voter_ids - nxt.voter_ids
        if retain:
            assert leaving <= nxt.learner_ids
        else:
            assert not (leaving & nxt.node_ids())
        # Every voter has a node.
        assert nxt.voter_ids <= nxt.node_ids()


def test_membership_repr_readable():
    r = repr(Membership([{3, 1, 2}, {4, 3}], nodes={i: Node() for i in (1, 2, 3, 4, 7)}))
    assert "1, 2, 3" in r and "3, 4" in r and "7" in r


# ----------------------------------------------------------------------------- Entry

LID = LogId(LeaderId(2, 1), 5)


def test_entry_kinds():
    assert len({T.NORMAL, T.BLANK, T.MEMBERSHIP}) == 3
    e = Entry(LID, b"data")
    assert e.kind == T.NORMAL and e.payload == b"data" and e.index == 5 and e.log_id == LID
    b = Entry.blank(LID)
    assert b.kind == T.BLANK and b.payload is None
    assert b == Entry(LID, None, T.BLANK)
    m = Membership({1, 2, 3})
    me = Entry.membership(LID, m)
    assert me.kind == T.MEMBERSHIP and me.payload == m
    assert me == Entry(LID, m, T.MEMBERSHIP)
    # A normal entry may carry None, and differs from a blank one.
    assert Entry(LID, None).kind == T.NORMAL
    assert Entry(LID, None) != b


def test_entry_eq_hash():
    a = Entry(LID, b"x")
    assert a == Entry(LogId(LeaderId(2, 1), 5), b"x")
    assert hash(a) == hash(Entry(LogId(LeaderId(2, 1), 5), b"x"))
    assert a != Entry(LID, b"y")
    assert a != Entry(LogId(LeaderId(2, 1), 6), b"x")
    assert a != Entry(LogId(LeaderId(2, 2), 5), b"x")
    # std log ids ignore the node
    s1 = Entry(LogId(LeaderId(2, 1, std=True), 5), b"x")
    s2 = Entry(LogId(LeaderId(2, 9, std=True), 5), b"x")
    assert s1 == s2 and hash(s1) == hash(s2)


@pytest.mark.parametrize(
    "payload,kind,exc",
    [
        (b"x", T.MEMBERSHIP, TypeError),
        (None, T.MEMBERSHIP, TypeError),
        ({1, 2}, T.MEMBERSHIP, TypeError),
        (b"x", T.BLANK, ValueError),
        (Membership({1}), T.BLANK, ValueError),
        (None, 3, ValueError),
        (None, -1, ValueError),
        (b"x", 99, ValueError),
    ],
)
def test_entry_validation(payload, kind, exc):
    with pytest.raises(exc):
        Entry(LID, payload, kind)


def test_entry_requires_log_id():
    with pytest.raises(TypeError):
        Entry(None, b"x")
    with pytest.raises(TypeError):
        Entry.blank(None)
    with pytest.raises(TypeError):
        Entry.membership(LID, None)
