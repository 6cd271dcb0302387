"""The service's Prometheus metrics, in a per-server CollectorRegistry (never the global one, so
several servers can live in one process).

Raft state is read from `raft.metrics` at scrape time (nothing to keep in sync); events (writes,
HTTP answers, snapshots, purges) are counted as they happen or as `observe()` sees them.
"""
from __future__ import annotations

from bisect import bisect_left
from typing import Any, Dict, Optional

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString
from prometheus_client.exposition import generate_latest

from openraft_fast.metrics import ServerState

# Write latency buckets (seconds): sub-millisecond commits in one process up to multi-second
# waits through an election.
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _index(log_id) -> int:
    return 0 if log_id is None else log_id.index


class _RaftCollector:
    def __init__(self, service: "KvMetrics") -> None:
        self._service = service

    def collect(self):
        svc = self._service
        m = svc.raft.metrics
        state = GaugeMetricFamily("openraft_server_state", "1 for this node's current role", labels=["state"])
        for s in ServerState:
            state.add_metric([s.name.lower()], 1.0 if m.state == s else 0.0)
        yield state
        for name, doc, value in (
                ("openraft_node_id", "this node's id", m.id),
                ("openraft_term", "current term", m.current_term),
                ("openraft_leader_id", "the leader this node knows of (-1: none)",
                 -1 if m.current_leader is None else m.current_leader),
                ("openraft_last_log_index", "index of the last log entry", m.last_log_index),
                ("openraft_committed_index", "index of the last committed entry", _index(m.committed)),
                ("openraft_applied_index", "index of the last applied entry", _index(m.last_applied)),
                ("openraft_snapshot_index", "last index the current snapshot covers", _index(m.snapshot)),
                ("openraft_purged_index", "last purged log index", _index(m.purged))):
            yield GaugeMetricFamily(name, doc, value=value)
        voters = GaugeMetricFamily("openraft_voters", "voters in the effective membership", value=(
            0 if m.membership is None else len(m.membership.voter_ids)))
        yield voters
        lag = GaugeMetricFamily("openraft_replication_lag_entries",
                                "leader only: entries a target lacks (last log index - matched)", labels=["target"])
        matched = GaugeMetricFamily("openraft_replication_matched_index", "leader only: a target's matched index",
                                    labels=["target"])
        for target, mid in sorted((m.replication or {}).items()):
            if target == m.id:
                continue
            lag.add_metric([str(target)], m.last_log_index - _index(mid))
            matched.add_metric([str(target)], _index(mid))
        yield lag
        yield matched
        sm = svc.state_machine
        if sm is not None:
            yield GaugeMetricFamily("kv_keys", "keys in the state machine", value=len(sm))
            snaps = CounterMetricFamily("kv_snapshots", "snapshots written by the state machine", labels=["kind"])
            snaps.add_metric(["built"], sm.snapshots_built)
            snaps.add_metric(["installed"], sm.snapshots_installed)
            yield snaps
            yield GaugeMetricFamily("kv_leases", "leases that exist", value=len(sm.leases))
            yield GaugeMetricFamily("kv_compacted_revision", "watch history: changes kept after this revision",
                                    value=sm.compacted_revision)
        if svc.watch_hub is not None:
            yield GaugeMetricFamily("kv_watchers", "watch streams this node serves", value=len(svc.watch_hub.watchers))
        if svc.lease_keeper is not None:
            yield CounterMetricFamily("kv_leases_expired", "leases this node revoked (as leader) because they expired",
                                      value=svc.lease_keeper.expired)


class LatencyHistogram:
    """A Prometheus histogram with one label, observed for a fraction of what
    prometheus_client's Histogram costs (no lock, one bisect): it is on every write's path."""

    def __init__(self, name: str, doc: str, label: str, buckets) -> None:
        self.name = name
        self.doc = doc
        self.label = label
        self.bounds = sorted(buckets)
        self._series: Dict[str, list] = {}     # label value -> [count per bucket (+Inf last)..., sum]

    def observe(self, value: str, seconds: float) -> None:
        s = self._series.get(value)
        if s is None:
            s = self._series[value] = [0] * (len(self.bounds) + 1) + [0.0]
        s[bisect_left(self.bounds, seconds)] += 1
        s[-1] += seconds

    def collect(self):
        fam = HistogramMetricFamily(self.name, self.doc, labels=[self.label])
        les = [floatToGoString(b) for b in self.bounds] + ["+Inf"]
        for value, s in sorted(self._series.items()):
            cumulative, total = [], 0
            for le, n in zip(les, s[:-1]):
                total += n
                cumulative.append((le, total))
            fam.add_metric([value], cumulative, sum_value=s[-1])
        yield fam


class KvMetrics:
    def __init__(self, raft, state_machine=None, registry: Optional[CollectorRegistry] = None) -> None:
        self.raft = raft
        self.state_machine = state_machine
        self.watch_hub: Any = None      # set by the server: kv.watch.WatchHub
        self.lease_keeper: Any = None   # kv.leases.LeaseKeeper
        self.registry = registry if registry is not None else CollectorRegistry()
        self.registry.register(_RaftCollector(self))
        self.write_latency = LatencyHistogram("kv_write_seconds", "time from receiving a write to answering it",
                                              "op", _LATENCY_BUCKETS)
        self.registry.register(self.write_latency)
        self.responses = Counter("kv_http_responses", "HTTP answers by route and status",
                                 ["route", "status"], registry=self.registry)
        self.snapshot_changes = Counter("openraft_snapshot_changes", "new snapshots this node was seen to take on",
                                        registry=self.registry)
        self.purges = Counter("openraft_log_purges", "log purges this node was seen to make", registry=self.registry)
        self._snapshot = raft.metrics.snapshot
        self._purged = raft.metrics.purged

    def observe(self) -> None:
        """Count snapshot and purge progress since the last call (the server calls it
        periodically and on every scrape)."""
        m = self.raft.metrics
        if m.snapshot != self._snapshot:
            self._snapshot = m.snapshot
            self.snapshot_changes.inc()
        if m.purged != self._purged:
            self._purged = m.purged
            self.purges.inc()

    def exposition(self) -> bytes:
        self.observe()
        return generate_latest(self.registry)
