"""Each default has one source: the schema's training defaults are TrainConfig's, and the importance CLI's
defaults are the schema's (the schema fills every key the DAG passes)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from cofitune.core.recipe import TrainConfig

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())


def schema_defaults(section: str) -> dict:
    return {k: v["default"] for k, v in SCHEMA["properties"][section]["properties"].items() if "default" in v}


def test_the_schemas_training_defaults_are_trainconfigs():
    fields = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    schema = schema_defaults("train")
    fields["betas"] = list(fields["betas"])  # YAML has no tuples
    assert set(schema) == set(fields) - {"seed"}  # the run's seed is the config's top-level `seed`
    assert {k: fields[k] for k in schema} == schema
    assert SCHEMA["properties"]["seed"]["default"] == fields["seed"]


def test_the_importance_commands_defaults_are_the_schemas():
    from cofitune.cli import build_parser
    from cofitune.pipeline.stage_configs import ImportanceStage, from_args

    args = build_parser().parse_args(["importance", "--model-dir", "m", "--data", "d", "--out", "o"])
    cfg = from_args(ImportanceStage, args)
    schema = schema_defaults("importance")
    assert {k: getattr(cfg, k) for k in schema} == schema
    train = schema_defaults("train")
    assert (cfg.max_length, cfg.template, cfg.seed) == (train["max_length"], train["template"],
                                                        SCHEMA["properties"]["seed"]["default"])
