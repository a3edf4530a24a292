"""Results prose in the README comes from result files: blocks between markers are copies of a generated
file, rewritten by ``python -m cofitune sync-readme`` and checked by a unit test.

A block is::

    <!-- generated from docs/figures/demo_claims.md by `python -m cofitune sync-readme` -->
    ...the file's content...
    <!-- end generated -->
"""

from __future__ import annotations

import re
from pathlib import Path

from cofitune.pipeline.io import atomic_write_text

BLOCK = re.compile(r"(<!-- generated from (?P<src>\S+) by `python -m cofitune sync-readme` -->\n)(?P<body>.*?)"
                   r"(<!-- end generated -->)", re.S)


def _body(root: Path, src: str, where: str) -> str:
    path = root / src
    if not path.is_file():
        raise FileNotFoundError(f"{where}: generated block names {src}, which does not exist")
    text = path.read_text(encoding="utf-8")
    # the file's own title would nest a second top-level heading in the README: demote it
    text = re.sub(r"^# ", "#### ", text, flags=re.M)
    return text if text.endswith("\n") else text + "\n"


def blocks(readme: Path, root: Path) -> list[tuple[str, str, str]]:
    """(source file, block text in the README, what the source says now) for every generated block."""
    text = readme.read_text(encoding="utf-8")
    return [(m["src"], m["body"], _body(root, m["src"], str(readme))) for m in BLOCK.finditer(text)]


def sync(readme: Path, root: Path) -> int:
    """Rewrite every generated block from its source; returns the number of blocks that changed."""
    text = readme.read_text(encoding="utf-8")
    changed = 0

    def fill(m: re.Match) -> str:
        nonlocal changed
        body = _body(root, m["src"], str(readme))
        changed += body != m["body"]
        return m.group(1) + body + m.group(4)

    new = BLOCK.sub(fill, text)
    if changed:
        atomic_write_text(readme, new)
    return changed
