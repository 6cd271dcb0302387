"""Core Raft value types (see types.pxd for the comparison rules)."""
from libc.stdint cimport int64_t

NORMAL = ENTRY_NORMAL
BLANK = ENTRY_BLANK
MEMBERSHIP = ENTRY_MEMBERSHIP
_KIND_NAMES = {ENTRY_NORMAL: "normal", ENTRY_BLANK: "blank", ENTRY_MEMBERSHIP: "membership"}


cdef inline int64_t _node_arg(object node_id) except? -2:
    if node_id is None:
        return NO_NODE
    cdef int64_t n = node_id
    if n < 0:
        raise ValueError(f"node id must be >= 0, got {node_id!r}")
    return n


cdef inline int64_t _nonneg(object v, str what) except? -2:
    cdef int64_t n = v
    if n < 0:
        raise ValueError(f"{what} must be >= 0, got {v!r}")
    return n


cdef LeaderId make_leader_id(int64_t term, int64_t node, bint std):
    cdef LeaderId lid = LeaderId.__new__(LeaderId)
    lid.term = term
    lid.node = node
    lid.std = std
    return lid


cdef LogId make_log_id(LeaderId committed_leader_id, int64_t index):
    cdef LogId lid = LogId.__new__(LogId)
    lid.leader_id = committed_leader_id
    lid.index = index
    return lid


cdef class LeaderId:
    def __init__(self, term, node_id=None, *, bint std=False):
        self.term = _nonneg(term, "term")
        self.node = _node_arg(node_id)
        self.std = std

    @property
    def node_id(self):
        return None if self.node == NO_NODE else self.node

    cdef LeaderId committed_id(self):
        # Std mode: a log id records only the term (one leader per term).
        if self.std and self.node != NO_NODE:
            return make_leader_id(self.term, NO_NODE, True)
        return self

    def to_committed(self):
        """The form stored in log ids: itself in advanced mode, the bare term in std mode."""
        return self.committed_id()

    def __richcmp__(LeaderId self, other, int op):
        if not isinstance(other, LeaderId):
            return NotImplemented
        if self.std != (<LeaderId>other).std:
            if op == 2:
                return False
            if op == 3:
                return True
            raise TypeError("cannot compare std-mode and advanced-mode leader ids")
        return cmp_matches(leader_id_cmp(self, <LeaderId>other), op)

    def __hash__(self):
        return hash((self.term, self.node, self.std))

    def __reduce__(self):
        return (_leader_id, (self.term, self.node, self.std))

    def __str__(self):
        if self.node == NO_NODE:
            return f"T{self.term}"
        return f"T{self.term}-N{self.node}"

    def __repr__(self):
        std = ", std=True" if self.std else ""
        return f"LeaderId({self.term}, {self.node_id!r}{std})"


def _leader_id(term, node, std):
    return make_leader_id(term, node, std)


cdef class Vote:
    def __init__(self, LeaderId leader_id not None, bint committed=False):
        self.leader_id = leader_id
        self.committed = committed

    @staticmethod
    def new(term, node_id=None, *, bint committed=False, bint std=False):
        return Vote(LeaderId(term, node_id, std=std), committed)

    @property
    def term(self):
        return self.leader_id.term

    @property
    def node_id(self):
        return self.leader_id.node_id

    def __richcmp__(Vote self, other, int op):
        if not isinstance(other, Vote):
            return NotImplemented
        if self.leader_id.std != (<Vote>other).leader_id.std:
            if op == 2:
                return False
            if op == 3:
                return True
            raise TypeError("cannot compare std-mode and advanced-mode votes")
        return cmp_matches(vote_cmp(self, <Vote>other), op)

    def __hash__(self):
        return hash((self.leader_id, self.committed))

    def __reduce__(self):
        return (Vote, (self.leader_id, self.committed))

    def __str__(self):
        return f"{self.leader_id}:{'committed' if self.committed else 'uncommitted'}"

    def __repr__(self):
        return f"Vote({self.leader_id!r}, committed={self.committed})"


cdef class LogId:
    def __init__(self, LeaderId leader_id not None, index):
        self.leader_id = leader_id.committed_id()
        self.index = _nonneg(index, "index")

    @property
    def term(self):
        return self.leader_id.term

    def __richcmp__(LogId self, other, int op):
        if not isinstance(other, LogId):
            return NotImplemented
        if self.leader_id.std != (<LogId>other).leader_id.std:
            if op == 2:
                return False
            if op == 3:
                return True
            raise TypeError("cannot compare std-mode and advanced-mode log ids")
        return cmp_matches(log_id_cmp(self, <LogId>other), op)

    def __hash__(self):
        return hash((self.leader_id, self.index))

    def __reduce__(self):
        return (LogId, (self.leader_id, self.index))

    def __str__(self):
        return f"{self.leader_id}.{self.index}"

    def __repr__(self):
        return f"LogId({self.leader_id!r}, {self.index})"


cdef class Node:
    """A member's address book entry, kept in the Membership (replicated with it, and saved
    in the log and snapshots).

    Attributes:
        addr: str, default "". Where the other nodes reach this node's Raft server: the TCP
            transport dials it as "host:port" (the LocalRouter ignores it).
        data: dict, default {}. Free-form application data, copied on construction and
            replicated with the membership: e.g. the node's own client-facing address, so a
            follower can forward or redirect clients to the leader (the KV service keeps its
            HTTP address in data["http"]). It must be msgpack-encodable.

    Two nodes are equal when both addr and data are; the hash is the addr's.
    """

    def __init__(self, str addr="", dict data=None):
        self.addr = addr
        self.data = {} if data is None else dict(data)

    def __eq__(self, other):
        if not isinstance(other, Node):
            return NotImplemented
        return self.addr == (<Node>other).addr and self.data == (<Node>other).data

    def __hash__(self):
        return hash(self.addr)

    def __reduce__(self):
        return (Node, (self.addr, self.data))

    def __repr__(self):
        if self.data:
            return f"Node({self.addr!r}, {self.data!r})"
        return f"Node({self.addr!r})"


cdef frozenset _id_set(object ids, str what):
    cdef frozenset s = frozenset(ids)
    for i in s:
        _node_arg(i)
        if i is None:
            raise ValueError(f"{what}: node id must not be None")
    return s


cdef class Membership:
    """One voter set (uniform) or several (joint), plus the nodes of voters and learners.

    Membership({1, 2, 3}) or Membership([{1, 2, 3}, {3, 4}], nodes={...}). Nodes default to
    Node() for every voter; ids in `nodes` that are not voters are learners.
    """

    def __init__(self, configs, nodes=None):
        if isinstance(configs, (set, frozenset)):
            configs = [configs]
        cfgs = tuple(_id_set(c, "membership config") for c in configs)
        if not cfgs:
            raise ValueError("membership needs at least one voter set")
        for c in cfgs:
            if not c:
                raise ValueError("a voter set of a membership must not be empty")
        voters = frozenset().union(*cfgs)
        cdef dict ns = {}
        if nodes is not None:
            for k, v in dict(nodes).items():
                _node_arg(k)
                if not isinstance(v, Node):
                    raise TypeError(f"nodes[{k!r}] must be a Node, got {type(v).__name__}")
                ns[k] = v
        for v in voters:
            if v not in ns:
                if nodes is not None:
                    raise ValueError(f"voter {v} has no entry in nodes")
                ns[v] = Node()
        self.configs = cfgs
        self._nodes = ns
        self.voter_ids = voters
        self.learner_ids = frozenset(ns.keys()) - voters

    @property
    def nodes(self):
        return dict(self._nodes)

    @property
    def is_joint(self):
        return len(self.configs) > 1

    cpdef bint is_voter(self, node_id):
        return node_id in self.voter_ids

    def is_learner(self, node_id):
        return node_id in self.learner_ids

    def get_node(self, node_id):
        return self._nodes.get(node_id)

    def node_ids(self):
        return frozenset(self._nodes.keys())

    def add_learner(self, node_id, Node node not None):
        """A new membership with `node_id` as learner (no-op for a node already present)."""
        if node_id in self._nodes:
            return self
        ns = dict(self._nodes)
        ns[node_id] = node
        return Membership(self.configs, ns)

    def remove_learner(self, node_id):
        """A new membership without learner `node_id` (no-op for a node absent). A voter is
        not a learner: take it out of the voters with next_coherent first."""
        if node_id not in self._nodes:
            return self
        if any(node_id in c for c in self.configs):
            raise ValueError(f"node {node_id} is a voter, not a learner")
        ns = dict(self._nodes)
        del ns[node_id]
        return Membership(self.configs, ns)

    def next_coherent(self, goal, bint retain=False, dict new_nodes=None):
        """The next step towards voter set `goal` (openraft's extended joint consensus).

        From configs [..., last] it returns [last, goal] (joint); once goal is among the
        current configs it returns [goal] (uniform). Every step's quorums intersect the
        previous step's, so it is safe to propose as soon as the previous one commits.
        Without `retain`, voters that leave are dropped from nodes; with it they stay learners.
        """
        goal_set = _id_set(goal, "change_membership")
        if not goal_set:
            raise ValueError("the target voter set must not be empty")
        ns = dict(self._nodes)
        if new_nodes:
            for k, v in new_nodes.items():
                ns.setdefault(k, v)
        missing = goal_set - frozenset(ns.keys())
        if missing:
            raise KeyError(sorted(missing))
        if goal_set in self.configs:
            cfgs = (goal_set,)
        else:
            cfgs = (self.configs[len(self.configs) - 1], goal_set)
        if not retain:
            still = frozenset().union(*cfgs)
            for v in self.voter_ids:
                if v not in still:
                    ns.pop(v, None)
        return Membership(cfgs, ns)

    def __eq__(self, other):
        if not isinstance(other, Membership):
            return NotImplemented
        return self.configs == (<Membership>other).configs and self._nodes == (<Membership>other)._nodes

    def __hash__(self):
        return hash(self.configs)

    def __reduce__(self):
        return (Membership, ([set(c) for c in self.configs], self._nodes))

    def __repr__(self):
        cfgs = ", ".join("{" + ", ".join(map(str, sorted(c))) + "}" for c in self.configs)
        if self.learner_ids:
            return f"Membership([{cfgs}], learners={sorted(self.learner_ids)})"
        return f"Membership([{cfgs}])"


cdef class Entry:
    def __init__(self, LogId log_id not None, payload=None, int kind=ENTRY_NORMAL):
        if kind == ENTRY_MEMBERSHIP and not isinstance(payload, Membership):
            raise TypeError("a membership entry's payload must be a Membership")
        if kind == ENTRY_BLANK and payload is not None:
            raise ValueError("a blank entry has no payload")
        if kind < ENTRY_NORMAL or kind > ENTRY_MEMBERSHIP:
            raise ValueError(f"unknown entry kind {kind}")
        self.log_id = log_id
        self.payload = payload
        self.kind = kind

    @staticmethod
    def blank(LogId log_id not None):
        return Entry(log_id, None, ENTRY_BLANK)

    @staticmethod
    def membership(LogId log_id not None, Membership m not None):
        return Entry(log_id, m, ENTRY_MEMBERSHIP)

    @property
    def index(self):
        return self.log_id.index

    def __eq__(self, other):
        if not isinstance(other, Entry):
            return NotImplemented
        o = <Entry>other
        return self.kind == o.kind and self.log_id == o.log_id and self.payload == o.payload

    def __hash__(self):
        return hash((self.log_id, self.kind))

    def __reduce__(self):
        return (Entry, (self.log_id, self.payload, self.kind))

    def __repr__(self):
        if self.kind == ENTRY_NORMAL:
            return f"Entry({self.log_id}, {self.payload!r})"
        if self.kind == ENTRY_BLANK:
            return f"Entry({self.log_id}, blank)"
        return f"Entry({self.log_id}, {self.payload!r})"
