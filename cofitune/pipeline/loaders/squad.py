"""SQuAD v1.1 JSONL ``{context, question, answers}``: the first answer is the training target, all are
references. Questions on one passage share its ``cluster`` (a digest of the passage): their scores are not
independent, so the bootstrap resamples passages."""

from __future__ import annotations

import hashlib
from pathlib import Path

from cofitune.pipeline.records import non_empty_strings

REQUIRED = {"context": str, "question": str, "answers": list}


def convert(record: dict, path: Path, where, instruction: str) -> dict:
    answers = non_empty_strings(record["answers"], path, where, "answers")
    return {
        "id": record.get("id", f"{path.name}:{where}"),
        "instruction": instruction,
        "input": f"Context: {record['context']}\nQuestion: {record['question']}",
        "output": answers[0],
        "references": answers,
        "cluster": hashlib.sha1(record["context"].encode("utf-8")).hexdigest()[:12],
    }
