"""The simulated network: random delays (hence reordering), drops, duplicates and partitions.

It only decides fates; the simulation turns each delivery into an event on its queue.
"""


class NetworkFaults:
    """Per-run fault rates, drawn from the run's rng."""
    __slots__ = ("drop", "duplicate", "delay_min", "delay_max", "slow_prob", "slow_max", "late_dup")

    def __init__(self, rng):
        self.drop = rng.choice((0.0, 0.01, 0.03, 0.08))
        self.duplicate = rng.choice((0.0, 0.01, 0.04))
        self.delay_min = 0.0002
        self.delay_max = rng.choice((0.002, 0.005, 0.01))
        # A few messages take much longer: they arrive after later ones (reordering).
        self.slow_prob = rng.choice((0.0, 0.02, 0.05))
        self.slow_max = 0.1
        # A duplicate that arrives up to slow_max late (after a newer leadership, whose seq
        # numbers restart, may have taken over); off in the default profile.
        self.late_dup = 0.0

    def calm(self):
        self.drop = self.duplicate = self.slow_prob = self.late_dup = 0.0


class Network:
    def __init__(self, rng, faults):
        self.rng = rng
        self.faults = faults
        self.cut = set()                 # directed links (src, dst) that lose every message
        self.sent = self.dropped = self.duplicated = 0
        self.on_change = None            # on_change(kind, detail): "cut" or "heal" (for the election log)

    def _changed(self, kind, detail):
        if self.on_change is not None:
            self.on_change(kind, detail)

    def delays(self, src, dst, allow_duplicate=True):
        """Delays of the copies of one message that reach `dst` (empty: lost)."""
        self.sent += 1
        f = self.faults
        rng = self.rng
        if (src, dst) in self.cut or (f.drop and rng.random() < f.drop):
            self.dropped += 1
            return ()
        copies = 1
        if allow_duplicate and f.duplicate and rng.random() < f.duplicate:
            copies = 2
            self.duplicated += 1
        out = []
        for _ in range(copies):
            if f.slow_prob and rng.random() < f.slow_prob:
                out.append(rng.uniform(f.delay_max, f.slow_max))
            else:
                out.append(rng.uniform(f.delay_min, f.delay_max))
        if allow_duplicate and f.late_dup and rng.random() < f.late_dup:
            self.duplicated += 1
            out.append(rng.uniform(f.slow_max / 2, f.slow_max))
        return out

    def reachable(self, src, dst):
        return (src, dst) not in self.cut

    # -- partitions --
    def isolate(self, node, others):
        self._changed("cut", f"isolate {node}")
        for o in others:
            if o != node:
                self.cut.add((node, o))
                self.cut.add((o, node))

    def split(self, group_a, group_b):
        self._changed("cut", f"split {sorted(group_a)} | {sorted(group_b)}")
        for a in group_a:
            for b in group_b:
                self.cut.add((a, b))
                self.cut.add((b, a))

    def cut_link(self, src, dst):
        self._changed("cut", f"{src}->{dst}")
        self.cut.add((src, dst))

    def heal(self, links=None):
        self._changed("heal", "all" if links is None else sorted(links))
        if links is None:
            self.cut.clear()
        else:
            self.cut.difference_update(links)
