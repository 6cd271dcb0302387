"""Peers: the network client of each target node, made on first use from the membership's
address, and made again when the membership moves that node id to another address (a node
removed and added back elsewhere, or replaced): traffic must not keep going to the old one."""
from openraft_fast._core.events import EventQueue
from openraft_fast._core.peers import Peers
from openraft_fast._core.types import Membership, Node


class _Engine:
    node_id = 1

    def __init__(self, membership):
        self.membership = membership

    def target_node(self, target):
        return self.membership.get_node(target)

    def recv_append_response(self, *a):
        pass

    def recv_vote_response(self, *a):
        pass


class _Client:
    def __init__(self, target, addr):
        self.target, self.addr, self.closed = target, addr, False

    def close(self):
        self.closed = True


class _Factory:
    def __init__(self):
        self.made = []

    def new_client(self, target, node):
        c = _Client(target, node.addr)
        self.made.append(c)
        return c


def _membership(addrs, learners=()):
    nodes = {i: Node(a) for i, a in addrs.items()}
    return Membership(set(addrs) - set(learners), nodes)


def test_a_client_is_made_once_per_target_and_kept_while_its_address_holds():
    engine = _Engine(_membership({1: "h:1", 2: "h:2", 3: "h:3"}))
    f = _Factory()
    peers = Peers(EventQueue(), f, engine)
    c2 = peers.client(2)
    assert c2.addr == "h:2" and peers.client(2) is c2
    assert peers.client(9) is None
    engine.membership = _membership({1: "h:1", 2: "h:2", 3: "h:3", 4: "h:4"}, learners=[4])
    assert peers.client(2) is c2 and not c2.closed          # another membership, same address
    assert peers.client(4).addr == "h:4"


def test_a_node_id_moved_to_another_address_gets_a_new_client_and_the_old_one_is_closed():
    engine = _Engine(_membership({1: "h:1", 2: "h:2", 3: "h:3", 4: "h:4"}))
    f = _Factory()
    peers = Peers(EventQueue(), f, engine)
    old = peers.client(4)
    c2 = peers.client(2)
    engine.membership = _membership({1: "h:1", 2: "h:2", 3: "h:3"})      # 4 removed
    engine.membership = _membership({1: "h:1", 2: "h:2", 3: "h:3", 4: "h:44"}, learners=[4])  # back, elsewhere
    new = peers.client(4)
    assert new is not old and new.addr == "h:44" and old.closed
    assert peers.client(2) is c2 and not c2.closed
    peers.close_all()
    assert new.closed and c2.closed
