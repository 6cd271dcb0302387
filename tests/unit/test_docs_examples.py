"""The runnable examples of the docs run: every ```python block right after a `<!-- run -->`
line in README.md, docs/*.md is executed on its own (a fresh interpreter, from the repository
root) and must exit cleanly within a bound. The examples assert their own results."""
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
MARKER = "<!-- run -->"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# The pages whose point is a runnable example: each must keep at least one.
MUST_RUN = ("docs/state-machine.md", "docs/embedding.md", "docs/replicated.md")

_BLOCK = re.compile(re.escape(MARKER) + r"[ \t]*\n(?:[ \t]*\n)*```python[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)


def runnable_blocks(text: str):
    """The code of each ```python block that a MARKER line introduces (blank lines between allowed)."""
    blocks = _BLOCK.findall(text)
    assert len(blocks) == text.count(MARKER), f"a {MARKER} marker is not followed by a ```python block"
    return blocks


EXAMPLES = [(page.relative_to(ROOT).as_posix(), i, code)
            for page in PAGES for i, code in enumerate(runnable_blocks(page.read_text()))]


def test_the_marker_finds_exactly_the_marked_blocks():
    text = ("intro\n```python\nnot_run()\n```\n" + MARKER + "\n\n```python title\nfirst()\n```\n"
            "text\n" + MARKER + "\n```python\nsecond()\n```\n")
    assert runnable_blocks(text) == ["first()\n", "second()\n"]
    with pytest.raises(AssertionError):
        runnable_blocks(MARKER + "\nprose, not a block\n```python\nx()\n```\n")


@pytest.mark.parametrize("page", MUST_RUN)
def test_the_example_pages_keep_a_runnable_example(page):
    assert any(p == page for p, _, _ in EXAMPLES), f"{page} has no {MARKER} python block"


@pytest.mark.parametrize("page,index,code", EXAMPLES, ids=[f"{p}#{i}" for p, i, _ in EXAMPLES])
def test_example_runs(page, index, code):
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"{page} example {index} failed:\n{out.stdout}\n{out.stderr}"
