"""Speciality data: validated JSONL reading and normalisation to ``{instruction, input, output}``.

Every line is checked; a bad line raises ``DataError("file:line: what is wrong")`` (the release
silently replaced corrupt lines with the previous sample, method.md section 6.8).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path

from cofitune.io import atomic_write_text, sha256_file

EXAMPLE_FIELDS = {"instruction": str, "input": str, "output": str}


class DataError(ValueError):
    """A data file is malformed; the message starts with ``file:line:``."""


def iter_jsonl(path: str | Path, required: dict[str, type]) -> Iterator[tuple[int, dict]]:
    """Yield ``(line_number, record)`` for each non-empty line, validating required field types."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}:{lineno}: invalid JSON ({err.msg} at column {err.colno})") from err
            if not isinstance(record, dict):
                raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(record).__name__}")
            for field, kind in required.items():
                if field not in record:
                    raise DataError(f"{path}:{lineno}: missing field {field!r}")
                if not isinstance(record[field], kind):
                    raise DataError(
                        f"{path}:{lineno}: field {field!r} must be {kind.__name__}, "
                        f"got {type(record[field]).__name__}"
                    )
            yield lineno, record


def read_examples(path: str | Path) -> list[dict]:
    """Read a normalised split written by :func:`prepare_task`."""
    return [rec for _, rec in iter_jsonl(path, EXAMPLE_FIELDS)]


# ---- task loaders: raw record -> normalised example (one entry per task format) -------------------

def _squad(record: dict, path: Path, lineno: int, instruction: str) -> dict:
    answers = record["answers"]
    if not answers or not all(isinstance(a, str) and a.strip() for a in answers):
        raise DataError(f"{path}:{lineno}: field 'answers' must be a non-empty list of non-empty strings")
    return {
        "id": record.get("id", f"{path.name}:{lineno}"),
        "instruction": instruction,
        "input": f"Context: {record['context']}\nQuestion: {record['question']}",
        "output": answers[0],
        "references": answers,
    }


LOADERS: dict[str, tuple[dict[str, type], Callable[..., dict]]] = {
    "squad": ({"context": str, "question": str, "answers": list}, _squad),
}


def load_split(path: str | Path, loader: str, instruction: str, max_input_chars: int | None) -> list[dict]:
    """Load and normalise every line of a raw task file; optionally drop over-long inputs."""
    if loader not in LOADERS:
        raise ValueError(f"unknown task loader {loader!r}; expected one of {sorted(LOADERS)}")
    required, convert = LOADERS[loader]
    out = []
    for lineno, record in iter_jsonl(path, required):
        example = convert(record, Path(path), lineno, instruction)
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
