"""The typed artifacts between stages, read and written here, always through the one atomic writer
(:mod:`cofitune.pipeline.io`):

- **run config** (``results/config/{run,train}/...json``): one row's resolved configuration;
- **checkpoint index** (``<checkpoint>/trainable.json``): the saved tensors' names and shapes, the training
  summary and the run config it trained;
- **metrics** (``metrics.json``): the row's ``run`` record, every score with its items, and ``meta``;
- **search record** (a level's JSON, ``grid.json``, ``chosen.json``): the decision and its ``chosen`` node;
- **importance** (safetensors): raw and normalised unit importance.

A reader checks the fields its consumers rely on and names the file when one is missing, so a truncated or
foreign file fails where it is read, not three stages later. Torch is imported only by the importance helpers:
reporting reads the JSON artifacts without it.
"""

from __future__ import annotations

from pathlib import Path

from cofitune.core.region import Region
from cofitune.pipeline.io import atomic_path, read_json, write_json

RUN_CONFIG_FIELDS = ("model", "task", "method", "variant", "row", "kind", "params", "seed")
#: what training reads of a run config (its train view)
TRAIN_CONFIG_FIELDS = ("method", "kind", "params")
CHECKPOINT_INDEX = "trainable.json"
CHECKPOINT_WEIGHTS = "trainable.safetensors"
CHECKPOINT_INDEX_FIELDS = ("names", "n_saved", "n_trainable")
METRICS_FIELDS = ("run", "metrics", "meta")
SEARCH_RECORD_FIELDS = ("criterion", "visited", "chosen")


def _checked(obj, path: str | Path, fields: tuple[str, ...], what: str) -> dict:
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: a {what} is a JSON object, got {type(obj).__name__}")
    missing = [f for f in fields if f not in obj]
    if missing:
        raise ValueError(f"{path}: not a {what}: missing {missing}")
    return obj


def read_run_config(path: str | Path, fields: tuple[str, ...] = RUN_CONFIG_FIELDS) -> dict:
    """A row's resolved run (or train) config, with the ``fields`` its reader relies on."""
    return _checked(read_json(path), path, fields, "run config")


def run_record(cfg: dict) -> dict:
    """The ``run`` block of ``metrics.json``: the row's identity and parameters, from its run config (a
    ``from_search`` row's config is resolved: its params name the region it trained)."""
    return {k: cfg[k] for k in ("model", "task", "method", "variant", "row", "params", "seed")}


def write_metrics(path: str | Path, metrics: dict) -> None:
    write_json(path, _checked(metrics, path, METRICS_FIELDS, "metrics record"))


def read_metrics(path: str | Path) -> dict:
    """A row's ``metrics.json``."""
    m = _checked(read_json(path), path, METRICS_FIELDS, "metrics record")
    _checked(m["run"], f"{path}: run", ("model", "task", "method", "variant", "params"), "run record")
    return m


def write_search_record(path: str | Path, record: dict) -> None:
    _checked(record, path, SEARCH_RECORD_FIELDS, "search record")
    write_json(path, record)


def read_search_record(path: str | Path) -> dict:
    """A tree-search decision (one level, the grid, or chosen.json) with its ``chosen`` node."""
    record = _checked(read_json(path), path, SEARCH_RECORD_FIELDS, "search record")
    Region.from_record(record["chosen"], where=f"{path}: chosen")
    return record


def write_checkpoint_index(ckpt_dir: str | Path, index: dict) -> None:
    write_json(Path(ckpt_dir) / CHECKPOINT_INDEX, _checked(index, ckpt_dir, CHECKPOINT_INDEX_FIELDS,
                                                           "checkpoint index"))


def read_checkpoint_index(ckpt_dir: str | Path) -> dict:
    """A checkpoint folder's ``trainable.json``."""
    path = Path(ckpt_dir) / CHECKPOINT_INDEX
    if not path.is_file():
        raise FileNotFoundError(f"{ckpt_dir}: not a checkpoint folder (no {CHECKPOINT_INDEX})")
    return _checked(read_json(path), path, CHECKPOINT_INDEX_FIELDS, "checkpoint index")


def save_importance(path: str | Path, raw: dict, meta: dict[str, str]) -> None:
    """Write raw and normalised importance to one safetensors file."""
    from safetensors.torch import save_file

    from cofitune.core.importance import normalise

    tensors = {f"raw.{k}": v.detach().contiguous() for k, v in raw.items()}
    tensors |= {k: normalise(v.detach()).contiguous() for k, v in raw.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={k: str(v) for k, v in meta.items()})


def load_importance(paths: list[str | Path], config) -> dict:
    """Load normalised importance from an explicit list of files, check shapes, and max-merge."""
    from safetensors.torch import load_file

    from cofitune.core.importance import max_merge, unit_shapes

    expected = unit_shapes(config)
    sources = []
    for path in paths:
        if not Path(path).is_file():
            raise FileNotFoundError(f"importance file not found: {path}")
        tensors = load_file(str(path))
        for key, shape in expected.items():
            if key not in tensors:
                raise ValueError(f"{path}: missing importance tensor {key!r}")
            if tuple(tensors[key].shape) != shape:
                raise ValueError(
                    f"{path}: importance {key!r} has shape {tuple(tensors[key].shape)}, "
                    f"model expects {shape}"
                )
        sources.append({k: tensors[k] for k in expected})
    return max_merge(sources)
