"""Config: every tunable of a Raft node, validated at construction (times in seconds)."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable, Optional, Union

from openraft_fast.errors import ConfigError


@dataclass(frozen=True)
class Config:
    cluster_name: str = "openraft_fast"
    heartbeat_interval: float = 0.05
    election_timeout_min: float = 0.15
    election_timeout_max: float = 0.3
    # Most entries in one append message, and the in-flight window per target.
    max_payload_entries: int = 300
    max_inflight: int = 64
    max_inflight_bytes: int = 64 * 1024 * 1024
    # A learner is caught up when it lags at most this many entries; a target lagging more
    # than this behind the snapshot gets the snapshot instead of logs.
    replication_lag_threshold: int = 5000
    # Build a snapshot after this many applied entries since the last one, or "never".
    snapshot_policy: Union[int, str] = 5000
    snapshot_chunk_size: int = 3 * 1024 * 1024
    max_in_snapshot_log_to_keep: int = 1000
    purge_batch_size: int = 1
    leader_id_mode: str = "adv"
    enable_pre_vote: bool = True
    enable_heartbeat: bool = True
    enable_elect: bool = True
    enable_tick: bool = True
    # Followers refuse votes this long after hearing from a leader (None: election_timeout_min);
    # the leader counts on its lease for (1 - max_clock_drift) of it.
    leader_lease: Optional[float] = None
    max_clock_drift: float = 0.1
    install_snapshot_timeout: float = 5.0
    backoff: float = 0.05
    # configs (tuple of voter frozensets) -> QuorumSet; None: majority / joint majority.
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
        return self.election_timeout_min if self.leader_lease is None else self.leader_lease

    def replace(self, **changes) -> "Config":
        return dataclasses.replace(self, **changes)
