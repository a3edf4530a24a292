"""Math word problems, GSM8K JSONL or MGSM TSV by file suffix: a task sheet entry has one loader for its train
(GSM8K) and test (MGSM) files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from cofitune.pipeline.loaders import gsm8k, mgsm
from cofitune.pipeline.records import iter_jsonl

REQUIRED = {"question": str, "answer": str}


def _tsv(path: str | Path) -> bool:
    return Path(path).suffix.lower() == ".tsv"


def read(path: str | Path, required: dict[str, type]) -> Iterator[tuple[int, dict]]:
    return (mgsm.read if _tsv(path) else iter_jsonl)(path, required)


def convert(record: dict, path: Path, where, instruction: str) -> dict:
    return (mgsm if _tsv(path) else gsm8k).convert(record, path, where, instruction)
