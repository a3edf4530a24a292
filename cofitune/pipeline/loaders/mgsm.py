"""MGSM header-less TSV ``question<TAB>answer``: the reference is the numeric answer (thousands commas
removed)."""

from __future__ import annotations

import re
from pathlib import Path

from cofitune.pipeline.records import DataError, iter_tsv

REQUIRED = {"question": str, "answer": str}
read = iter_tsv


def convert(record: dict, path: Path, where, instruction: str) -> dict:
    answer = record["answer"].strip().replace(",", "")
    if not re.fullmatch(r"-?\d*\.?\d+", answer):
        raise DataError(f"{path}:{where}: answer {record['answer']!r} is not a number")
    return {"id": f"{path.name}:{where}", "instruction": instruction, "input": record["question"].strip(),
            "output": answer, "references": [answer]}
