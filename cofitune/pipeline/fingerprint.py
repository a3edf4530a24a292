"""The numerics fingerprint: one hash of the code that determines the numbers (what trains, evaluates and
scores, and the rules that wire it), in named parts, so that a stored number can say which code made it.

What it covers is :data:`PARTS`, in this one place. Python sources are hashed in a canonical form without
docstrings, other bare string statements, comments or layout (:func:`canonical_python`); the rules, the
Snakefile and the task YAMLs without comment lines, blank lines or trailing blanks (:func:`canonical_text`).
So a docstring, a comment, a reformat or a plot leaves it unchanged, and an edit to a loss, a scorer or a
rule changes the part it belongs to.

Stable across Python versions by construction: the canonical form is built from :mod:`tokenize` tokens
(names, operators, numbers, strings, logical lines and indentation depth), never from ``ast.dump``, whose
output changes between versions. :mod:`ast` only finds where the bare string statements are. The one token
stream change in the supported versions, f-strings split into ``FSTRING_START``/``MIDDLE``/``END`` tokens
since Python 3.12 (``TSTRING_*`` for 3.14's t-strings), is undone by taking such a string's source text, which
is the single ``STRING`` token of older versions. Plain string literals are written by value in an ASCII
escape (quote style and prefix do not matter), independent of the Unicode database. The hashes are
``sha256sum``-style listings: a part's hash is the SHA-256 of ``"<file hash>  <path>\\n"`` lines sorted by
path, the overall hash that of ``"<part hash>  <part>\\n"`` lines sorted by part.
"""

from __future__ import annotations

import ast
import bisect
import hashlib
import io
import json
import math
import token
import tokenize
import warnings
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Part:
    """One named part: the files matched by ``include`` (globs relative to the repository root) less
    ``exclude`` (exact paths)."""

    include: tuple[str, ...]
    exclude: tuple[str, ...] = ()


#: What determines the numbers. Left out on purpose: reporting (tables, plots, claims, the README, the bench
#: gate: they read metrics files, they do not make them), the CLI, and the configuration's values (config/,
#: the schema: the resolved config of every row is its own input file, compared row by row by the stale
#: guard). The code that resolves a config is in: it decides what a row runs. A new module of the pipeline is
#: in until it is excluded here.
PARTS: dict[str, Part] = {
    # the method: selection, importance, soft mask, search tree, trainer, distributed, every method
    "core": Part(("cofitune/core/**/*.py",)),
    # the stages: config resolution, data loading and parsing, models, importance files, training and
    # evaluation runs, drift, the probe, generation backends, the search's decisions
    "pipeline": Part(("cofitune/pipeline/**/*.py",), exclude=(
        "cofitune/pipeline/io.py",  # the atomic writer and hashing
        "cofitune/pipeline/paths.py",  # file names
        "cofitune/pipeline/launch.py",  # the environment and the launch command
        "cofitune/pipeline/provenance.py",  # what a result records about itself
        "cofitune/pipeline/fingerprint.py",  # this file
    )),
    # bootstrap, verdicts and measures: the search's choices and every verdict are computed here
    "stats": Part(("cofitune/stats/**/*.py",)),
    # the scorers, the versatility wrapper, Punkt and the lm-eval task YAMLs
    "evaluators": Part(("evaluators/**/*.py", "evaluators/**/*.yaml")),
    # the DAG that makes metrics files; the rules that only read them (tables, plots, the bench verdict) are out
    "rules": Part(("Snakefile", "rules/*.smk"),
                  exclude=("rules/aggregate.smk", "rules/plots.smk", "rules/bench.smk")),
}

#: tokens that carry no meaning once logical lines and indentation are kept
_DROPPED = {token.COMMENT, token.NL, token.ENCODING, token.ENDMARKER}
#: the structure: never dropped with a bare string (a DEDENT starts where the string does)
_STRUCTURE = {token.INDENT, token.DEDENT, token.NEWLINE}


def _position_in_chars(lines: list[str], line: int, byte_col: int) -> tuple[int, int]:
    """An ``ast`` position (UTF-8 byte column) as a ``tokenize`` position (character column)."""
    return line, len(lines[line - 1].encode("utf-8")[:byte_col].decode("utf-8"))


def _statements(node: ast.AST):
    """Every statement under ``node``, through the statement lists only (no expression is visited)."""
    for field in ("body", "orelse", "finalbody", "handlers", "cases"):
        children = getattr(node, field, None)
        for child in children if isinstance(children, list) else ():
            yield child
            yield from _statements(child)


def _bare_strings(tree: ast.AST, lines: list[str]) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """The spans, in source order, of every statement that is a bare string: docstrings (the first statement
    of a module, class or function) and attribute docstrings. They do nothing when run."""
    return sorted((_position_in_chars(lines, n.lineno, n.col_offset),
                   _position_in_chars(lines, n.end_lineno, n.end_col_offset))
                  for n in _statements(tree)
                  if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str))


def _source_between(lines: list[str], start: tuple[int, int], end: tuple[int, int]) -> str:
    if start[0] == end[0]:
        return lines[start[0] - 1][start[1]:end[1]]
    return "".join([lines[start[0] - 1][start[1]:], *lines[start[0]:end[0] - 1], lines[end[0] - 1][:end[1]]])


def _literal(text: str) -> str:
    """A string literal by value (``'a'``, ``"a"`` and ``u'a'`` alike); an f-string as written."""
    try:
        with warnings.catch_warnings():  # an invalid escape warns, and means the same in every version
            warnings.simplefilter("ignore")
            value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    if isinstance(value, bytes):
        return f"b:{value.hex()}"
    return json.dumps(value, ensure_ascii=True)


def _in(spans: list[tuple[tuple[int, int], tuple[int, int]]], position: tuple[int, int]) -> bool:
    """Whether ``position`` lies in one of the sorted, disjoint ``spans`` (end excluded)."""
    i = bisect.bisect_right(spans, (position, (math.inf, math.inf))) - 1
    return i >= 0 and position < spans[i][1]


def _tokens(text: str, lines: list[str], skip: list) -> list[tuple[int, str]]:
    """``(type, text)`` of every meaningful token, an f-string (t-string) as one ``STRING`` of its source;
    the tokens of the ``skip`` spans left out."""
    out, depth, start = [], 0, None
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        name = token.tok_name[tok.type]
        if tok.type in _DROPPED or (tok.type not in _STRUCTURE and _in(skip, tok.start)):
            continue
        if name in ("FSTRING_START", "TSTRING_START"):
            depth, start = depth + 1, start if depth else tok.start
        elif name in ("FSTRING_END", "TSTRING_END"):
            depth -= 1
            if not depth:
                out.append((token.STRING, _source_between(lines, start, tok.end)))
        elif not depth:
            out.append((tok.type, tok.string))
    return out


def canonical_python(text: str) -> str:
    """A Python source as one line per logical line, its tokens joined by single spaces and indented four
    spaces per block level; without docstrings, bare string statements, comments and layout.

    Raises:
        SyntaxError: the source does not parse.
    """
    lines = io.StringIO(text).readlines()  # the physical lines as tokenize reads them
    out, depth, line = [], 0, []
    for kind, string in _tokens(text, lines, _bare_strings(ast.parse(text), lines)):
        if kind == token.INDENT:
            depth += 1
        elif kind == token.DEDENT:
            depth -= 1
        elif kind == token.NEWLINE:
            if line:
                out.append("    " * depth + " ".join(line))
            line = []
        else:
            line.append(_literal(string) if kind == token.STRING else string)
    if line:
        out.append("    " * depth + " ".join(line))
    return "".join(f"{s}\n" for s in out)


def canonical_text(text: str) -> str:
    """A rules, Snakefile or YAML text without whole-line ``#`` comments, blank lines and trailing blanks (a
    ``#`` after code is kept: it may be inside a string)."""
    kept = (s.rstrip() for s in text.splitlines())
    return "".join(f"{s}\n" for s in kept if s and not s.lstrip().startswith("#"))


def canonical(path: Path) -> str:
    """The canonical form of one file of :data:`PARTS`.

    Raises:
        ValueError: a Python source that does not parse, naming it.
    """
    text = path.read_text(encoding="utf-8")
    if path.suffix != ".py":
        return canonical_text(text)
    try:
        return canonical_python(text)
    except SyntaxError as err:
        raise ValueError(f"{path}:{err.lineno}: cannot fingerprint a source that does not parse: {err.msg}") from err


def part_files(root: Path, part: Part) -> list[str]:
    """The files of one part under ``root``, as sorted POSIX paths relative to it."""
    found = {p.relative_to(root).as_posix() for pattern in part.include for p in Path(root).glob(pattern)
             if p.is_file() and "__pycache__" not in p.parts}
    return sorted(found - set(part.exclude))


def _listing(entries: dict[str, str]) -> str:
    """The SHA-256 of ``"<hash>  <name>\\n"`` lines in name order (``sha256sum``'s format)."""
    return hashlib.sha256("".join(f"{h}  {n}\n" for n, h in sorted(entries.items())).encode()).hexdigest()


def file_hashes(root: Path) -> dict[str, dict[str, str]]:
    """Per part, the SHA-256 of each file's canonical form, by path."""
    root = Path(root)
    return {name: {f: hashlib.sha256(canonical(root / f).encode()).hexdigest() for f in part_files(root, part)}
            for name, part in PARTS.items()}


def fingerprint(root: Path) -> dict:
    """The numerics fingerprint of the repository checkout at ``root``.

    Returns:
        ``{"sha256": overall, "parts": {part: sha256}}``, the parts in :data:`PARTS`' order.
    """
    parts = {name: _listing(files) for name, files in file_hashes(root).items()}
    return {"sha256": _listing(parts), "parts": parts}


def changed_parts(stored: dict, current: dict) -> list[str]:
    """The parts whose hash differs between two fingerprints (a part only one of them has included), in
    :data:`PARTS`' order."""
    a, b = stored.get("parts", {}), current.get("parts", {})
    names = [*PARTS, *sorted((set(a) | set(b)) - set(PARTS))]
    return [n for n in names if (n in a or n in b) and a.get(n) != b.get(n)]
