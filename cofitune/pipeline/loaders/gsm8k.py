"""GSM8K JSONL ``{question, answer}``: the output is the solution without its ``<<calc>>`` annotations, the
reference the number after ``#### ``."""

from __future__ import annotations

import re
from pathlib import Path

from cofitune.pipeline.records import DataError

REQUIRED = {"question": str, "answer": str}
_CALC = re.compile(r"<<[^<>]*>>")


def convert(record: dict, path: Path, where, instruction: str) -> dict:
    solution, sep, final = record["answer"].rpartition("#### ")
    final = final.strip()
    if not sep or not re.fullmatch(r"-?[\d,]*\.?\d+", final):
        raise DataError(f"{path}:{where}: field 'answer' must end with '#### <number>', "
                        f"got {record['answer'][-40:]!r}")
    output = _CALC.sub("", solution).rstrip() + f"\n#### {final}"
    return {"id": f"{path.name}:{where}", "instruction": instruction, "input": record["question"].strip(),
            "output": output.strip(), "references": [final.replace(",", "")]}
