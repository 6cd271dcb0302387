"""Config: every tunable of a Raft node, validated at construction (times in seconds)."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable, Optional, Union

from openraft_fast.errors import ConfigError


@dataclass(frozen=True)
class Config:
    """Every tunable of a Raft node. Frozen; `Config(...)` validates each field and raises
    ConfigError naming a bad one; `config.replace(field=value)` makes a changed copy. Times
    are in seconds (floats). Give every node of a cluster the same config (cluster_name and
    leader_id_mode must match).

    Attributes:
        cluster_name: str, default "openraft_fast". Sent in the TCP handshake: a node refuses
            connections from a node of another cluster name.
        heartbeat_interval: seconds, default 0.05. How often a leader sends each follower a
            heartbeat. Must be below election_timeout_min. Also the cap of the TCP client's
            reconnect backoff.
        election_timeout_min: seconds, default 0.15. A follower that hears no leader for a
            random time in [election_timeout_min, election_timeout_max) stands for election
            (after a pre-vote, see enable_pre_vote). Also the default leader_lease.
        election_timeout_max: seconds, default 0.3. The upper end of that range; must exceed
            election_timeout_min. It also bounds: a leader that no quorum acknowledged for
            this long steps down; a voter "healthy" for change_membership acked within it;
            shutdown's hand-off wait; TCP votes, heartbeats and read-index requests; and a
            write whose leader stepped down resolves within 2 x this (OutcomeUnknown).
        max_payload_entries: entries, default 300. Most entries in one append message.
        max_inflight: messages, default 64. Most append messages sent to one target and not
            yet acknowledged.
        max_inflight_bytes: bytes, default 64 MiB. Most payload bytes sent to one target and
            not yet acknowledged (whichever of the two limits comes first).
        replication_lag_threshold: entries, default 5000. A learner is caught up (add_learner
            with blocking=True returns) when it lags the leader's last index by at most this
            many entries; a target whose next entry lies more than this many entries behind
            the snapshot gets the snapshot instead of the log.
        snapshot_policy: entries or "never", default 5000. Build a snapshot once this many
            entries were applied since the last one; "never": only on
            `raft.trigger.snapshot()`.
        snapshot_chunk_size: bytes, default 3 MiB. The TCP transport streams a snapshot in
            chunks of this size, each sent once the previous one is acknowledged.
        max_in_snapshot_log_to_keep: entries, default 1000. After building a snapshot, the
            log is purged up to the snapshot's last index less this many entries, so a
            follower slightly behind still catches up from the log (0: purge all it covers).
        purge_batch_size: entries, default 1. Purge only when at least this many entries can
            go at once (fewer, larger purges).
        leader_id_mode: "adv" (default) or "std". "adv": a leader id is (term, node id), so
            several candidates may win votes in one term and the greater one leads (elections
            rarely collide); "std": one leader per term, as in the Raft paper. A node's saved
            vote and log are tied to the mode they were made in.
        enable_pre_vote: bool, default True. Stand only after a pre-vote round that a quorum
            grants: a restarted, isolated or removed node never raises the term.
        enable_heartbeat: bool, default True. False: a leader sends no heartbeats on its
            timer (tests drive them with `raft.trigger.heartbeat()`).
        enable_elect: bool, default True. False: a node never stands on its own, nor right
            after initialize(); only `raft.trigger.elect()` starts an election (tests).
        enable_tick: bool, default True. False: no timer runs at all (no heartbeats,
            elections or timeouts; tests drive the node by hand).
        leader_lease: seconds or None, default None (= election_timeout_min); at most
            election_timeout_min. A follower refuses votes for this long after hearing from
            its leader; the leader counts on (1 - max_clock_drift) of it for lease reads
            (ReadPolicy.LEASE_READ).
        max_clock_drift: fraction in [0, 1), default 0.1. How much shorter the leader takes
            its lease than the followers grant, for clocks that run at different rates.
        install_snapshot_timeout: seconds, default 5.0. Over TCP, the bound on each snapshot
            chunk's acknowledgement; a leader restarts a snapshot transfer that got no answer
            for this long.
        backoff: seconds, default 0.05. The TCP client's first reconnect delay after a failed
            connection, doubling per failure up to heartbeat_interval.
        quorum_factory: callable or None, default None. `quorum_factory(configs)` (a tuple of
            voter frozensets, two during a joint change) returns the QuorumSet that decides
            what a quorum is; None: a majority of each voter set.
    """

    cluster_name: str = "openraft_fast"
    heartbeat_interval: float = 0.05
    election_timeout_min: float = 0.15
    election_timeout_max: float = 0.3
    max_payload_entries: int = 300
    max_inflight: int = 64
    max_inflight_bytes: int = 64 * 1024 * 1024
    replication_lag_threshold: int = 5000
    snapshot_policy: Union[int, str] = 5000
    snapshot_chunk_size: int = 3 * 1024 * 1024
    max_in_snapshot_log_to_keep: int = 1000
    purge_batch_size: int = 1
    leader_id_mode: str = "adv"
    enable_pre_vote: bool = True
    enable_heartbeat: bool = True
    enable_elect: bool = True
    enable_tick: bool = True
    leader_lease: Optional[float] = None
    max_clock_drift: float = 0.1
    install_snapshot_timeout: float = 5.0
    backoff: float = 0.05
    quorum_factory: Optional[Callable] = None

    def __post_init__(self):
        def positive(name, value, kind=(int, float)):
            if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value) or value <= 0:
                raise ConfigError(name, f"must be a positive finite number, got {value!r}")

        if not isinstance(self.cluster_name, str) or not self.cluster_name:
            raise ConfigError("cluster_name", "must be a non-empty string")
        for name in ("heartbeat_interval", "election_timeout_min", "election_timeout_max",
                     "install_snapshot_timeout", "backoff"):
            positive(name, getattr(self, name))
        for name in ("max_payload_entries", "max_inflight", "max_inflight_bytes",
                     "replication_lag_threshold", "snapshot_chunk_size", "purge_batch_size"):
            positive(name, getattr(self, name), int)
        if not isinstance(self.max_in_snapshot_log_to_keep, int) or self.max_in_snapshot_log_to_keep < 0:
            raise ConfigError("max_in_snapshot_log_to_keep", "must be an int >= 0")
        if self.election_timeout_max <= self.election_timeout_min:
            raise ConfigError("election_timeout_max", "must be greater than election_timeout_min")
        if self.heartbeat_interval >= self.election_timeout_min:
            raise ConfigError("heartbeat_interval", "must be less than election_timeout_min")
        for name in ("enable_pre_vote", "enable_heartbeat", "enable_elect", "enable_tick"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(name, f"must be True or False, got {getattr(self, name)!r}")
        if self.leader_id_mode not in ("adv", "std"):
            raise ConfigError("leader_id_mode", f'must be "adv" or "std", got {self.leader_id_mode!r}')
        sp = self.snapshot_policy
        if not (sp == "never" or (isinstance(sp, int) and not isinstance(sp, bool) and sp > 0)):
            raise ConfigError("snapshot_policy", f'must be a positive int (logs since last) or "never", got {sp!r}')
        if self.leader_lease is not None:
            positive("leader_lease", self.leader_lease)
            if self.leader_lease > self.election_timeout_min:
                raise ConfigError("leader_lease", "must not exceed election_timeout_min")
        if isinstance(self.max_clock_drift, bool) or not isinstance(self.max_clock_drift, (int, float)) \
                or not 0 <= self.max_clock_drift < 1:
            raise ConfigError("max_clock_drift", "must be in [0, 1)")
        if self.quorum_factory is not None and not callable(self.quorum_factory):
            raise ConfigError("quorum_factory", "must be callable")

    @property
    def lease(self) -> float:
        """The leader lease in seconds: leader_lease, or election_timeout_min when None."""
        return self.election_timeout_min if self.leader_lease is None else self.leader_lease

    def replace(self, **changes) -> "Config":
        """A copy with `changes` applied (validated like a new Config)."""
        return dataclasses.replace(self, **changes)
