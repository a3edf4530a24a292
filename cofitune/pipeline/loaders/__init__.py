"""Speciality task loaders, one file per raw format: ``<name>.py`` turns one raw record into a normalised
example ``{id, instruction, input, output, references}``. A task sheet entry names its loader
(``loader: <name>``); a new format is a new file here, found by its name, and nothing else changes.

A loader module defines:

* ``REQUIRED``: field -> type, checked on every record (a bad record is a ``DataError`` naming file and line);
* ``convert(record, path, where, instruction) -> dict``: the normalised example (``where``: the line number,
  or ``item N`` in a JSON array);
* optionally ``read(path, required)``: the raw file reader (default
  :func:`cofitune.pipeline.records.iter_jsonl`; also there: JSON arrays, header-less TSV).
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def loader_names() -> list[str]:
    """Every loader of this package, by file name."""
    return sorted(info.name for info in pkgutil.iter_modules(__path__))


def get_loader(name: str) -> ModuleType:
    """The loader module ``name``, checked for ``REQUIRED`` and ``convert``."""
    if name not in loader_names():
        raise ValueError(f"unknown task loader {name!r}; expected one of {loader_names()} "
                         f"(a new format is one file: cofitune/pipeline/loaders/{name}.py)")
    module = importlib.import_module(f"{__name__}.{name}")
    for attr in ("REQUIRED", "convert"):
        if not hasattr(module, attr):
            raise TypeError(f"cofitune/pipeline/loaders/{name}.py lacks {attr!r}")
    return module
