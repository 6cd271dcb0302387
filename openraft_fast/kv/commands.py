"""The KV commands: what a log entry of the KV service holds (msgpack), and what applying it answers.

An entry is the msgpack array of one command; keys are non-empty str, values str:

| command | payload | answer (the state machine's response) |
|---|---|---|
| put | `[1, key, value]` | `revision` (int): the entry's log index |
| delete | `[2, key]` | `(revision, deleted)`: the entry's index; whether the key existed |
| cas on value | `[3, key, expected, value]` (`expected` None: the key must be absent) | `(ok, revision, current)` |
| cas on revision | `[4, key, expected_revision, value]` (0: the key must be absent) | `(ok, revision, current)` |
| transaction | `[5, compares, success, failure]` (kv.txn) | `(succeeded, revision, results)` |
| range delete | `[6, prefix]` | `(revision, deleted)`: the entry's index; how many keys it deleted |
| put with a lease | `[1, key, value, lease]` | `revision`, or "lease_not_found" (nothing changed) |
| lease grant | `[7, ttl]` (seconds > 0) | `(id, ttl)`: the lease's id is the entry's index |
| lease revoke | `[8, [id, ...]]` | `(revision, leases revoked, keys deleted)`: their keys go at that revision |

A cas that matches sets the value: `(True, index, None)`; one that does not changes nothing:
`(False, current revision or 0, current value or None)`. A payload that is no valid command
changes nothing and answers None (the servers never submit one; the log may still hold one
written by another program).
"""
from __future__ import annotations

from typing import Optional

import msgpack

from openraft_fast.errors import InvalidArgument, InvalidArgumentType

PUT = 1
DELETE = 2
CAS_VALUE = 3
CAS_REVISION = 4
TXN = 5
DELETE_RANGE = 6
LEASE_GRANT = 7
LEASE_REVOKE = 8
# Longest lease TTL, seconds.
MAX_LEASE_TTL = 1e6

# A key travels in a URL path and a log entry: bounded so that one request cannot bloat them.
MAX_KEY_BYTES = 4096

# One Packer for every command: msgpack.packb builds a new one per call, which costs as much
# again as packing a small command. (Packer.pack runs under the GIL: safe from any thread.)
_pack = pack = msgpack.Packer().pack


def check_key(key) -> str:
    if not isinstance(key, str):
        raise InvalidArgumentType(f"a key must be a str, got {type(key).__name__}")
    if not key:
        raise InvalidArgument("a key must not be empty")
    # (the encoding only for a key that might be too long: at most 4 bytes a character)
    if len(key) * 4 > MAX_KEY_BYTES and len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise InvalidArgument(f"a key must be at most {MAX_KEY_BYTES} bytes")
    return key


def check_prefix(prefix) -> str:
    """A prefix of keys to delete: a non-empty key-like string (an empty one, every key, is
    refused: too easy to send by mistake)."""
    if not isinstance(prefix, str):
        raise InvalidArgumentType(f"a prefix must be a str, got {type(prefix).__name__}")
    if not prefix:
        raise InvalidArgument("a prefix must not be empty")
    return check_key(prefix)


def check_value(value, name: str = "value") -> str:
    if not isinstance(value, str):
        raise InvalidArgumentType(f"{name} must be a str, got {type(value).__name__}")
    return value


def put(key: str, value: str, lease: int = 0) -> bytes:
    """Set `key`; with `lease` (an id), the key goes when the lease is revoked or expires."""
    if lease:
        return _pack((PUT, check_key(key), check_value(value), check_lease(lease)))
    return _pack((PUT, check_key(key), check_value(value)))


def delete(key: str) -> bytes:
    return _pack((DELETE, check_key(key)))


def cas(key: str, expected: Optional[str], value: str) -> bytes:
    """Set `key` to `value` if its value is `expected` (None: if the key is absent)."""
    if expected is not None:
        check_value(expected, "expected")
    return _pack((CAS_VALUE, check_key(key), expected, check_value(value)))


def cas_revision(key: str, expected_revision: int, value: str) -> bytes:
    """Set `key` to `value` if its revision is `expected_revision` (0: if the key is absent)."""
    if isinstance(expected_revision, bool) or not isinstance(expected_revision, int):
        raise InvalidArgumentType(f"expected_revision must be an int, got {type(expected_revision).__name__}")
    if expected_revision < 0:
        raise InvalidArgument(f"expected_revision must be >= 0, got {expected_revision}")
    return _pack((CAS_REVISION, check_key(key), expected_revision, check_value(value)))


def delete_range(prefix: str) -> bytes:
    """Delete every key that starts with `prefix` (not empty), in one entry and one revision."""
    return _pack((DELETE_RANGE, check_prefix(prefix)))


def check_lease(lease) -> int:
    if isinstance(lease, bool) or not isinstance(lease, int) or lease < 1:
        raise InvalidArgument(f"a lease id must be an integer >= 1, got {lease!r}")
    return lease


def check_ttl(ttl) -> float:
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not 0 < ttl <= MAX_LEASE_TTL:
        raise InvalidArgument(f"a lease ttl must be seconds in (0, {MAX_LEASE_TTL:g}], got {ttl!r}")
    return ttl


def lease_grant(ttl: float) -> bytes:
    return _pack((LEASE_GRANT, check_ttl(ttl)))


def lease_revoke(*leases: int) -> bytes:
    return _pack((LEASE_REVOKE, [check_lease(lease) for lease in leases]))
