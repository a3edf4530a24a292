"""The README is a signpost into docs/; the result blocks of both are copies of generated files (never typed by hand),
and every relative link of both resolves."""

import re
from pathlib import Path

import pytest

from cofitune.reporting.readme import blocks, demote, pages, sync

ROOT = Path(__file__).resolve().parents[2]
MARK = "by `python -m cofitune sync-readme` -->"
PAGES = pages(ROOT)


def test_the_readme_is_a_signpost_with_the_two_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200, "README.md is a signpost: move reference text into docs/"
    for command in ("make demo", "make test"):
        assert re.search(rf"^{command}\b", text, re.M), f"the README's first commands include `{command}`"
    assert (ROOT / ".ci/run").read_text().strip().endswith("make test"), "CI runs exactly the README's test command"


def test_sync_covers_the_readme_and_every_docs_page():
    assert PAGES[0] == ROOT / "README.md"
    assert set(PAGES[1:]) == set((ROOT / "docs").glob("*.md"))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_result_blocks_match_their_files(page):
    for src, body, now in blocks(page, ROOT):
        assert body == now, f"{page.name}: block from {src} is stale: run `python -m cofitune sync-readme`"


def test_the_readme_and_the_docs_quote_results_from_generated_files():
    assert blocks(ROOT / "README.md", ROOT), "the README's one result is a generated block"
    assert sum(len(blocks(p, ROOT)) for p in PAGES[1:]) >= 3, "the docs' results are generated blocks"


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _prose(text: str) -> str:
    """``text`` without fenced code and inline code, where a bracket is not a link."""
    text = re.sub(r"^ {0,3}(```|~~~).*?^ {0,3}\1[^\n]*$", "", text, flags=re.M | re.S)
    return re.sub(r"`[^`\n]*`", "", text)


def _anchors(page: Path) -> set[str]:
    return {_slug(m[1]) for m in re.finditer(r"^#{1,6}\s+(.*?)\s*#*$", _prose(page.read_text(encoding="utf-8")),
                                             re.M)}


def _links(page: Path) -> list[str]:
    prose = _prose(page.read_text(encoding="utf-8"))
    inline = re.findall(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", prose)
    return inline + re.findall(r"^\s*\[[^\]]+\]:\s*(\S+)", prose, re.M)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    broken = []
    for link in _links(page):
        if re.match(r"[a-z][a-z0-9+.-]*:", link, re.I):  # http:, https:, mailto:
            continue
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.is_file():
            broken.append(f"{link} (no file {target.relative_to(ROOT) if ROOT in target.parents else target})")
        elif anchor and target.suffix == ".md" and anchor not in _anchors(target):
            broken.append(f"{link} (no heading #{anchor} in {target.name})")
    assert not broken, f"{page.relative_to(ROOT)}: broken links: {broken}"


def test_the_link_check_sees_links_and_skips_code(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("# A title\n[ok](p.md#a-title) ![img](x.png) `[no](code.md)`\n```\n[no](fence.md)\n```\n"
                    "[ref]: q.md\n")
    assert _links(page) == ["p.md#a-title", "x.png", "q.md"]
    assert _anchors(page) == {"a-title"}


def test_sync_rewrites_a_stale_block_and_names_a_missing_file(tmp_path):
    (tmp_path / "claims.md").write_text("# claims\n| a | b |\n")
    readme = tmp_path / "README.md"
    readme.write_text(f"# Page\n## Results\n<!-- generated from claims.md {MARK}\nold typed numbers\n"
                      "<!-- end generated -->\noutro\n")
    assert sync(readme, tmp_path) == 1
    assert readme.read_text() == (f"# Page\n## Results\n<!-- generated from claims.md {MARK}\n"
                                  "### claims\n| a | b |\n<!-- end generated -->\noutro\n")
    assert sync(readme, tmp_path) == 0
    readme.write_text(f"<!-- generated from nope.md {MARK}\n<!-- end generated -->")
    with pytest.raises(FileNotFoundError, match="nope.md"):
        sync(readme, tmp_path)


def test_quoted_headings_sit_below_the_heading_of_the_block(tmp_path):
    """The rule of cofitune/reporting/readme.py: the quoted file's highest heading lands one level below the page's
    heading above the block; its other headings keep their distance; code fences and other blocks do not count."""
    (tmp_path / "t.md").write_text("# title\n\n## squad · smollm2\n```bash\n# a comment\n```\n### deep\n")
    page = tmp_path / "page.md"
    block = f"<!-- generated from t.md {MARK}\n<!-- end generated -->\n"
    page.write_text(f"# Page\n```\n## not a heading\n```\n## Results\n{block}{block}\n###### Deep\n{block}")
    sync(page, tmp_path)
    quoted = [m.group(0) for m in re.finditer(r"^#+ (?:title|squad|deep).*$", page.read_text(), re.M)]
    assert quoted == (["### title", "#### squad · smollm2", "##### deep"] * 2  # under ## Results, twice
                      + ["###### title", "###### squad · smollm2", "###### deep"])  # under ######: level 6 at most
    assert "```bash\n# a comment\n```" in page.read_text()
    assert demote("## already low\n", 0) == "## already low\n", "headings are never promoted"


def test_the_cli_rewrites_the_readme_and_the_docs_pages(tmp_path):
    from cofitune.cli import main

    (tmp_path / "docs").mkdir()
    (tmp_path / "r.md").write_text("# r\n")
    for page in ("README.md", "docs/a.md"):
        (tmp_path / page).write_text(f"# P\n<!-- generated from r.md {MARK}\n<!-- end generated -->\n")
    assert main(["sync-readme", "--root", str(tmp_path)]) in (0, None)
    for page in ("README.md", "docs/a.md"):
        assert "\n## r\n" in (tmp_path / page).read_text()
