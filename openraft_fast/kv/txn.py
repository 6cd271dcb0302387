"""Multi-key transactions (POST /v1/txn, KvClient.txn): a request checked and packed into one
log entry, evaluated against the state when the entry applies, and its answer.

A transaction compares keys, then runs the ops of one branch (`success` if every compare
holds, else `failure`), all at the entry's revision: atomic, and linearizable like any write.
The ops of a branch run in order, so a get sees the branch's earlier puts and deletes.

Compares: `{"key", "target", "op", "value"}`.
- target "value": the key's value, a string; an absent key's is null, equal only to null
  (`==` null: absent; `!=` null: present); `<` and `>` compare strings and are false when
  either side is null.
- target "revision": the revision that last wrote the key, an integer; 0 when absent.
- target "exists": a boolean; op `==` or `!=` only.

Ops, one key each: `{"put": {"key", "value", "lease"?}}`, `{"delete": {"key"}}`,
`{"delete_range": {"prefix"}}` (a non-empty prefix), `{"get": {"key"}}`.
Results, one per op of the branch taken: `{"revision"}` for a put, `{"deleted": n}` for a
delete or delete_range, `{"value", "revision"}` or null for a get.

In the log entry (msgpack): `[TXN, compares, success, failure]`, a compare as
`[key, target, op, value]` with small-integer codes, an op as `[code, key or prefix(, value)]`.
"""
from __future__ import annotations

from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

from openraft_fast.errors import InvalidArgument
from openraft_fast.kv.commands import TXN, check_key, check_lease, check_prefix, check_value, pack

LEASE_NOT_FOUND = "lease_not_found"        # the state machine's answer (state_machine.LEASE_NOT_FOUND)


class LeaseNotFound(InvalidArgument):
    """A write named a lease that does not exist (never granted, revoked or expired)."""


# At most this many compares, and ops per branch (etcd's default --max-txn-ops).
MAX_TXN_OPS = 128

T_VALUE, T_REVISION, T_EXISTS = 0, 1, 2
TARGETS = {"value": T_VALUE, "revision": T_REVISION, "exists": T_EXISTS}
EQ, NE, LT, GT = 0, 1, 2, 3
COMPARE_OPS = {"==": EQ, "!=": NE, "<": LT, ">": GT}

OP_PUT, OP_DELETE, OP_DELETE_RANGE, OP_GET = 1, 2, 3, 4
_OPS = {"put": OP_PUT, "delete": OP_DELETE, "delete_range": OP_DELETE_RANGE, "get": OP_GET}
_OP_FIELDS = {OP_PUT: ("key", "value"), OP_DELETE: ("key",), OP_DELETE_RANGE: ("prefix",), OP_GET: ("key",)}


class TxnResult(NamedTuple):
    """succeeded: every compare held (the success branch ran); revision: the transaction's
    (its log index); results: one per op of the branch taken, as in the HTTP answer."""
    succeeded: bool
    revision: int
    results: List[Optional[Dict[str, Any]]]


def _object(value, what: str, fields: Sequence[str], required: bool = True,
            optional: Sequence[str] = ()) -> Dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidArgument(f"{what} must be an object, got {type(value).__name__}")
    unknown = sorted(k for k in value if k not in fields and k not in optional)
    if unknown:
        takes = ', '.join(map(repr, list(fields) + list(optional)))
        raise InvalidArgument(f"{what}: unknown field {unknown[0]!r} (it takes {takes})")
    missing = [f for f in fields if f not in value] if required else []
    if missing:
        raise InvalidArgument(f"{what}: missing field {missing[0]!r}")
    return value


def _compare(c, i: int) -> list:
    what = f"compare[{i}]"
    c = _object(c, what, ("key", "target", "op", "value"))
    key = check_key(c["key"])
    target = TARGETS.get(c["target"]) if isinstance(c["target"], str) else None
    if target is None:
        raise InvalidArgument(f"{what}: target must be one of {', '.join(TARGETS)}, got {c['target']!r}")
    op = COMPARE_OPS.get(c["op"]) if isinstance(c["op"], str) else None
    if op is None:
        raise InvalidArgument(f"{what}: op must be one of {', '.join(COMPARE_OPS)}, got {c['op']!r}")
    value = c["value"]
    if target == T_VALUE:
        if value is not None:
            check_value(value, f"{what}.value")
    elif target == T_REVISION:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidArgument(f"{what}: a revision compares with an integer >= 0, got {value!r}")
    else:
        if not isinstance(value, bool):
            raise InvalidArgument(f"{what}: exists compares with true or false, got {value!r}")
        if op not in (EQ, NE):
            raise InvalidArgument(f"{what}: exists takes op == or !=, got {c['op']!r}")
    return [key, target, op, value]


def _op(o, where: str, sized) -> list:
    if not isinstance(o, dict) or len(o) != 1:
        raise InvalidArgument(f"{where} must be an object with one of {', '.join(_OPS)}, got {o!r}")
    (name, args), = o.items()
    code = _OPS.get(name)
    if code is None:
        raise InvalidArgument(f"{where}: unknown op {name!r} (one of {', '.join(_OPS)})")
    args = _object(args, f"{where}.{name}", _OP_FIELDS[code], optional=("lease",) if code == OP_PUT else ())
    if code == OP_PUT:
        put = [code, check_key(args["key"]), sized(check_value(args["value"]), "value")]
        if args.get("lease"):
            put.append(check_lease(args["lease"]))
        return put
    if code == OP_DELETE_RANGE:
        return [code, check_prefix(args["prefix"])]
    return [code, check_key(args["key"])]


def _list(body: Dict[str, Any], name: str) -> list:
    value = body.get(name, [])
    if not isinstance(value, list):
        raise InvalidArgument(f"{name} must be a list, got {type(value).__name__}")
    if len(value) > MAX_TXN_OPS:
        raise InvalidArgument(f"{name} has {len(value)} items; a transaction takes at most {MAX_TXN_OPS} each")
    return value


def _any_size(value: str, what: str) -> str:
    return value


def parse_txn(body, sized=_any_size) -> Tuple[list, list, list]:
    """(compares, success, failure) in their log form, from a request body
    `{"compare": [...], "success": [...], "failure": [...]}` (each list optional, empty by
    default); InvalidArgument says what is wrong. `sized(value, what)` checks a put's value
    against the service's size limit."""
    _object(body, "the transaction", ("compare", "success", "failure"), required=False)
    compares = [_compare(c, i) for i, c in enumerate(_list(body, "compare"))]
    success = [_op(o, f"success[{i}]", sized) for i, o in enumerate(_list(body, "success"))]
    failure = [_op(o, f"failure[{i}]", sized) for i, o in enumerate(_list(body, "failure"))]
    return compares, success, failure


def txn_command(body, sized=_any_size) -> Tuple[bytes, Tuple[list, list, list]]:
    """The log entry of a transaction request, and its parsed form (to shape the answer)."""
    parsed = parse_txn(body, sized)
    return pack((TXN,) + parsed), parsed


def answer_json(parsed: Tuple[list, list, list], data) -> Dict[str, Any]:
    """The HTTP/binary answer of an applied transaction: the state machine answered
    (succeeded, revision, raw results of the branch taken). A put of the branch named a lease
    that does not exist: nothing ran, LeaseNotFound."""
    if data == LEASE_NOT_FOUND:
        raise LeaseNotFound("a put of the transaction names a lease that does not exist; nothing was applied")
    succeeded, revision, raw = data
    ops = parsed[1] if succeeded else parsed[2]
    results: List[Optional[Dict[str, Any]]] = []
    for op, r in zip(ops, raw):
        code = op[0]
        if code == OP_PUT:
            results.append({"revision": r})
        elif code == OP_GET:
            results.append(None if r is None else {"value": r[0], "revision": r[1]})
        else:
            results.append({"deleted": r})
    return {"succeeded": succeeded, "revision": revision, "results": results}


# ---------------------------------------------------------------------------- applying
def holds(data: Dict[str, Tuple[Any, int]], compare: list) -> bool:
    """Whether one compare holds against the state `data` (key -> (value, revision))."""
    key, target, op, value = compare
    cur = data.get(key)
    if target == T_VALUE:
        have = None if cur is None else cur[0]
        if op == EQ:
            return have == value
        if op == NE:
            return have != value
        if have is None or value is None or type(have) is not str or type(value) is not str:
            return False
        return have < value if op == LT else have > value
    if target == T_REVISION:
        rev = 0 if cur is None else cur[1]
        return rev == value if op == EQ else rev != value if op == NE else rev < value if op == LT else rev > value
    return (cur is not None) == value if op == EQ else (cur is not None) != value


def well_formed(cmd) -> bool:
    """A TXN entry's shape, checked before anything applies (an entry written by another
    program must change nothing rather than half-apply)."""
    if len(cmd) != 4 or not all(type(part) is list for part in cmd[1:]):
        return False
    for c in cmd[1]:
        if type(c) is not list or len(c) != 4 or type(c[0]) is not str or c[1] not in (0, 1, 2) or \
                c[2] not in (0, 1, 2, 3):
            return False
    for branch in cmd[2:]:
        for op in branch:
            if type(op) is not list or not op or op[0] not in _OP_FIELDS or type(op[1]) is not str:
                return False
            with_lease = op[0] == OP_PUT and len(op) == 4 and type(op[3]) is int
            if len(op) != 1 + len(_OP_FIELDS[op[0]]) and not with_lease:
                return False
    return True
