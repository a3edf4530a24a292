"""The README's result blocks are copies of generated files (never typed by hand)."""

from pathlib import Path

import pytest

from cofitune.reporting.readme import blocks, sync

ROOT = Path(__file__).resolve().parents[2]


def test_readme_result_blocks_match_their_files():
    found = blocks(ROOT / "README.md", ROOT)
    assert found, "the README quotes its results from generated files"
    for src, body, now in found:
        assert body == now, f"README block from {src} is stale: run `python -m cofitune sync-readme`"


def test_sync_rewrites_a_stale_block_and_names_a_missing_file(tmp_path):
    (tmp_path / "claims.md").write_text("# claims\n| a | b |\n")
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- generated from claims.md by `python -m cofitune sync-readme` -->\nold typed"
                      " numbers\n<!-- end generated -->\noutro\n")
    assert sync(readme, tmp_path) == 1
    assert readme.read_text() == ("intro\n<!-- generated from claims.md by `python -m cofitune sync-readme` -->\n"
                                  "#### claims\n| a | b |\n<!-- end generated -->\noutro\n")
    assert sync(readme, tmp_path) == 0
    readme.write_text("<!-- generated from nope.md by `python -m cofitune sync-readme` -->\n<!-- end generated -->")
    with pytest.raises(FileNotFoundError, match="nope.md"):
        sync(readme, tmp_path)
