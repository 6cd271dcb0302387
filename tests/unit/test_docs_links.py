"""The README and docs/ are a site that holds together: every relative link points at a file in
the repository, nothing points outside it, and every docs page is in mkdocs.yml's nav."""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")


def test_relative_links_resolve_inside_the_repository():
    bad = []
    for page in PAGES:
        for target in LINK.findall(page.read_text()):
            if re.match(r"[a-z]+://", target):
                continue
            path = (page.parent / target).resolve()
            if ROOT not in path.parents or not path.exists():
                bad.append(f"{page.relative_to(ROOT)} -> {target}")
    assert bad == []


def test_nothing_points_outside_the_repository():
    for page in PAGES:
        assert "../shared" not in page.read_text(), page


def test_every_docs_page_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    missing = [p.name for p in (ROOT / "docs").glob("*.md") if p.name not in nav]
    assert missing == []
