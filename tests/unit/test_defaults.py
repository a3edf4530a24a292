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
    # template: the schema's `auto` is resolved per model by the sheet before a TrainConfig is built, which
    # takes a concrete format (alpaca, the release's, when built by hand)
    assert schema.pop("template") == "auto" and fields["template"] == "alpaca"
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
    assert (cfg.max_length, cfg.seed) == (train["max_length"], SCHEMA["properties"]["seed"]["default"])
    # by hand the release's Alpaca format (TrainConfig's); the DAG writes the model's resolved `auto`
    assert cfg.template == dataclasses.fields(TrainConfig)[[f.name for f in dataclasses.fields(TrainConfig)].index(
        "template")].default == "alpaca"
