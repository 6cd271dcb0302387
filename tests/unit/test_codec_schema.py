"""The codec's table (openraft_fast/_core/codec_schema.py) agrees with what it describes: the
message classes, the generated stubs in codec.pyi and the bodies in docs/wire.md."""
import importlib.util
import os
import re

from openraft_fast._core import codec, messages

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, path))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


gen = _load("gen_codec", "tools/gen_codec.py")
schema = gen.load_schema()


def test_generated_files_are_current():
    """codec.pyi's generated part (committed) and codec_bodies.pxi (built) match the schema."""
    with open(gen.PYI, encoding="utf-8") as f:
        pyi = f.read()
    assert gen.pyi_with_stubs(pyi, gen.stub_text(schema)) == pyi, "run tools/gen_codec.py"
    with open(gen.PXI, encoding="utf-8") as f:
        assert f.read() == gen.pxi_text(schema), "rebuild: setup.py regenerates codec_bodies.pxi"


def test_every_message_and_field_is_in_the_table_once():
    assert sorted(m.code for m in schema.MESSAGES) == list(range(1, len(schema.MESSAGES) + 1))
    for m in schema.MESSAGES:
        cls = getattr(codec if m.module == "codec" else messages, m.cls)
        names = [f.name for f in m.fields]
        assert sorted(names) == sorted(cls._fields), m.cls
        assert not m.init or list(m.init) == list(cls._fields), m.cls
        for f in m.fields:
            assert f.kind in schema.KINDS, (m.cls, f)
            assert (f.arg is not None) == (f.kind in ("enum", "nonneg")), (m.cls, f)


def test_docs_list_the_fields_in_wire_order():
    """docs/wire.md, "Bodies": each field with its encoding, in the order of the table."""
    with open(os.path.join(ROOT, "docs", "wire.md"), encoding="utf-8") as f:
        rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| (\w+) \| (.+) \|$", f.read(), re.M)}
    for m in schema.MESSAGES:
        row, at = rows[m.cls], 0
        for f in m.fields:
            want = {"meta": "LogId? meta.last_log_id", "opt_slice": "bool has_entries, [batch]"}.get(
                f.kind, f"{schema.KINDS[f.kind][3]} {f.name}")
            found = re.search(r"(?<![\w.])%s(?!\w)" % re.escape(want), row[at:])
            assert found, (m.cls, f.name, row)
            at += found.end()
