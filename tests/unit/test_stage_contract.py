"""The stage contract: a stage rule passes its job exactly one resolved config file plus its inputs and outputs,
and the stage reads that file into its typed, frozen dataclass with the schema's defaults."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cofitune.pipeline import stage_configs as S
from cofitune.pipeline.schema import schema_default

ROOT = Path(__file__).resolve().parents[2]
SMK = [ROOT / "Snakefile", *sorted((ROOT / "rules").glob("*.smk"))]
#: what a rule's shell may interpolate: its files, its log, its threads, the launcher and the python command
ALLOWED = re.compile(r"^(input(\.\w+)?|output(\.\w+)?|log|threads|params\.launch|wildcards\.\w+|PY)$")


def _shell_strings(text: str) -> list[str]:
    """The (implicitly concatenated) string literals of every ``shell:`` block of a rule file."""
    out = []
    for block in re.findall(r"^\s+shell:\n((?:\s+\".*\"\n?)+)", text, re.M):
        out.append("".join(re.findall(r"\"(.*)\"", block)))
    return out


def test_the_shell_reader_sees_every_rule_that_runs_a_command():
    rules = sum(len(re.findall(r"^\s*(?:rule|checkpoint) \w+:", p.read_text(), re.M)) for p in SMK)
    shells = sum(len(_shell_strings(p.read_text())) for p in SMK)
    bare = sum(len(re.findall(r"^\s+shell:", p.read_text(), re.M)) for p in SMK)
    assert shells == bare and 10 <= shells <= rules


@pytest.mark.parametrize("path", SMK, ids=lambda p: p.name)
def test_no_rule_builds_value_flags_for_its_stage(path):
    """Every placeholder of a shell command is a file, the log, the thread count, the launcher or a wildcard: no
    value is re-sent as a flag (no ``{params.n}``, no ``{SEARCH[criterion]}``)."""
    for shell in _shell_strings(path.read_text()):
        names = re.findall(r"(?<!\{)\{([^{}]+)\}(?!\})", shell)
        bad = [n for n in names if not ALLOWED.match(n)]
        assert not bad, f"{path.name}: {shell[:80]}... interpolates {bad}"


def test_every_stage_command_reads_its_config_file():
    """The stages with settings take ``--config {input.cfg}`` (train and evaluate: their row's run config)."""
    text = "\n".join(s for p in SMK for s in _shell_strings(p.read_text()))
    for command in ("prepare-data", "importance", "prepare-probe", "search-level", "search-grid", "aggregate",
                    "bench-gate", "resolve-region"):
        found = re.findall(rf"(?:cofitune|PY\}}|launch\}}) {command} ([^>]*)", text)
        assert found and all("--config {input.cfg}" in f for f in found), (command, found)
    for command in ("train", "evaluate"):
        found = re.findall(rf" {command} ([^>]*)", text)
        assert found and all("--run-config {input.cfg}" in f for f in found), (command, found)


def test_no_sentinel_stands_for_absent():
    hits = [f"{p.relative_to(ROOT)}:{i}" for pkg in ("cofitune", "evaluators", "rules") for p in (ROOT / pkg).rglob("*")
            if p.suffix in (".py", ".smk") for i, line in enumerate(p.read_text().splitlines(), 1)
            if "10**9" in line.replace(" ", "")]
    assert not hits


def test_a_stage_config_fills_the_schemas_defaults_and_names_what_is_wrong():
    cfg = S.ImportanceStage.from_dict({"n_examples": 32}, where="imp.json")
    assert cfg.n_examples == 32
    assert cfg.batch_size == schema_default("importance", "batch_size")
    assert cfg.template == "alpaca" and cfg.seed == schema_default("seed")  # the DAG writes the resolved format
    with pytest.raises(ValueError, match="template 'auto' is not one of"):
        S.ImportanceStage.from_dict({"template": "auto"}, where="imp.json")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.n_examples = 1
    with pytest.raises(ValueError, match=r"imp.json: unknown key\(s\) \['n_exampels'\]"):
        S.ImportanceStage.from_dict({"n_exampels": 32}, where="imp.json")
    with pytest.raises(ValueError, match=r"imp.json: key 'dropout' = 'high' is not of type"):
        S.ImportanceStage.from_dict({"dropout": "high"}, where="imp.json")
    with pytest.raises(ValueError, match=r"imp.json: key 'abs_grad' = 1 is not of type"):
        S.ImportanceStage.from_dict({"abs_grad": 1}, where="imp.json")
    with pytest.raises(ValueError, match="d.json: missing key 'task'"):
        S.DataStage.from_dict({"spec": {}}, where="d.json")
    assert S.ImportanceStage.from_dict({"n_examples": None}, where="x").n_examples is None  # null: every example


def test_the_files_the_dag_writes_are_read_back_as_the_stage_configs(tmp_path):
    """Every stage config the DAG writes for the test config is one its stage's dataclass accepts as it is."""
    import yaml
    from snakemake.utils import validate

    from cofitune.pipeline.config import stage_config

    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    config.update(yaml.safe_load((ROOT / "config/test.yaml").read_text()))
    validate(config, str(ROOT / "workflow/schemas/config.schema.yaml"))
    model, task = config["models"][0], config["tasks"][0]
    for kind, key, cls in (("data", task, S.DataStage), ("importance", f"{model}/{task}", S.ImportanceStage),
                           ("probe", model, S.ProbeStage), ("search", f"{model}/{task}", S.SearchStage),
                           ("tables", "all", S.TablesStage)):
        content = stage_config(config, kind, key, ROOT)
        path = tmp_path / f"{kind}.json"
        path.write_text(json.dumps(content))
        assert cls.read(path).as_dict() == content, kind


def test_the_command_line_flags_build_the_same_dataclass(tmp_path):
    from cofitune.cli import build_parser

    path = tmp_path / "imp.json"
    path.write_text(json.dumps({"n_examples": 8, "batch_size": 2, "dropout": 0.1, "kl_weight": 0.5, "abs_grad": True,
                                "seed": 3, "max_length": 64, "template": "alpaca"}))
    from_file = build_parser().parse_args(["importance", "--config", str(path), "--model-dir", "m", "--data", "d",
                                           "--out", "o"])
    by_hand = build_parser().parse_args(["importance", "--n-examples", "8", "--batch-size", "2", "--dropout", "0.1",
                                         "--kl-weight", "0.5", "--abs-grad", "true", "--seed", "3", "--max-length",
                                         "64", "--template", "alpaca", "--model-dir", "m", "--data", "d", "--out", "o"])
    assert S.from_args(S.ImportanceStage, from_file) == S.from_args(S.ImportanceStage, by_hand)
    over = build_parser().parse_args(["importance", "--config", str(path), "--n-examples", "null", "--model-dir", "m",
                                      "--data", "d", "--out", "o"])
    assert S.from_args(S.ImportanceStage, over).n_examples is None


def test_a_wheel_install_imports_and_refuses_with_one_line(tmp_path):
    """The package without its repository (what a wheel installs) imports, and its CLI refuses in one line."""
    import shutil

    for package in ("cofitune", "evaluators"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    code = "import cofitune.cli, cofitune.core.methods, cofitune.stats; print('ok')"
    imported = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert imported.returncode == 0 and imported.stdout.strip() == "ok", imported.stderr[-2000:]
    ran = subprocess.run([sys.executable, "-m", "cofitune", "aggregate", "--metrics", "m.json", "--csv", "t.csv",
                          "--md", "t.md"], cwd=tmp_path, capture_output=True, text=True)
    assert ran.returncode == 2
    lines = ran.stderr.strip().splitlines()
    assert len(lines) == 1 and "is not a checkout of the cofitune repository" in lines[0], ran.stderr
