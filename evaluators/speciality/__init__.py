"""Speciality scorers, one file per task metric: ``extract`` -> ``score`` -> aggregate.

Each module defines ``NAME``, ``PRIMARY`` (the metric reported as Spec), ``HIGHER_IS_BETTER``,
``extract(text) -> str`` and ``score(prediction, references) -> dict[str, float]`` (0-100 per item).
"""

from __future__ import annotations

import importlib
from types import ModuleType


def get_scorer(name: str) -> ModuleType:
    try:
        module = importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as err:
        if err.name != f"{__name__}.{name}":
            raise
        raise ValueError(f"unknown speciality evaluator {name!r} (no evaluators/speciality/{name}.py)") from err
    for attr in ("PRIMARY", "extract", "score"):
        if not hasattr(module, attr):
            raise TypeError(f"evaluators/speciality/{name}.py lacks {attr!r}")
    return module
