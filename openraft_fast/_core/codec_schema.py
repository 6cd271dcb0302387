"""The wire codec's one description of each message body (docs/wire.md, "Bodies").

tools/gen_codec.py turns this table into the C-level encoder and decoder of every body
(codec_bodies.pxi, included by codec.pyx; setup.py writes it before cythonize) and into the stub
declarations of the wire-only messages in codec.pyi. Nothing imports it at run time.

A message: its type code on the wire, its class, its fields in wire order. A field's wire kind
(KINDS) says how it is written and read; `arg` is what the kind needs:
  enum      (lo, hi, what): a u8 in lo..hi (C expressions; lo None: no lower bound beyond 0),
            else CodecError "unknown {what} {code}"
  nonneg    what: an i64 that must be >= 0 ("{what} must be >= 0")
Runs of two or more i64 fields are read and written as one fixed-width block (one bounds check).
`check`: a cdef function of codec.pyx called with the decoded message before the body's end is
checked (cross-field validation). Wire-only messages (module "codec") also carry what their stub
needs: `init` (constructor order = _fields), field `py` types and `default`s, docstrings.
"""
from typing import NamedTuple, Optional, Tuple

# wire kind: (C write call, C read expression, stub type, docs/wire.md name)
KINDS = {
    "vote": ("w_vote(w, {m}.{f})", "r_vote(r)", "Vote", "Vote"),
    "opt_log_id": ("w_opt_log_id(w, {m}.{f})", "r_opt_log_id(r)", "Optional[LogId]", "LogId?"),
    "bool": ("w_u8(w, {m}.{f})", "r_bool(r)", "bool", "bool"),
    "enum": ("w_u8(w, <uint8_t>{m}.{f})", None, "int", "u8"),
    "u32": ("w_u32(w, <uint32_t>{m}.{f})", "r_u32(r)", "int", "u32"),
    "i64": ("w_i64(w, {m}.{f})", "r_i64(r)", "int", "i64"),
    "nonneg": ("w_i64(w, {m}.{f})", 'r_nonneg(r, "{arg}")', "int", "i64"),
    "str": ("w_str(w, {m}.{f})", "r_str(r)", "str", "str"),
    "bytes": ("w_bytes(w, {m}.{f})", "r_bytes(r)", "_BytesLike", "bytes"),
    "meta": ("w_meta(w, {m}.{f})", "r_meta(r)", "SnapshotMeta", "SnapshotMeta"),
    "opt_slice": (None, None, "Optional[LogSlice]", "bool has_entries, [batch]"),
}


class Field(NamedTuple):
    name: str
    kind: str
    arg: object = None
    py: str = ""                    # stub type, if not the kind's
    default: Optional[str] = None   # stub default (wire-only messages)


class Message(NamedTuple):
    code: int
    cls: str
    module: str                     # "messages" or "codec" (wire-only: its stub is generated)
    fields: Tuple[Field, ...]
    check: str = ""
    init: Tuple[str, ...] = ()      # wire-only: constructor order, if not the wire order
    doc: str = ""                   # wire-only: class docstring of the stub
    init_doc: str = ""              # wire-only: __init__ docstring of the stub


F = Field
MESSAGES = (
    Message(1, "VoteRequest", "messages", (
        F("vote", "vote"), F("last_log_id", "opt_log_id"), F("pre_vote", "bool"), F("transfer", "bool"))),
    Message(2, "VoteResponse", "messages", (
        F("vote", "vote"), F("granted", "bool"), F("last_log_id", "opt_log_id"), F("pre_vote", "bool"),
        F("not_member", "bool"))),
    Message(3, "AppendRequest", "messages", (
        F("vote", "vote"), F("prev_log_id", "opt_log_id"), F("commit", "opt_log_id"), F("msg_id", "i64"),
        F("seq", "i64"), F("sent_at", "i64"), F("entries", "opt_slice")),
        check="check_entries_start"),
    Message(4, "AppendResponse", "messages", (
        F("vote", "vote"), F("result", "enum", ("APPEND_OK", "APPEND_HIGHER_VOTE", "append result")),
        F("matched", "opt_log_id"), F("conflict", "i64"), F("hint_last", "i64"), F("msg_id", "i64"),
        F("seq", "i64"), F("sent_at", "i64"))),
    Message(5, "TimeoutNow", "messages", (F("vote", "vote"), F("last_log_id", "opt_log_id"))),
    Message(6, "ReadIndexRequest", "messages", (F("policy", "enum", ("1", "3", "read policy")),)),
    Message(7, "ReadIndexResponse", "messages", (
        F("result", "enum", ("READ_OK", "READ_NO_QUORUM", "read index result")),
        F("read_log_id", "opt_log_id"), F("leader_id", "i64"))),
    Message(8, "SnapshotResponse", "messages", (
        F("vote", "vote"), F("ok", "bool"), F("msg_id", "i64"), F("seq", "i64"), F("sent_at", "i64"))),
    Message(9, "SnapshotChunk", "codec", (
        F("vote", "vote"), F("meta", "meta"), F("offset", "nonneg", "snapshot chunk offset"), F("last", "bool"),
        F("msg_id", "i64", default="0"), F("seq", "i64", default="0"), F("sent_at", "i64", default="0"),
        F("data", "bytes")),
        init=("vote", "meta", "offset", "data", "last", "msg_id", "seq", "sent_at"),
        doc="One chunk of an InstallSnapshotRequest's data, starting at byte `offset`; `last` marks\n"
            "    the final chunk. `data` is bytes-like (bytes when decoded)."),
    Message(10, "Handshake", "codec", (
        F("version", "u32"), F("cluster_name", "str"), F("src", "nonneg", "handshake src"),
        F("dst", "nonneg", "handshake dst"), F("lane", "enum", (None, "LANE_SNAPSHOT_", "lane"))),
        doc="The first frame a client sends on a connection.",
        init_doc="`version` a u32 (PROTOCOL_VERSION), `src`/`dst` node ids >= 0, `lane` LANE_*."),
    Message(11, "HandshakeReply", "codec", (F("ok", "bool"), F("reason", "str", default='""')),
            doc="The server's answer to a Handshake: `ok`, or the `reason` it refuses the connection."),
    Message(12, "ErrorReply", "codec", (F("code", "i64"), F("message", "str", default='""')),
            doc="The remote handler raised (e.g. the node is stopped)."),
    Message(13, "ForwardRequest", "messages", (F("batch", "bool"), F("data", "bytes"))),
    Message(14, "ForwardResponse", "messages", (
        F("result", "enum", ("FWD_OK", "FWD_UNKNOWN", "forward result")), F("leader_id", "i64"),
        F("data", "bytes"))),
    Message(15, "ClientRequest", "codec", (F("data", "bytes"),),
            doc="A request of the KV service's binary client protocol: `data` is its msgpack (docs/kv.md)."),
    Message(16, "ClientResponse", "codec", (F("data", "bytes"),),
            doc="The answer to the ClientRequest of the same correlation id: msgpack [status, body]."),
)

# Tested first by the encoder's and the decoder's chains: the bulk of the traffic.
HOT = ("AppendRequest", "AppendResponse")
