"""Result prose in the README and in ``docs/*.md`` comes from result files: blocks between markers are copies of a
generated file, rewritten by ``python -m cofitune sync-readme`` and checked by a unit test (tests/unit/test_readme.py).

A block is::

    <!-- generated from docs/figures/demo_claims.md by `python -m cofitune sync-readme` -->
    ...the file's content...
    <!-- end generated -->

Headings. A quoted file has its own outline (``# title``, ``## squad · smollm2-135m``). Every heading of it is
demoted by the same amount, so that its highest heading sits one level below the heading the block sits under
(the last ``#`` heading of the page before the block, outside code fences and outside other blocks; a block
before any heading counts as under level 0). Headings are never promoted, and a level past 6 stays at 6 (Markdown
has no deeper heading). Lines inside the quoted file's code fences are left as they are. So a page's outline stays
a tree: a block under ``## Claims`` quotes ``# title`` as ``### title`` and ``## squad`` as ``#### squad``.
"""

from __future__ import annotations

import re
from pathlib import Path

from cofitune.pipeline.io import atomic_write_text

BLOCK = re.compile(r"(<!-- generated from (?P<src>\S+) by `python -m cofitune sync-readme` -->\n)(?P<body>.*?)"
                   r"(<!-- end generated -->)", re.S)
HEADING = re.compile(r"^(#{1,6})(?=[ \t]|$)")
FENCE = re.compile(r"^\s{0,3}(```|~~~)")


def pages(root: Path) -> list[Path]:
    """The pages whose blocks ``sync-readme`` keeps current: ``README.md`` and every ``docs/*.md``."""
    return [p for p in (root / "README.md", *sorted((root / "docs").glob("*.md"))) if p.is_file()]


def _headings(text: str) -> list[tuple[int, int]]:
    """(line index, level) of every ATX heading of ``text`` outside code fences."""
    found, fence = [], None
    for i, line in enumerate(text.split("\n")):
        m = FENCE.match(line)
        if m:
            fence = None if fence == m[1] else (fence or m[1])
        elif fence is None and (h := HEADING.match(line)):
            found.append((i, len(h[1])))
    return found


def _level_above(text: str, start: int) -> int:
    """Level of the page's last heading before offset ``start``, outside code fences and generated blocks."""
    outside = BLOCK.sub(lambda m: m.group(1) + m.group(4), text[:start])
    levels = [level for _, level in _headings(outside)]
    return levels[-1] if levels else 0


def demote(text: str, under: int) -> str:
    """``text`` with every heading moved down so that its highest heading is at level ``under + 1`` (see above)."""
    heads = _headings(text)
    if not heads:
        return text
    shift = max(0, under + 1 - min(level for _, level in heads))
    lines = text.split("\n")
    for i, level in heads:
        lines[i] = "#" * min(6, level + shift) + lines[i][level:]
    return "\n".join(lines)


def _body(root: Path, src: str, where: str, under: int) -> str:
    path = root / src
    if not path.is_file():
        raise FileNotFoundError(f"{where}: generated block names {src}, which does not exist")
    text = demote(path.read_text(encoding="utf-8"), under)
    return text if text.endswith("\n") else text + "\n"


def blocks(page: Path, root: Path) -> list[tuple[str, str, str]]:
    """(source file, block text in the page, what the source says now) for every generated block of ``page``."""
    text = page.read_text(encoding="utf-8")
    return [(m["src"], m["body"], _body(root, m["src"], str(page), _level_above(text, m.start())))
            for m in BLOCK.finditer(text)]


def sync(page: Path, root: Path) -> int:
    """Rewrite every generated block of ``page`` from its source; returns the number of blocks that changed."""
    text = page.read_text(encoding="utf-8")
    changed = 0

    def fill(m: re.Match) -> str:
        nonlocal changed
        body = _body(root, m["src"], str(page), _level_above(text, m.start()))
        changed += body != m["body"]
        return m.group(1) + body + m.group(4)

    new = BLOCK.sub(fill, text)
    if changed:
        atomic_write_text(page, new)
    return changed
