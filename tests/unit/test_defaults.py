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

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "cmd" or getattr(a, "choices", None) and "importance" in a.choices)
    args = sub.choices["importance"].parse_args(["--model-dir", "m", "--data", "d", "--out", "o"])
    schema = schema_defaults("importance")
    assert {k: getattr(args, k) for k in schema} == schema
    train = schema_defaults("train")
    assert (args.max_length, args.template, args.seed) == (train["max_length"], train["template"],
                                                           SCHEMA["properties"]["seed"]["default"])
