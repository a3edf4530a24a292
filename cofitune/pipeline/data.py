"""Speciality data: a task's raw files, read by its loader (:mod:`cofitune.pipeline.loaders`), normalised to
``{instruction, input, output, references}`` and sampled into ``train.jsonl`` / ``test.jsonl``.

Every record is checked; a bad one raises ``DataError("file:line: what is wrong")``
(:mod:`cofitune.pipeline.records`).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from cofitune.pipeline.io import atomic_write_text, sha256_file
from cofitune.pipeline.loaders import get_loader
from cofitune.pipeline.records import DataError, iter_jsonl

EXAMPLE_FIELDS = {"instruction": str, "input": str, "output": str}


def read_examples(path: str | Path) -> list[dict]:
    """Read a normalised split written by :func:`prepare_task`."""
    return [rec for _, rec in iter_jsonl(path, EXAMPLE_FIELDS)]


def load_split(path: str | Path, loader: str, instruction: str, max_input_chars: int | None) -> list[dict]:
    """Load and normalise every record of a raw task file; optionally drop over-long inputs."""
    module = get_loader(loader)
    read = getattr(module, "read", iter_jsonl)
    out = []
    for where, record in read(path, module.REQUIRED):
        example = module.convert(record, Path(path), where, instruction)
        if max_input_chars is None or len(example["input"]) <= max_input_chars:
            out.append(example)
    return out


def prepare_task(task: dict, out_dir: str | Path, *, n_train: int, n_test: int, seed: int) -> dict:
    """Normalise a task's raw files into ``train.jsonl`` / ``test.jsonl`` with a fixed-seed sample.

    Args:
        task: a task-sheet entry (``loader``, ``train``, ``test``, ``instruction``, ``max_input_chars``).
        out_dir: folder receiving ``train.jsonl``, ``test.jsonl`` and ``meta.json``.

    Returns:
        The metadata written to ``meta.json`` (counts, sha256 of inputs and outputs, seed).
    """
    out_dir = Path(out_dir)
    meta = {"seed": seed, "loader": task["loader"], "splits": {}}
    rendered = {}
    for split, n in (("train", n_train), ("test", n_test)):
        examples = load_split(task[split], task["loader"], task["instruction"], task.get("max_input_chars"))
        if len(examples) < n:
            raise DataError(f"{task[split]}: {split} needs {n} examples, only {len(examples)} usable")
        sample = random.Random(f"{seed}:{split}").sample(examples, n)
        rendered[split] = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in sample)
        meta["splits"][split] = {
            "source": str(task[split]), "source_sha256": sha256_file(task[split]),
            "usable": len(examples), "n": n,
        }
    for split, text in rendered.items():  # write only after every split validated: no partial output
        atomic_write_text(out_dir / f"{split}.jsonl", text)
        meta["splits"][split]["sha256"] = sha256_file(out_dir / f"{split}.jsonl")
    atomic_write_text(out_dir / "meta.json", json.dumps(meta, indent=2))
    return meta
