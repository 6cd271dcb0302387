"""Linearizability of multi-key histories: transactions (the KV service's POST /v1/txn) mixed
with single-key operations.

A transaction reads and writes several keys at once, so keys are no longer independent: the
keys that some transaction touches together form one component, and each component is checked
as one state (a value per key) with lincheck's Wing-Gong-Lowe search. Single-key operations
(lincheck.Op) join the component of their key as one-key transactions.

The model of a transaction: its compares (`value` `==`/`!=` a string or None for absent, and
`exists` `==`/`!=` a bool) decide the branch; the ops of the branch run in order (put, delete,
get). A completed transaction must show the branch the model takes (`succeeded`) and, for each
get of that branch, the value the model holds then (`results`). Revision compares are not
modelled (revisions are log indexes, which a model cannot predict).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

from openraft_fast.errors import InvalidArgument
from openraft_fast.testing import lincheck
from openraft_fast.testing.lincheck import CAS, DELETE, GET, OK, PUT, UNKNOWN, UNSEEN, VIOLATION, CheckResult, Op

Compare = Tuple[str, str, str, Any]     # (key, "value" | "exists", "==" | "!=", value)
TxnStep = Tuple[Any, ...]               # ("put", key, value) | ("delete", key) | ("get", key)


@dataclass
class TxnOp:
    """One transaction. `response` None: it never returned, outcome unknown. Completed:
    `succeeded` says which branch ran, `results` the value each get of it read (None: absent;
    puts and deletes: None)."""

    invoke: float
    compares: List[Compare] = field(default_factory=list)
    success: List[TxnStep] = field(default_factory=list)
    failure: List[TxnStep] = field(default_factory=list)
    response: Optional[float] = None
    succeeded: Optional[bool] = None
    results: Optional[List[Any]] = None
    client: int = -1
    id: int = -1

    def __post_init__(self):
        for c in self.compares:
            if c[1] not in ("value", "exists") or c[2] not in ("==", "!="):
                raise InvalidArgument(f"txn {self.id}: compares are on value or exists with == or !=, got {c!r}")
        for s in self.success + self.failure:
            if s[0] not in (PUT, DELETE, GET):
                raise InvalidArgument(f"txn {self.id}: unknown op {s!r}")
        if self.response is not None and (self.succeeded is None or self.results is None):
            raise InvalidArgument(f"completed txn {self.id} needs succeeded and results")

    @property
    def pending(self) -> bool:
        return self.response is None

    @property
    def keys(self) -> List[str]:
        return sorted({c[0] for c in self.compares} | {s[1] for s in self.success + self.failure})

    def describe(self) -> str:
        when = f"[{self.invoke:.6f}, {'?' if self.response is None else f'{self.response:.6f}'}]"
        res = "?" if self.pending else f"{'success' if self.succeeded else 'failure'} {self.results!r}"
        return (f"op {self.id} client {self.client} {when} txn(if {self.compares!r} then {self.success!r} "
                f"else {self.failure!r}) -> {res}")


def as_txn(op: Op) -> TxnOp:
    """A single-key operation as the one-key transaction it is."""
    key = op.key
    done = op.response is not None
    if op.kind == PUT:
        return TxnOp(op.invoke, [], [(PUT, key, op.value)], [], op.response, True if done else None,
                     [None] if done else None, op.client, op.id)
    if op.kind == DELETE:
        return TxnOp(op.invoke, [], [(DELETE, key)], [], op.response, True if done else None,
                     [None] if done else None, op.client, op.id)
    if op.kind == GET:
        return TxnOp(op.invoke, [], [(GET, key)], [], op.response, True if done else None,
                     [op.output] if done else None, op.client, op.id)
    assert op.kind == CAS
    # A failed cas that said what it saw reads it; one that did not reads nothing checkable.
    seen = done and not op.ok and op.output is not UNSEEN
    return TxnOp(op.invoke, [(key, "value", "==", op.expected)], [(PUT, key, op.value)],
                 [(GET, key)] if seen else [], op.response, op.ok if done else None,
                 ([None] if op.ok else [op.output] if seen else []) if done else None, op.client, op.id)


def _holds(values: Dict[str, Any], c: Compare) -> bool:
    key, target, op, want = c
    have = values.get(key)
    if target == "value":
        eq = have == want
    else:
        eq = (have is not None) == want
    return eq if op == "==" else not eq


def _make_step(keys: List[str]):
    index = {k: i for i, k in enumerate(keys)}

    def step(state: Tuple[Any, ...], op: TxnOp) -> Tuple[bool, Tuple[Any, ...]]:
        values = dict(zip(keys, state))
        succeeded = all(_holds(values, c) for c in op.compares)
        if not op.pending and succeeded != op.succeeded:
            return False, state
        new = list(state)
        got: List[Any] = []
        for s in op.success if succeeded else op.failure:
            i = index[s[1]]
            if s[0] == PUT:
                new[i] = s[2]
                got.append(None)
            elif s[0] == DELETE:
                new[i] = None
                got.append(None)
            else:
                got.append(new[i])
        if not op.pending and got != list(op.results or ()):
            return False, state
        return True, tuple(new)
    return step


def _components(ops: List[TxnOp]) -> List[Tuple[List[str], List[TxnOp]]]:
    parent: Dict[str, str] = {}

    def find(k: str) -> str:
        while parent.setdefault(k, k) != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for op in ops:
        keys = op.keys
        for k in keys[1:]:
            parent[find(k)] = find(keys[0])
        if keys:
            find(keys[0])
    groups: Dict[str, Tuple[List[str], List[TxnOp]]] = {}
    for k in parent:
        groups.setdefault(find(k), ([], []))[0].append(k)
    for op in ops:
        if op.keys:
            groups[find(op.keys[0])][1].append(op)
    return [(sorted(keys), members) for keys, members in groups.values()]


def _writes(op: TxnOp) -> bool:
    return any(s[0] != GET for s in op.success + op.failure)


def check(history: Iterable[Union[Op, TxnOp]], budget: int = 2_000_000) -> CheckResult:
    """Check a history of transactions and single-key operations. A violation names one
    component's keys and its operations."""
    ops: List[TxnOp] = []
    for op in history:
        if isinstance(op, Op):
            op = as_txn(op)
        elif not isinstance(op, TxnOp):
            raise InvalidArgument(f"history entries must be lincheck.Op or TxnOp, got {type(op).__name__}")
        if op.pending and not _writes(op):
            continue            # a read that never returned constrains nothing
        ops.append(op)
    steps = 0
    unknown = []
    components = _components(ops)
    for keys, members in sorted(components, key=lambda c: c[0]):
        deadlines = [math.inf if op.response is None else op.response for op in members]
        verdict = lincheck.search(members, deadlines, _make_step(keys), tuple(None for _ in keys), budget)
        steps += verdict.steps
        if verdict.status == UNKNOWN:
            unknown.append(keys)
        elif verdict.status == VIOLATION:
            culprit = sorted(members, key=lambda o: (o.invoke, o.id))
            return CheckResult(VIOLATION, key=",".join(keys), ops=culprit,     # type: ignore[arg-type]
                               message=f"keys {keys!r}: not linearizable ({len(members)} operations; the search "
                                       f"linearized at most {len(verdict.prefix)})",
                               keys_checked=len(components), ops_checked=len(ops), steps=steps)
    if unknown:
        return CheckResult(UNKNOWN, key=",".join(unknown[0]), message=f"search budget exhausted on {unknown[:3]!r}",
                           keys_checked=len(components), ops_checked=len(ops), steps=steps)
    return CheckResult(OK, message=f"linearizable: {len(ops)} operations in {len(components)} key groups",
                       keys_checked=len(components), ops_checked=len(ops), steps=steps)
