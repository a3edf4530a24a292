"""lawyer-llama JSON array of 1-turn conversations ``{instruction, input, output}``: the item's instruction
(the exam question) is the input."""

from __future__ import annotations

from pathlib import Path

from cofitune.pipeline.records import DataError, iter_json_array

REQUIRED = {"instruction": str, "input": str, "output": str}
read = iter_json_array


def convert(record: dict, path: Path, where, instruction: str) -> dict:
    question = record["instruction"].strip()
    if record["input"].strip():
        question += "\n" + record["input"].strip()
    if not question or not record["output"].strip():
        raise DataError(f"{path}:{where}: empty 'instruction' or 'output'")
    return {"id": f"{path.name}:{where}", "instruction": instruction, "input": question,
            "output": record["output"].strip(), "references": [record["output"].strip()]}
