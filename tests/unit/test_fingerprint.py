"""The numerics fingerprint: docstrings, comments, layout and plots leave it unchanged; an edit to a loss, a
scorer, a rule or a statistic changes it, in exactly the part it belongs to; its canonical form is pinned by a
golden worked by hand, and is the same under every Python found on this machine; and the bench refuses a stored
baseline by it, naming the part that changed."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cofitune.pipeline.fingerprint import (PARTS, canonical_python, canonical_text, changed_parts, fingerprint,
                                           part_files)

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "cofitune" / "pipeline" / "fingerprint.py"

# ---- the canonical form, pinned ---------------------------------------------------------------------

#: a module with what the canonical form must see through: docstrings (module, function, class, attribute,
#: one left alone in a body), comments, a `#` inside a string, quote styles, bytes, non-ASCII, continuation
#: lines, a nested f-string (one token before Python 3.12, five and more since), and an extended slice (an
#: ``ExtSlice`` node in 3.8's ast, a ``Tuple`` since 3.9: why ast.dump is not hashed)
SAMPLE = r'''"""Module docstring: dropped."""
# a comment line: dropped
from __future__ import annotations

import math  # a trailing comment: dropped

SCALE = 1_000
NAME = 'squad'
RAW = r"\d+#not a comment"
BLOB = b"\x00\xff"
CAFE = "café"


def loss(x: float, *, t=0.5) -> float:
    """A docstring over
    two lines."""
    y = (x +
         t)
    return math.log(y) if y > 0 else \
        0.0


class Head:
    "Class docstring."
    width: int = 2
    """An attribute docstring: dropped."""

    def label(self, n):
        return f"{self.width}:{n!r:>{n}} {f'{n}'}"


async def fetch(xs):
    """Only a docstring: an empty body."""


def gather(a, b):
    return [a[1:2, ::3], (b := a)]
'''

#: worked by hand from the definition: one line per logical line, tokens joined by one space, four spaces per
#: block level; strings by value as JSON with ASCII escapes, bytes as ``b:<hex>``, f-strings as written
GOLDEN = r'''from __future__ import annotations
import math
SCALE = 1_000
NAME = "squad"
RAW = "\\d+#not a comment"
BLOB = b:00ff
CAFE = "caf\u00e9"
def loss ( x : float , * , t = 0.5 ) -> float :
    y = ( x + t )
    return math . log ( y ) if y > 0 else 0.0
class Head :
    width : int = 2
    def label ( self , n ) :
        return f"{self.width}:{n!r:>{n}} {f'{n}'}"
async def fetch ( xs ) :
def gather ( a , b ) :
    return [ a [ 1 : 2 , : : 3 ] , ( b := a ) ]
'''

#: the fingerprint of a tree holding SAMPLE as cofitune/core/m.py and nothing else, checked with coreutils
#: (``sha256sum`` of GOLDEN, of its listing line, of the five parts' lines); a change of this value is a change of
#: every stored baseline's key: only on purpose
GOLDEN_TREE = "3e724b14c65cbe09503f7465c1215f6a5bc4208c301ae28cdc8619ddbc9fd125"


def _variants(source: str) -> list[str]:
    """The same module as written, with CRLF line ends, and without its last line end."""
    return [source, source.replace("\n", "\r\n"), source.rstrip("\n")]


def test_the_canonical_form_of_a_fixed_source_is_the_hand_worked_golden():
    assert [canonical_python(s) for s in _variants(SAMPLE)] == [GOLDEN] * 3


def test_the_hashes_are_sha256sum_listings_of_the_canonical_forms(tmp_path):
    (tmp_path / "cofitune/core").mkdir(parents=True)
    (tmp_path / "cofitune/core/m.py").write_text(SAMPLE, encoding="utf-8")
    sha = lambda text: hashlib.sha256(text.encode()).hexdigest()  # noqa: E731
    core = sha(f"{sha(GOLDEN)}  cofitune/core/m.py\n")
    parts = {name: core if name == "core" else sha("") for name in PARTS}
    fp = fingerprint(tmp_path)
    assert fp == {"sha256": sha("".join(f"{parts[n]}  {n}\n" for n in sorted(parts))), "parts": parts}
    assert fp["sha256"] == GOLDEN_TREE


def test_rules_and_yaml_lose_comment_lines_blank_lines_and_trailing_blanks_only():
    text = "# header\nrule train:\n\n    # why\n    shell: 'echo #1'   \n  # indented comment\nx: 1 # kept\n"
    assert canonical_text(text) == "rule train:\n    shell: 'echo #1'\nx: 1 # kept\n"


def _interpreters() -> dict[str, str]:
    """Every other Python 3.8+ found here (PATH, pyenv, uv), by version."""
    home = Path.home()
    candidates = [shutil.which(f"python3.{minor}") for minor in range(8, 16)]
    candidates += glob.glob(str(home / ".pyenv/versions/3.*/bin/python3"))
    candidates += glob.glob(str(home / ".local/share/uv/python/*/bin/python3"))
    found = {}
    for exe in (c for c in candidates if c and "/shims/" not in c):  # a pyenv shim: slow, and its versions are globbed
        proc = subprocess.run([exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                              capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ""})
        version = proc.stdout.strip()
        if proc.returncode == 0 and version and tuple(map(int, version.split("."))) >= (3, 8):
            found.setdefault(version, exe)
    found.pop("%d.%d" % sys.version_info[:2], None)
    return found


PROBE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("fp", sys.argv[1])
fp = importlib.util.module_from_spec(spec); sys.modules["fp"] = fp; spec.loader.exec_module(fp)
sample = sys.stdin.read()
out = {"sample": [fp.canonical_python(s) for s in (sample, sample.replace("\\n", "\\r\\n"), sample.rstrip("\\n"))]}
if sys.version_info >= (3, 11):  # the versions the package supports parse all of it
    out["repo"] = fp.fingerprint(sys.argv[2])
print(json.dumps(out))
"""


def test_the_fingerprint_is_the_same_under_every_other_python_found():
    """ast.dump and the token stream differ between versions; the canonical form must not."""
    others = _interpreters()
    if not others:
        pytest.skip("no other Python interpreter found (PATH, ~/.pyenv, uv)")
    here = fingerprint(ROOT)
    for version, exe in others.items():
        proc = subprocess.run([exe, "-c", PROBE, str(MODULE), str(ROOT)], input=SAMPLE.encode(), capture_output=True,
                              env={**os.environ, "PYTHONPATH": "", "PYTHONIOENCODING": "utf-8"})
        assert proc.returncode == 0, f"{exe}: {proc.stderr[-2000:]}"
        out = json.loads(proc.stdout)
        assert out["sample"] == [GOLDEN] * 3, f"Python {version} ({exe})"
        assert out.get("repo", here) == here, f"Python {version} ({exe}): parts {changed_parts(out['repo'], here)}"


# ---- what it covers ---------------------------------------------------------------------------------

def test_every_part_covers_files_of_this_checkout_and_every_exclusion_names_one():
    for name, part in PARTS.items():
        assert part_files(ROOT, part), f"part {name} matches no file: a move left it empty"
        missing = [p for p in part.exclude if not (ROOT / p).is_file()]
        assert not missing, f"part {name} excludes files that are gone: {missing}"


@pytest.mark.parametrize(("path", "part"), [
    ("cofitune/core/trainer.py", "core"),
    ("cofitune/core/methods/cofitune.py", "core"),
    ("cofitune/pipeline/stages/train.py", "pipeline"),
    ("cofitune/pipeline/evaluate.py", "pipeline"),
    ("cofitune/stats/__init__.py", "stats"),
    ("evaluators/speciality/squad.py", "evaluators"),
    ("evaluators/tasks/cofitune_mmlu.yaml", "evaluators"),
    ("rules/train.smk", "rules"),
    ("Snakefile", "rules"),
    ("cofitune/reporting/plots.py", None),
    ("cofitune/reporting/aggregate.py", None),
    ("cofitune/cli.py", None),
    ("rules/plots.smk", None),
    ("cofitune/pipeline/provenance.py", None),
    ("workflow/schemas/config.schema.yaml", None),
])
def test_the_real_files_fall_in_their_part(path, part):
    assert (ROOT / path).is_file()
    assert [name for name, p in PARTS.items() if path in part_files(ROOT, p)] == ([part] if part else [])


# ---- edits: which change it, and where ---------------------------------------------------------------

TREE = {
    "cofitune/core/trainer.py": '''"""The training loop."""
import torch


def loss(logits, labels):
    """Token-mean cross-entropy."""
    # mean over the tokens
    return torch.nn.functional.cross_entropy(logits, labels)
''',
    "cofitune/core/methods/l2.py": "def penalty(w, w0):\n    return ((w - w0) ** 2).sum()\n",
    "cofitune/pipeline/stages/train.py": "def run(cfg):\n    return cfg['lr']\n",
    "cofitune/pipeline/io.py": "def write(path, text):\n    path.write_text(text)\n",
    "cofitune/stats/__init__.py": "Z = 1.96\n",
    "cofitune/reporting/plots.py": "COLOR = 'red'\n",
    "cofitune/cli.py": "def main():\n    return 0\n",
    "evaluators/speciality/squad.py": '''def score(prediction, references):
    """F1 against the best reference."""
    return max(f1(prediction, r) for r in references)
''',
    "evaluators/tasks/cofitune_mmlu.yaml": "# lm-eval task\ntask: cofitune_mmlu\nnum_fewshot: 0\n",
    "rules/train.smk": ('rule train:\n    # one job per row\n'
                        '    shell: "python -m cofitune train --run-config {input.cfg}"\n'),
    "rules/plots.smk": 'rule plot_pareto:\n    shell: "python -m cofitune plot-pareto"\n',
    "Snakefile": 'include: "rules/train.smk"\ninclude: "rules/plots.smk"\n',
    "README.md": "# cofitune\n",
}

EDITS = [  # (what, path, old, new, the part it changes: None for none)
    ("docstring", "cofitune/core/trainer.py", "Token-mean cross-entropy.", "Mean cross-entropy, -100 ignored.", None),
    ("module docstring", "cofitune/core/trainer.py", "The training loop.", "The loop.", None),
    ("comment", "cofitune/core/trainer.py", "# mean over the tokens", "# averaged over every token", None),
    ("layout", "cofitune/core/trainer.py", "(logits, labels)", "(\n        logits,\n        labels\n    )", None),
    ("plot", "cofitune/reporting/plots.py", "'red'", "'blue'", None),
    ("cli", "cofitune/cli.py", "return 0", "return 1", None),
    ("file plumbing", "cofitune/pipeline/io.py", "write_text(text)", "write_text(text + '\\n')", None),
    ("plots rule", "rules/plots.smk", "plot-pareto", "plot-pareto --png x", None),
    ("rule comment", "rules/train.smk", "# one job per row", "# a job per row\n\n    # more", None),
    ("yaml comment", "evaluators/tasks/cofitune_mmlu.yaml", "# lm-eval task", "# the lm-eval task", None),
    ("readme", "README.md", "cofitune", "CoFiTune", None),
    ("loss", "cofitune/core/trainer.py", "(logits, labels)", "(logits, labels, label_smoothing=0.1)", "core"),
    ("method", "cofitune/core/methods/l2.py", "** 2", "** 1", "core"),
    ("scorer", "evaluators/speciality/squad.py", "max(f1(prediction, r) for r in references)",
     "f1(prediction, references[0])", "evaluators"),
    ("task yaml", "evaluators/tasks/cofitune_mmlu.yaml", "num_fewshot: 0", "num_fewshot: 5", "evaluators"),
    ("rule", "rules/train.smk", "--run-config {input.cfg}", "--run-config {input.cfg} --seed 1", "rules"),
    ("snakefile", "Snakefile", 'include: "rules/plots.smk"\n', "", "rules"),
    ("stage", "cofitune/pipeline/stages/train.py", "cfg['lr']", "cfg['lr'] / 10", "pipeline"),
    ("statistic", "cofitune/stats/__init__.py", "1.96", "1.645", "stats"),
    ("new pipeline module", "cofitune/pipeline/drift.py", None, "SCALE = 2\n", "pipeline"),
    ("new reporting module", "cofitune/reporting/claims.py", None, "SCALE = 2\n", None),
]


def _tree(root: Path) -> Path:
    for path, text in TREE.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    return root


@pytest.mark.parametrize(("what", "path", "old", "new", "part"), EDITS, ids=[e[0] for e in EDITS])
def test_an_edit_changes_exactly_the_part_it_belongs_to(tmp_path, what, path, old, new, part):
    root = _tree(tmp_path)
    before = fingerprint(root)
    target = root / path
    if old is None:
        target.write_text(new)
    else:
        assert old in target.read_text(), what
        target.write_text(target.read_text().replace(old, new))
    after = fingerprint(root)
    assert changed_parts(before, after) == ([part] if part else [])
    assert (after["sha256"] != before["sha256"]) == (part is not None)


def test_a_source_that_does_not_parse_is_named(tmp_path):
    root = _tree(tmp_path)
    (root / "cofitune/core/trainer.py").write_text("def loss(:\n")
    with pytest.raises(ValueError, match=r"trainer.py:1: cannot fingerprint a source that does not parse"):
        fingerprint(root)


# ---- the bench keys its stored baselines by it -------------------------------------------------------

def _fp(**parts) -> dict:
    names = {name: parts.get(name, name * 4) for name in PARTS}
    return {"sha256": hashlib.sha256(json.dumps(names).encode()).hexdigest(), "parts": names}


def _metrics(path: Path, fp: dict | None, variant: str = "v") -> Path:
    meta = {"code_sha256": "0000", "git": {"sha": None, "dirty": None}} | ({"fingerprint": fp} if fp else {})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"run": {"model": "m", "task": "t", "method": "x", "variant": variant, "params": {}},
                                "metrics": {}, "meta": meta}))
    return path


def test_the_bench_refuses_a_stored_baseline_only_when_the_fingerprint_differs_naming_the_parts(tmp_path):
    from cofitune.reporting.bench import check_fresh

    current = _fp()
    check_fresh(_metrics(tmp_path / "same.json", current), "tiny", current)  # code_sha256 differs: no matter
    stale = _metrics(tmp_path / "ref.json", _fp(rules="other", evaluators="other"))
    with pytest.raises(ValueError, match=r"ref.json: stored baseline made with other numerics code \(fingerprint "
                                         r"\w{12}, this checkout \w{12}\): parts changed: evaluators, rules; "
                                         r"refresh with `python tools/bench.py --suite tiny --refresh`"):
        check_fresh(stale, "tiny", current)


def test_the_bench_refuses_a_stored_baseline_without_a_fingerprint(tmp_path):
    from cofitune.reporting.bench import check_fresh

    with pytest.raises(ValueError, match=r"old.json: stored baseline without a numerics fingerprint \(written "
                                         r"before baselines were keyed by it.*--suite tiny --refresh"):
        check_fresh(_metrics(tmp_path / "old.json", None), "tiny", _fp())


def test_stored_baselines_are_keyed_by_the_fingerprint_in_their_manifest(tmp_path):
    """store_baselines writes it; check_baselines reads it back, and refuses a manifest without it or with
    another, naming the parts."""
    from cofitune.reporting.bench import check_baselines, load_suite, store_baselines

    _, _, cfg = load_suite("tiny")
    current = _fp()
    ref = cfg["bench"]["reference"]
    sources = [_metrics(tmp_path / "work" / f"{i}.json", current, variant) for i, variant in
               enumerate([ref["variant"], "other"])]
    for source in sources:  # the suite's reference row of its (model, task)
        doc = json.loads(source.read_text())
        doc["run"] |= {"model": cfg["models"][0], "task": cfg["tasks"][0], "method": ref["method"]}
        source.write_text(json.dumps(doc))
    one = {**cfg, "models": cfg["models"][:1], "tasks": cfg["tasks"][:1]}
    out = store_baselines("tiny", sources, tmp_path / "baselines", current)
    manifest = json.loads((out / "MANIFEST.json").read_text())
    assert manifest["fingerprint"] == current and len(manifest["files"]) == 2
    check_baselines("tiny", one, out, current)
    with pytest.raises(ValueError, match=r"MANIFEST.json: stored baseline made with other numerics code .*parts "
                                         r"changed: core; refresh with"):
        check_baselines("tiny", one, out, _fp(core="edited"))
    del manifest["fingerprint"]
    (out / "MANIFEST.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=r"MANIFEST.json: stored baseline without a numerics fingerprint"):
        check_baselines("tiny", one, out, current)


def test_a_refresh_does_not_store_a_metrics_file_of_other_numerics_code(tmp_path):
    """An output that a refresh's Snakemake did not rerun keeps the fingerprint it was made with."""
    from cofitune.reporting.bench import store_baselines

    stale = _metrics(tmp_path / "work" / "stale.json", _fp(pipeline="older"))
    with pytest.raises(ValueError, match=r"stale.json: metrics file made with other numerics code .*parts changed: "
                                         r"pipeline; not stored: delete it"):
        store_baselines("tiny", [stale], tmp_path / "baselines", _fp())
    assert not (tmp_path / "baselines").exists()


def test_the_cli_prints_the_fingerprint_and_its_parts(capsys):
    from cofitune.cli import main

    assert main(["fingerprint", "--parts"]) == 0
    lines = capsys.readouterr().out.splitlines()
    fp = fingerprint(ROOT)
    assert lines == [fp["sha256"], *(f"{sha}  {name}" for name, sha in fp["parts"].items())]
