"""The README and docs/ stay navigable: the README is short, every relative link and anchor resolves, and every
docs page and section the code and parameter texts cite exists."""
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
CITATION = re.compile(r"docs/([\w./-]+\.md)(?:,? '([^']+)')?")


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def headings(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # not the comments inside code blocks
    return [line.lstrip("#").strip() for line in text.splitlines() if line.startswith("#")]


def test_readme_is_short():
    assert len((REPO / "README.md").read_text().splitlines()) <= 300


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(REPO)) for p in PAGES])
def test_relative_links_and_anchors_resolve(page):
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # an external address
        path, _, frag = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        assert dest.exists(), f"{page.name}: link to missing {target}"
        assert REPO in dest.parents or dest == REPO, f"{page.name}: {target} leaves the repository"
        if frag:
            assert frag in {anchor(h) for h in headings(dest)}, f"{page.name}: no section #{frag} in {dest.name}"


def test_docs_cited_by_code_exist_with_their_sections():
    cited = []
    for src in (REPO / "molevla_ros").rglob("*.py"):
        for page, section in CITATION.findall(src.read_text()):
            cited.append((src.name, page, section))
    assert cited, "the code cites docs pages"
    for src, page, section in cited:
        dest = REPO / "docs" / page
        assert dest.exists(), f"{src} cites docs/{page}, which does not exist"
        if section:
            assert any(h.startswith(section) for h in headings(dest)), f"{src} cites '{section}' in docs/{page}"


def test_no_link_leaves_the_repository():
    for page in PAGES:
        assert "../shared" not in page.read_text(), f"{page.name} links outside the repository"
