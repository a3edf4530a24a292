"""The package's floors: the method core imports neither the pipeline nor reporting, reporting reads
artifacts only, and no module imports itself back through others (no cycle, lazy imports included)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "docs"))
import import_graph  # noqa: E402

#: what reporting may read of the pipeline: the typed artifacts, the file helpers and paths, and the provenance
#: (the numerics fingerprint the bench keys stored baselines by)
REPORTING_MAY_IMPORT = {"cofitune.pipeline.artifacts", "cofitune.pipeline.io", "cofitune.pipeline.paths",
                        "cofitune.pipeline.provenance", "cofitune.pipeline.fingerprint"}


def test_every_package_directory_is_scanned():
    """A package directory the graph does not see would be a floor nobody checks."""
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "tools"}
    assert packages == {p.name for p in import_graph.PACKAGES}
    assert {import_graph.floor(m) for m in import_graph.graph()} == {*import_graph.FLOORS, "top"}


def test_each_floor_imports_only_the_floors_below_it():
    g = import_graph.graph()
    bad = {m: sorted(d for d in deps if import_graph.floor(d) not in import_graph.MAY_IMPORT[import_graph.floor(m)])
           for m, deps in g.items() if import_graph.floor(m) != "top"}
    assert not {m: d for m, d in bad.items() if d}


def test_no_two_floors_import_each_other():
    g = import_graph.graph()
    edges = {(import_graph.floor(m), import_graph.floor(d)) for m, deps in g.items() for d in deps}
    both = sorted((a, b) for a, b in edges if a < b and (b, a) in edges)
    assert not both


def test_the_floor_rules_are_a_strict_order():
    """MAY_IMPORT allows no floor to import one above it (the order of FLOORS), so no two floors can meet in a
    cycle."""
    rank = {f: i for i, f in enumerate(import_graph.FLOORS)}
    assert all(rank[d] <= rank[f] for f, allowed in import_graph.MAY_IMPORT.items() for d in allowed)


def test_reporting_reads_only_the_artifacts_of_the_pipeline():
    g = import_graph.graph()
    bad = {m: sorted(d for d in deps if import_graph.floor(d) == "pipeline" and d not in REPORTING_MAY_IMPORT)
           for m, deps in g.items() if import_graph.floor(m) == "reporting"}
    assert not {m: d for m, d in bad.items() if d}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected set of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_cycles_are_found_and_the_package_has_none():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles(import_graph.graph()) == []


def test_the_committed_drawing_is_current(capsys):
    import_graph.main()
    assert (ROOT / "docs/floors.md").read_text() == capsys.readouterr().out, (
        "docs/floors.md is stale: python docs/import_graph.py > docs/floors.md")


def test_the_dag_parses_without_torch():
    """Snakemake parses the Snakefile for every `snakemake` call, and once more inside every cluster job: the
    modules the workflow imports, the method registry and the config check must not pull in torch (seconds
    of import each time) or transformers."""
    import re
    import subprocess

    imports = set()
    for smk in [ROOT / "Snakefile", *sorted((ROOT / "rules").glob("*.smk"))]:
        imports |= set(re.findall(r"^\s*(?:from|import) (cofitune[\w.]*|evaluators[\w.]*)", smk.read_text(), re.M))
    assert "cofitune.pipeline.config" in imports
    code = ("import sys, yaml\n"
            + "".join(f"import {m}\n" for m in sorted(imports))
            + "from cofitune.core.methods import get_method, method_names\n"
              "from cofitune.pipeline.config import check_config, configured_runs\n"
              "[get_method(m) for m in method_names()]\n"
              f"config = yaml.safe_load(open({str(ROOT / 'config/config.yaml')!r}))\n"
              f"check_config(config, {str(ROOT)!r})\n"
              "configured_runs(config)\n"
              "print(sorted(m for m in ('torch', 'transformers', 'safetensors', 'peft') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "[]", out.stdout


def test_no_function_of_the_packages_is_over_60_lines():
    import ast

    long = []
    for path in sorted(p for package in import_graph.PACKAGES for p in package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60:
                long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} "
                            f"({node.end_lineno - node.lineno + 1} lines)")
    assert not long, long
