"""openraft_fast: a Raft consensus engine for Python with a compiled hot path."""
from openraft_fast._core.types import Entry, LeaderId, LogId, Membership, Node, Vote

__version__ = "0.1.0.dev0"

__all__ = ["Entry", "LeaderId", "LogId", "Membership", "Node", "Vote"]
