"""Extension by one file, for real: in a temporary copy of the repository, a throwaway versatility suite (one
lm-eval YAML), a throwaway speciality task (one task-sheet entry, one loader file, one scorer file) and a
throwaway method (one file in the registry) are added, nothing else is edited, and the real DAG runs them to
the table, on a `source: hub` model that lives only in a local HF cache (the layout `fetch-models` leaves:
models--org--name/{refs/main, snapshots/<rev>/}), fully offline."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import fake_hub_cache
from tests.integration.test_dag import ROOT, snakemake

pytestmark = pytest.mark.slow

COPY_IGNORE = shutil.ignore_patterns(".git", ".venv", ".vllm-cpu-venv*", "results", "logs", ".snakemake",
                                     "benchmarks", "docs", "__pycache__", "*.egg-info", ".pytest_cache")

SUITE = '''\
task: cofitune_capitals
dataset_path: json
dataset_name: null
dataset_kwargs:
  data_files:
    test: "{repo_root}/resources/data/versatility/capitals.jsonl"
test_split: test
output_type: multiple_choice
num_fewshot: 0
doc_to_text: "Question: What is the capital of {{country}}?\\nAnswer:"
doc_to_choice: choices
doc_to_target: answer
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
metadata:
  headline_metric: acc
  chance: 50  # one of 2 capitals
  version: 1.0
'''

LOADER = '''"""Throwaway: a header-less TSV of country<TAB>capital."""

from pathlib import Path

from cofitune.pipeline.records import iter_tsv

REQUIRED = {"country": str, "capital": str}
read = iter_tsv


def convert(record: dict, path: Path, where, instruction: str) -> dict:
    return {"id": f"{path.name}:{where}", "instruction": instruction, "input": f"Country: {record['country']}",
            "output": record["capital"], "references": [record["capital"]]}
'''

SCORER = '''"""Throwaway: case-insensitive exact match of the first line."""

NAME = "capital_exact"
PRIMARY = "exact"
HIGHER_IS_BETTER = {"exact": True}


def extract(text: str) -> str:
    return text.strip().splitlines()[0].strip() if text.strip() else ""


def score(prediction: str, references: list[str]) -> dict[str, float]:
    return {"exact": 100.0 * any(prediction.lower() == r.lower() for r in references)}
'''

METHOD = '''"""Throwaway: the FFN up/down projections of the top layer."""

from dataclasses import dataclass

from cofitune.core.methods import Method, register


@register("top_ffn")
@dataclass(frozen=True)
class TopFfn(Method):
    def trainable(self, model):
        top = model.config.num_hidden_layers - 1
        return {n for n, _ in model.named_parameters()
                if f"layers.{top}.mlp." in n and n.split(".")[-2] in ("up_proj", "down_proj")}
'''

CAPITALS = [("France", "Paris"), ("Italy", "Rome"), ("Spain", "Madrid"), ("Japan", "Tokyo"), ("Egypt", "Cairo"),
            ("Peru", "Lima"), ("Kenya", "Nairobi"), ("Chile", "Santiago"), ("Cuba", "Havana"), ("Iran", "Tehran")]
TASK_ENTRY = '''
capitals:
  description: throwaway task of the extension test
  loader: capitals_tsv
  train: resources/data/capitals/train.tsv
  test: resources/data/capitals/test.tsv
  instruction: Name the capital city.
  evaluator: capital_exact
  max_input_chars: null
  max_new_tokens: 4
'''
#: the files the extension adds (relative to the copy), and the one it edits
ADDED = {"evaluators/tasks/cofitune_capitals.yaml", "resources/data/versatility/capitals.jsonl",
         "cofitune/pipeline/loaders/capitals_tsv.py", "evaluators/speciality/capital_exact.py",
         "cofitune/core/methods/top_ffn.py", "resources/data/capitals/train.tsv", "resources/data/capitals/test.tsv"}
EDITED = {"config/tasks.yaml"}
ROWS = [("original", "base"), ("top_ffn", "top")]


def tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def fake_hub(tmp: Path) -> tuple[Path, Path]:
    """The tiny test model as a hub entry in a local HF cache; returns (cache, repo folder)."""
    from cofitune.pipeline.model import prepare_model
    from cofitune.pipeline.sheets import read_sheet

    tiny = tmp / "tiny"
    prepare_model("tiny-llama-8", read_sheet(ROOT / "config/test_models.yaml"), tiny, tmp / "tiny.json")
    snapshot = fake_hub_cache(tmp / "hub", "cofitune-test/tiny-llama", tiny)
    return tmp / "hub", snapshot.parents[1]


@pytest.fixture(scope="module")
def extended(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("extension")
    copy = tmp / "repo"
    shutil.copytree(ROOT, copy, ignore=COPY_IGNORE)
    before = tree(copy)
    files = {
        "evaluators/tasks/cofitune_capitals.yaml": SUITE,
        "resources/data/versatility/capitals.jsonl": "".join(
            json.dumps({"country": c, "choices": [cap, CAPITALS[(i + 1) % len(CAPITALS)][1]], "answer": 0}) + "\n"
            for i, (c, cap) in enumerate(CAPITALS)),
        "cofitune/pipeline/loaders/capitals_tsv.py": LOADER,
        "evaluators/speciality/capital_exact.py": SCORER,
        "cofitune/core/methods/top_ffn.py": METHOD,
        "resources/data/capitals/train.tsv": "".join(f"{c}\t{cap}\n" for c, cap in CAPITALS[:6]),
        "resources/data/capitals/test.tsv": "".join(f"{c}\t{cap}\n" for c, cap in CAPITALS[6:]),
    }
    for rel, text in files.items():
        (copy / rel).parent.mkdir(parents=True, exist_ok=True)
        (copy / rel).write_text(text, encoding="utf-8")
    with open(copy / "config/tasks.yaml", "a", encoding="utf-8") as sheet:
        sheet.write(TASK_ENTRY)
    cache, repo = fake_hub(tmp)
    models = tmp / "models.yaml"
    models.write_text("tiny-hub:\n  source: hub\n  location: cofitune-test/tiny-llama\n  n_layers: 8\n")
    extra = tmp / "extension.yaml"
    extra.write_text(f"models_sheet: {models}\nmodels: [tiny-hub]\ntasks: [capitals]\nsearch: {{enabled: false}}\n"
                     "data: {n_train: 6, n_test: 4}\n"
                     "evaluation:\n  versatility:\n    suites: {knowledge: [capitals], reasoning: [piqa]}\n"
                     "    limit: 4\n"
                     "methods:\n  - {method: original, variant: base}\n  - {method: top_ffn, variant: top}\n")
    work = tmp / "work"
    # the copy's own package and evaluators, ahead of the editable install of this checkout
    snakemake(work, "--configfile", str(ROOT / "config/test.yaml"), str(extra), snakefile=copy / "Snakefile",
              env={"HF_HUB_CACHE": str(cache), "PYTHONPATH": str(copy)})
    return dict(copy=copy, before=before, work=work, repo=repo)


def test_a_suite_a_task_and_a_method_are_one_file_each(extended):
    copy, work = extended["copy"], extended["work"]
    after = tree(copy)
    assert set(after) - set(extended["before"]) == ADDED
    changed = {f for f, h in extended["before"].items() if after.get(f) != h}
    assert changed == EDITED  # the task sheet's one new entry; every other file as checked in

    df = pd.read_csv(work / "results/tables/main.csv")
    assert list(zip(df.method, df.variant)) == ROWS and set(df.task) == {"capitals"}
    assert df.capitals.between(0, 100).all() and df.piqa.between(0, 100).all()
    runs = work / "results/runs/tiny-hub/capitals"
    m = json.loads((runs / "top_ffn/top/metrics.json").read_text())
    assert m["metrics"]["spec_metric"] == "exact" and m["metrics"]["spec_n"] == 4
    assert m["metrics"]["suites"]["capitals"]["n"] == 4 and m["metrics"]["aspects_tasks"]["knowledge"] == ["capitals"]
    index = json.loads((runs / "top_ffn/top/checkpoint/trainable.json").read_text())
    assert sorted(index["names"]) == ["model.layers.7.mlp.down_proj.weight", "model.layers.7.mlp.up_proj.weight"]
    train = [json.loads(line) for line in (work / "results/data/capitals/train.jsonl").read_text().splitlines()]
    assert len(train) == 6 and all(e["input"].startswith("Country: ") for e in train)


def test_a_hub_model_runs_end_to_end_offline_from_the_hf_cache(extended):
    from safetensors.torch import load_file

    work, repo = extended["work"], extended["repo"]
    meta = json.loads((work / "results/models/tiny-hub/base.json").read_text())
    assert meta["source"] == "hub" and meta["n_layers"] == 8
    snapshot = next((repo / "snapshots").iterdir())
    got, want = (load_file(d / "model.safetensors") for d in (work / "results/models/tiny-hub/base", snapshot))
    assert set(got) == set(want) and all(bool((got[k] == want[k]).all()) for k in want)
    metrics = json.loads((work / "results/runs/tiny-hub/capitals/original/base/metrics.json").read_text())
    assert metrics["run"]["model"] == "tiny-hub" and metrics["metrics"]["suites"]
