"""Linearizability checker for key-value histories.

The algorithm is Wing and Gong's search with Lowe's improvements (as in Porcupine):

- P-compositionality: a history of independent registers is linearizable iff each key's
  sub-history is, so every key is checked on its own (small searches instead of one huge one).
- Memoisation: a configuration is (the set of operations linearized, as a bitset; the register
  value). A configuration reached once and abandoned is never explored again.
- Pruning: an operation whose outcome is unknown (no response) and that cannot change state
  (a read) is dropped; failed operations never enter a history at all.

An operation with no response may or may not have taken effect, at any moment after its
invocation. It is given a response time of +infinity and an unchecked result: placed after every
completed operation it is indistinguishable from "never happened", so that case is covered too.

The model is one register per key holding a string or nothing (absent), with put, get, delete
and compare-and-set (`expected` None means "only if absent"). A failed cas may report the value
it saw (the KV service's `{"ok": false, "value": ...}`), which is then checked like a read.

The search is bounded by a step budget per key: past it the verdict is "unknown", never a hang.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from openraft_fast.errors import InvalidArgument, InvalidArgumentType

PUT, GET, DELETE, CAS = "put", "get", "delete", "cas"
KINDS = (PUT, GET, DELETE, CAS)

OK, VIOLATION, UNKNOWN = "ok", "violation", "unknown"


class _Unseen:
    """The result of an operation was not observed (a failed cas that did not say what it saw)."""

    _instance: Optional["_Unseen"] = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSEEN"

    def __reduce__(self):
        return (_Unseen, ())


UNSEEN: Any = _Unseen()


@dataclass
class Op:
    """One client operation. `response` None: it never returned, outcome unknown.

    put: writes `value`. delete: removes the key. get: read `output` (None: absent).
    cas: if the current value equals `expected` (None: absent) write `value`; `ok` says whether
    it did; a failed cas may carry the current value it saw in `output`.
    """

    kind: str
    key: str
    invoke: float
    response: Optional[float] = None
    value: Optional[str] = None
    expected: Optional[str] = None
    ok: Optional[bool] = None
    output: Any = UNSEEN
    client: int = -1
    id: int = -1

    def __post_init__(self):
        if self.kind not in KINDS:
            raise InvalidArgument(f"op kind must be one of {KINDS}, got {self.kind!r}")
        if self.response is not None and self.response < self.invoke:
            raise InvalidArgument(f"op {self.id} responds ({self.response}) before it is invoked ({self.invoke})")
        if self.kind == CAS and self.response is not None and self.ok is None:
            raise InvalidArgument(f"completed cas {self.id} needs ok=True/False")
        if self.kind == GET and self.response is not None and self.output is UNSEEN:
            raise InvalidArgument(f"completed get {self.id} needs its output (None: absent)")

    @property
    def pending(self) -> bool:
        return self.response is None

    def to_json(self) -> Dict[str, Any]:
        d: Dict[str, Any] = {"id": self.id, "client": self.client, "kind": self.kind, "key": self.key,
                             "invoke": self.invoke, "response": self.response}
        if self.kind in (PUT, CAS):
            d["value"] = self.value
        if self.kind == CAS:
            d["expected"] = self.expected
            d["ok"] = self.ok
        if self.output is not UNSEEN:
            d["output"] = self.output
        return d

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "Op":
        return cls(kind=d["kind"], key=d["key"], invoke=d["invoke"], response=d.get("response"),
                   value=d.get("value"), expected=d.get("expected"), ok=d.get("ok"),
                   output=d["output"] if "output" in d else UNSEEN, client=d.get("client", -1),
                   id=d.get("id", -1))

    def describe(self) -> str:
        when = f"[{self.invoke:.6f}, {'?' if self.response is None else f'{self.response:.6f}'}]"
        if self.kind == PUT:
            what = f"put({self.key!r}, {self.value!r})"
        elif self.kind == DELETE:
            what = f"delete({self.key!r})"
        elif self.kind == GET:
            what = f"get({self.key!r}) -> {'?' if self.pending else repr(self.output)}"
        else:
            res = "?" if self.pending else ("ok" if self.ok else f"failed, saw {self.output!r}"
                                               if self.output is not UNSEEN else "failed")
            what = f"cas({self.key!r}, {self.expected!r} -> {self.value!r}) -> {res}"
        return f"op {self.id} client {self.client} {when} {what}"


def step(state: Optional[str], op: Op) -> Tuple[bool, Optional[str]]:
    """The register model: whether `op` is legal in `state`, and the state after it."""
    kind = op.kind
    if kind == PUT:
        return True, op.value
    if kind == DELETE:
        return True, None
    if kind == GET:
        return (op.pending or state == op.output), state
    # cas
    if op.pending:
        return True, (op.value if state == op.expected else state)
    if op.ok:
        return state == op.expected, op.value
    if state == op.expected:
        return False, state
    return (op.output is UNSEEN or op.output == state), state


@dataclass
class CheckResult:
    """`status` is "ok", "violation" or "unknown" (the search budget ran out)."""

    status: str
    key: Optional[str] = None
    ops: List[Op] = field(default_factory=list)
    message: str = ""
    keys_checked: int = 0
    ops_checked: int = 0
    steps: int = 0

    @property
    def ok(self) -> bool:
        return self.status == OK

    @property
    def violation(self) -> bool:
        return self.status == VIOLATION

    def explain(self) -> str:
        if self.status != VIOLATION:
            return self.message
        lines = [self.message] + ["  " + op.describe() for op in self.ops]
        return "\n".join(lines)


@dataclass
class _KeyVerdict:
    status: str
    steps: int
    prefix: List[Op] = field(default_factory=list)
    stuck: Optional[Op] = None
    considered: int = 0
    stuck_deadline: float = math.inf


def _search(ops: Sequence[Op], budget: int) -> _KeyVerdict:
    """Wing-Gong-Lowe search over one key's operations, after `_prepare`."""
    kept, deadlines = _prepare(ops)
    return search(kept, deadlines, step, None, budget)


def search(ops: Sequence[Any], deadlines: Sequence[float], step_fn, initial: Any, budget: int) -> _KeyVerdict:
    """Wing-Gong-Lowe search: can `ops` (each with `invoke`, and the latest time it may take
    effect in `deadlines`) be ordered consistently with real time so that `step_fn(state, op)
    -> (legal, next state)` accepts each, from `initial`? States must be hashable."""
    n = len(ops)
    if n == 0:
        return _KeyVerdict(OK, 0)
    # Events: calls before returns at equal times (equal timestamps are taken as concurrent).
    events = []
    for i, op in enumerate(ops):
        events.append((op.invoke, 0, i))
        events.append((deadlines[i], 1, i))
    events.sort()
    head, tail = 0, 2 * n + 1
    nxt = [0] * (2 * n + 2)
    prv = [0] * (2 * n + 2)
    op_of = [-1] * (2 * n + 2)
    is_call = [False] * (2 * n + 2)
    ret_of_op = [0] * n
    call_of_op = [0] * n
    for pos, (_, ret, i) in enumerate(events, start=1):
        op_of[pos] = i
        is_call[pos] = not ret
        if ret:
            ret_of_op[i] = pos
        else:
            call_of_op[i] = pos
    for pos in range(0, tail):
        nxt[pos] = pos + 1
        prv[pos + 1] = pos
    match = [0] * (2 * n + 2)
    for i in range(n):
        match[call_of_op[i]] = ret_of_op[i]

    state: Any = initial
    linearized = 0
    cache = set()
    stack: List[Tuple[int, Any]] = []
    best_depth, best_prefix, best_stuck, best_deadline = -1, [], None, math.inf
    entry = nxt[head]
    steps = 0
    while nxt[head] != tail:
        steps += 1
        if steps > budget:
            return _KeyVerdict(UNKNOWN, steps, considered=n)
        if is_call[entry]:
            i = op_of[entry]
            legal, new_state = step_fn(state, ops[i])
            if legal:
                lin = linearized | (1 << i)
                conf = (lin, new_state)
                if conf not in cache:
                    cache.add(conf)
                    stack.append((entry, state))
                    state, linearized = new_state, lin
                    # lift the call and its return out of the list
                    r = match[entry]
                    nxt[prv[entry]] = nxt[entry]
                    prv[nxt[entry]] = prv[entry]
                    nxt[prv[r]] = nxt[r]
                    prv[nxt[r]] = prv[r]
                    entry = nxt[head]
                    continue
            entry = nxt[entry]
        else:
            # An operation's response is reached and it is not linearized yet: backtrack.
            if len(stack) > best_depth:
                best_depth = len(stack)
                best_prefix = [ops[op_of[e]] for e, _ in stack]
                best_stuck = ops[op_of[entry]]
                best_deadline = deadlines[op_of[entry]]
            if not stack:
                return _KeyVerdict(VIOLATION, steps, best_prefix, best_stuck, n, best_deadline)
            entry, state = stack.pop()
            linearized &= ~(1 << op_of[entry])
            r = match[entry]
            nxt[prv[r]] = r
            prv[nxt[r]] = r
            nxt[prv[entry]] = entry
            prv[nxt[entry]] = entry
            entry = nxt[entry]
    return _KeyVerdict(OK, steps, considered=n)


def _prepare(ops: Sequence[Op]) -> Tuple[List[Op], List[float]]:
    """Prune one key's operations and give each the latest time it may take effect.

    An op with no response stays open until the end of the history, and every open op doubles
    the configurations to explore, so pending ops are narrowed down where that is exact:
    - a pending read constrains nothing: dropped;
    - a pending write of a value nobody saw is dropped, unless some failed cas did not say what
      it saw. Taking effect, it would only put a value nobody reads; dropping it together with
      any pending cas that would then newly apply gives a valid linearization, so a history is
      linearizable with the op iff it is without it;
    - a pending write that is the only writer of a value some completed op saw must have taken
      effect before that op responded: its deadline is the earliest such response.
    """
    writers: Dict[Optional[str], int] = {}
    seen_by: Dict[Optional[str], float] = {}
    expected_by_pending = set()
    blind_cas = False
    for op in ops:
        if op.kind in (PUT, CAS):
            writers[op.value] = writers.get(op.value, 0) + 1
        if op.pending:
            if op.kind == CAS:
                expected_by_pending.add(op.expected)
            continue
        v = _observed(op)
        t = op.response
        assert t is not None
        if v is not UNSEEN and (v not in seen_by or t < seen_by[v]):
            seen_by[v] = t
        if op.kind == CAS and not op.ok and op.output is UNSEEN:
            blind_cas = True
    kept: List[Op] = []
    deadlines: List[float] = []
    for op in ops:
        if op.response is not None:
            kept.append(op)
            deadlines.append(op.response)
            continue
        if op.kind == GET:
            continue
        if op.kind in (PUT, CAS):
            v = op.value
            if v in seen_by:
                kept.append(op)
                deadlines.append(seen_by[v] if writers[v] == 1 else math.inf)
                continue
            if not blind_cas and v not in expected_by_pending:
                continue
        kept.append(op)
        deadlines.append(math.inf)
    return kept, deadlines


def _observed(op: Op) -> Any:
    """The value an operation saw (None: the key absent), or UNSEEN when it saw nothing."""
    if op.pending:
        return UNSEEN
    if op.kind == GET:
        return op.output
    if op.kind == CAS:
        return op.expected if op.ok else op.output
    return UNSEEN


def _with_sources(subset: List[Op], ops: Sequence[Op]) -> List[Op]:
    """`subset` plus, transitively, every op of `ops` that wrote a value an op in it saw (and the
    deletes, when one saw the key absent). With unique values, a sub-history closed like this
    is linearizable when the whole one is, so a violation found in it is a real one."""
    writers: Dict[Optional[str], List[Op]] = {}
    for op in ops:
        if op.kind in (PUT, CAS):
            writers.setdefault(op.value, []).append(op)
        elif op.kind == DELETE:
            writers.setdefault(None, []).append(op)
    chosen = {id(op): op for op in subset}
    todo = list(subset)
    while todo:
        op = todo.pop()
        seen = _observed(op)
        if seen is UNSEEN:
            continue
        for w in writers.get(seen, ()):
            if id(w) not in chosen:
                chosen[id(w)] = w
                todo.append(w)
    return list(chosen.values())


def _explain(ops: List[Op], verdict: _KeyVerdict, budget: int, max_checks: int) -> List[Op]:
    """A small non-linearizable subset of one key's ops: a time window ending where the search
    got stuck, widened until it fails on its own, then shrunk by delta debugging."""
    stuck = verdict.stuck
    if stuck is None:
        return _minimize(list(ops), budget, max_checks)
    hi = verdict.stuck_deadline
    if hi == math.inf:
        hi = max((op.response for op in ops if op.response is not None), default=stuck.invoke)
    width = max(hi - stuck.invoke, 1e-9)
    candidate = list(ops)
    while True:
        lo = stuck.invoke - width
        window = [op for op in ops if op.invoke <= hi and (op.response is None or op.response >= lo)]
        window = _with_sources(window, ops)
        if len(window) >= len(ops):
            candidate = [op for op in ops if op.invoke <= hi] or list(ops)
            break
        if _search(window, budget).status == VIOLATION:
            candidate = window
            break
        width *= 4
    return _minimize(candidate, budget, max_checks)


def _minimize(ops: List[Op], budget: int, max_checks: int) -> List[Op]:
    """Shrink a non-linearizable key history to a small one that is still non-linearizable
    (delta debugging: drop chunks, then single ops, while the search still says violation).
    A write whose value a kept operation saw is kept too, so a stale read is explained by the
    write it saw and the one it missed, not as a read of a value nobody wrote."""
    written = {op.value for op in ops if op.kind in (PUT, CAS)}

    def explains(candidate: List[Op]) -> bool:
        have = {op.value for op in candidate if op.kind in (PUT, CAS)}
        for op in candidate:
            v = _observed(op)
            if v is not UNSEEN and v is not None and v in written and v not in have:
                return False
        return _search(candidate, budget).status == VIOLATION

    checks = 0
    current = list(ops)
    chunk = max(1, len(current) // 2)
    while chunk >= 1 and checks < max_checks:
        i = 0
        removed_any = False
        while i < len(current) and checks < max_checks:
            candidate = current[:i] + current[i + chunk:]
            checks += 1
            if candidate and explains(candidate):
                current = candidate
                removed_any = True
            else:
                i += chunk
        if chunk == 1 and not removed_any:
            break
        chunk = max(1, chunk // 2) if chunk > 1 else 1
    return current


def check(history: Iterable[Op], budget: int = 2_000_000, minimize: bool = True,
          minimize_checks: int = 400) -> CheckResult:
    """Check a KV history. `budget` bounds the search steps per key; past it the verdict is
    "unknown". A violation names the key and a minimal set of its operations that cannot be
    put in any order consistent with real time and the register model."""
    by_key: Dict[str, List[Op]] = {}
    total = 0
    for op in history:
        if not isinstance(op, Op):
            raise InvalidArgumentType(f"history entries must be lincheck.Op, got {type(op).__name__}")
        total += 1
        by_key.setdefault(op.key, []).append(op)
    steps = 0
    unknown_keys = []
    for key in sorted(by_key):
        ops = by_key[key]
        verdict = _search(ops, budget)
        steps += verdict.steps
        if verdict.status == UNKNOWN:
            unknown_keys.append(key)
        elif verdict.status == VIOLATION:
            if minimize:
                small_budget = max(10_000, budget // 20)
                culprit = _explain(ops, verdict, small_budget, minimize_checks)
            else:
                culprit = ops
            culprit = sorted(culprit, key=lambda o: (o.invoke, o.id))
            stuck = verdict.stuck
            msg = (f"key {key!r}: not linearizable; {len(culprit)} operations cannot be ordered "
                   f"(the search linearized at most {len(verdict.prefix)} of {verdict.considered} "
                   f"before op {stuck.id if stuck else '?'} had to take effect)")
            return CheckResult(VIOLATION, key=key, ops=culprit, message=msg,
                               keys_checked=len(by_key), ops_checked=total, steps=steps)
    if unknown_keys:
        return CheckResult(UNKNOWN, key=unknown_keys[0], message=(
            f"search budget ({budget} steps per key) exhausted on keys {unknown_keys[:5]!r}; "
            f"no violation found elsewhere"), keys_checked=len(by_key), ops_checked=total, steps=steps)
    return CheckResult(OK, message=f"linearizable: {total} operations on {len(by_key)} keys",
                       keys_checked=len(by_key), ops_checked=total, steps=steps)


class History:
    """Records operations as clients run them, with monotonic timestamps.

    `start(...)` at invocation returns the op; then `finish(op, ...)` when it returned, `fail(op)`
    when it certainly did not take effect (it is dropped), or nothing (outcome unknown).
    """

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self.ops: List[Op] = []
        self._failed = set()

    def start(self, kind: str, key: str, client: int = -1, value: Optional[str] = None,
              expected: Optional[str] = None) -> Op:
        op = Op(kind=kind, key=key, invoke=self._clock(), value=value, expected=expected,
                client=client, id=len(self.ops))
        self.ops.append(op)
        return op

    def finish(self, op: Op, output: Any = UNSEEN, ok: Optional[bool] = None) -> None:
        op.response = self._clock()
        op.output = output
        op.ok = ok

    def fail(self, op: Op) -> None:
        self._failed.add(op.id)

    def operations(self) -> List[Op]:
        return [op for op in self.ops if op.id not in self._failed]

    def counts(self) -> Dict[str, int]:
        ops = self.ops
        return {"invoked": len(ops), "failed": len(self._failed),
                "unknown": sum(1 for o in ops if o.response is None and o.id not in self._failed),
                "ok": sum(1 for o in ops if o.response is not None)}

    def save(self, path: str) -> None:
        dump_history(self.operations(), path)


def dump_history(ops: Iterable[Op], path: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"format": "openraft_fast.lincheck/1", "ops": [op.to_json() for op in ops]}, f)


def load_history(path: str) -> List[Op]:
    with open(path, encoding="utf-8") as f:
        try:
            data = json.load(f)
        except ValueError as e:
            raise InvalidArgument(f"{path}: not JSON ({e})") from None
    if not isinstance(data, dict) or data.get("format") != "openraft_fast.lincheck/1":
        raise InvalidArgument(f"{path}: not an openraft_fast.lincheck/1 history")
    try:
        return [Op.from_json(d) for d in data["ops"]]
    except (KeyError, TypeError, AttributeError) as e:
        raise InvalidArgument(f"{path}: malformed operation ({e!r})") from None


def main(argv: Optional[List[str]] = None) -> int:
    """`python -m openraft_fast.testing.lincheck HISTORY.json`: check a saved history."""
    import argparse
    p = argparse.ArgumentParser(prog="python -m openraft_fast.testing.lincheck")
    p.add_argument("history")
    p.add_argument("--budget", type=int, default=2_000_000)
    args = p.parse_args(argv)
    result = check(load_history(args.history), budget=args.budget)
    print(result.explain())
    return {OK: 0, VIOLATION: 1, UNKNOWN: 3}[result.status]


if __name__ == "__main__":
    raise SystemExit(main())
