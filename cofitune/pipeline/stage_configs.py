"""Each stage's configuration as a typed, frozen dataclass.

A stage rule passes its job exactly one config file (``results/config/<stage>/<key>.json``, written by
:func:`cofitune.pipeline.config.stage_config`) plus its input and output paths; the stage reads that file
into its dataclass here (:meth:`StageConfig.read`), which rejects unknown keys, fills a key the file leaves out
with the schema's default and checks every value's type, naming the file and the key. For hand use the CLI
offers one flag per field (:func:`add_flags`), and the flags build the same dataclass (:func:`from_args`).
"""

from __future__ import annotations

import argparse
import types
import typing
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import ClassVar

from cofitune.pipeline.io import read_json
from cofitune.pipeline.schema import schema_default


def _type_ok(value, hint) -> bool:
    """Whether ``value`` fits a field's annotation (int, float, bool, str, dict, list and their ``| None``)."""
    if isinstance(hint, types.UnionType):
        return any(_type_ok(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    origin = typing.get_origin(hint) or hint
    if origin is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if origin is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, origin)


@dataclass(frozen=True)
class StageConfig:
    """Base of the stage configs: construction from a mapping with the schema's defaults."""

    #: field -> the schema keys of its default (a field neither here nor defaulted in the class is required)
    DEFAULTS: ClassVar[dict[str, tuple[str, ...]]] = {}

    @classmethod
    def from_dict(cls, values: Mapping, where: str):
        """The stage config of ``values``; ``where`` (a file, the command line) prefixes every error.

        Raises:
            ValueError: an unknown key, a missing required key or a value of the wrong type, named.
        """
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {unknown} for the {cls.__name__}; it takes {names}")
        hints = typing.get_type_hints(cls)
        out = {}
        for f in fields(cls):
            if f.name in values:
                out[f.name] = values[f.name]
            elif f.name in cls.DEFAULTS:
                out[f.name] = schema_default(*cls.DEFAULTS[f.name])
            elif f.default is MISSING:
                raise ValueError(f"{where}: missing key {f.name!r} of the {cls.__name__}")
            else:
                out[f.name] = f.default
            if not _type_ok(out[f.name], hints[f.name]):
                raise ValueError(f"{where}: key {f.name!r} = {out[f.name]!r} is not of type {hints[f.name]}")
        return cls(**out)

    @classmethod
    def read(cls, path: str | Path):
        """The stage config in the JSON file ``path``."""
        return cls.from_dict(read_json(path), where=str(path))

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class DataStage(StageConfig):
    """``prepare-data``: one task's sheet entry (config ``task_overrides`` applied, paths resolved), the split
    sizes and the sampling seed."""

    task: str
    spec: dict
    n_train: int
    n_test: int
    seed: int
    DEFAULTS: ClassVar = {"n_train": ("data", "n_train"), "n_test": ("data", "n_test"), "seed": ("seed",)}


@dataclass(frozen=True)
class ImportanceStage(StageConfig):
    """``importance``: config key ``importance`` (``n_examples`` null: every training example), the training
    format it tokenises with (``train.max_length``, and ``train.template`` as resolved for the model) and the seed."""

    n_examples: int | None
    batch_size: int
    dropout: float
    kl_weight: float
    abs_grad: bool
    seed: int
    max_length: int
    template: str = "alpaca"  # the DAG writes the model's resolved format; by hand, the release's
    model: str | None = None
    task: str | None = None
    DEFAULTS: ClassVar = {**{k: ("importance", k) for k in ("n_examples", "batch_size", "dropout", "kl_weight",
                                                          "abs_grad")},
                          "seed": ("seed",), "max_length": ("train", "max_length")}

    def __post_init__(self):
        from cofitune.core.prompt import TEMPLATES

        if self.template not in TEMPLATES:  # `auto` is resolved by the model sheet when the DAG writes the file
            raise ValueError(f"importance stage: template {self.template!r} is not one of {TEMPLATES}")


@dataclass(frozen=True)
class ProbeStage(StageConfig):
    """``prepare-probe``: config key ``evaluation.drift`` (its generation settings), and whether the model's own
    format is its chat template (``chat``: each general prompt is then a user turn of it)."""

    max_new_tokens: int
    max_prompt_tokens: int
    batch_size: int
    chat: bool = False
    model: str | None = None
    DEFAULTS: ClassVar = {k: ("evaluation", "drift", k) for k in ("max_new_tokens", "max_prompt_tokens", "batch_size")}


@dataclass(frozen=True)
class TaskProbeStage(StageConfig):
    """``prepare-task-probe``: the task drift probe's size (``evaluation.drift.task_prompts``), the model's format
    and the drift probe's generation settings. Prompts are kept whole: the task's context is what it is about."""

    n_prompts: int
    max_new_tokens: int
    batch_size: int
    template: str = "alpaca"
    model: str | None = None
    task: str | None = None
    DEFAULTS: ClassVar = {"n_prompts": ("evaluation", "drift", "task_prompts"),
                          **{k: ("evaluation", "drift", k) for k in ("max_new_tokens", "batch_size")}}


@dataclass(frozen=True)
class SearchStage(StageConfig):
    """``search-level`` / ``search-grid``: config key ``search`` and Uni's weights (config key ``uni``)."""

    criterion: str
    min_vers_pct: float | None
    order: str
    uni: dict
    mode: str
    enabled: bool = True
    model: str | None = None
    task: str | None = None
    DEFAULTS: ClassVar = {**{k: ("search", k) for k in ("criterion", "min_vers_pct", "order", "mode")},
                          "uni": ("uni",)}


@dataclass(frozen=True)
class TablesStage(StageConfig):
    """``aggregate``: Uni's weights and the reference row of each compared method (config keys ``uni``,
    ``references``)."""

    uni: dict
    references: dict
    DEFAULTS: ClassVar = {"uni": ("uni",), "references": ("references",)}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_flags(parser: argparse.ArgumentParser, cls: type[StageConfig]) -> None:
    """``--config FILE`` and one flag per field of ``cls`` (for hand use; a flag overrides the file's value).
    Scalars parse as YAML (``--abs-grad true``, ``--n-examples null``, ``--uni '{spec: 0.7, vers: 0.3}'``)."""
    parser.add_argument("--config", default=None, help=f"the stage's resolved config file ({cls.__name__})")
    for f in fields(cls):
        default = "required" if f.name not in cls.DEFAULTS and f.default is MISSING else (
            f"schema default at {'.'.join(cls.DEFAULTS[f.name])}" if f.name in cls.DEFAULTS else f"{f.default!r}")
        parser.add_argument(_flag(f.name), dest=f"stage_{f.name}", default=None, metavar="VALUE",
                            help=f"{f.name} (without --config: {default})")


def from_args(cls: type[StageConfig], args: argparse.Namespace, **fallback):
    """The stage config of a command line: ``--config``'s file (if given) with the flags given over it; a
    ``fallback`` value fills a key that neither gives (e.g. a task's sheet entry, for hand use)."""
    import yaml

    values = {**fallback, **(read_json(args.config) if args.config else {})}
    given = {f.name: getattr(args, f"stage_{f.name}") for f in fields(cls)}
    values |= {k: yaml.safe_load(v) for k, v in given.items() if v is not None}
    where = args.config if args.config and not any(v is not None for v in given.values()) else "the command line"
    return cls.from_dict(values, where=where)
