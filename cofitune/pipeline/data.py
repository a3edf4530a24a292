"""Speciality data: validated JSONL reading and normalisation to ``{instruction, input, output}``.

Every line is checked; a bad line raises ``DataError("file:line: what is wrong")`` (the release
silently replaced corrupt lines with the previous sample, docs/method.md section 6, item 8).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path

from cofitune.pipeline.io import atomic_write_text, sha256_file

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
    for lineno, record in READERS.get(loader, iter_jsonl)(path, required):  # format per loader (end of file)
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


# ---- Chinese speciality tasks (config/paper.yaml): lawyer-llama, GSM8K / MGSM, DuReader -----------

import re  # noqa: E402  (kept with the section that uses it)


def iter_json_array(path: str | Path, required: dict[str, type]) -> Iterator[tuple[str, dict]]:
    """Yield ``("item N", record)`` for each item of a JSON array file (N counts from 1).

    An item that is a 1-element list holding an object (lawyer-llama's 1-turn conversations) is
    unwrapped. Errors read ``file:item N: what is wrong`` (``file: ...`` for whole-file problems).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(f"{path}:{err.lineno}: invalid JSON ({err.msg} at column {err.colno})") from err
    if not isinstance(items, list):
        raise DataError(f"{path}: expected a JSON array, got {type(items).__name__}")
    for number, item in enumerate(items, start=1):
        where = f"item {number}"
        if isinstance(item, list):
            if len(item) != 1:
                raise DataError(f"{path}:{where}: expected a 1-turn list [{{...}}], got {len(item)} turns")
            item = item[0]
        if not isinstance(item, dict):
            raise DataError(f"{path}:{where}: expected a JSON object, got {type(item).__name__}")
        _check_fields(path, where, item, required)
        yield where, item


def iter_tsv(path: str | Path, required: dict[str, type]) -> Iterator[tuple[int, dict]]:
    """Yield ``(line_number, record)`` for a header-less TSV whose columns are the ``required`` fields."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    fields = list(required)
    with path.open(encoding="utf-8", newline="") as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            values = line.split("\t")
            if len(values) != len(fields):
                raise DataError(f"{path}:{lineno}: expected {len(fields)} tab-separated fields "
                                f"({', '.join(fields)}), got {len(values)}")
            record = dict(zip(fields, values))
            for field in fields:
                if not record[field].strip():
                    raise DataError(f"{path}:{lineno}: field {field!r} is empty")
            yield lineno, record


def _check_fields(path: Path, where, record: dict, required: dict[str, type]) -> None:
    for field, kind in required.items():
        if field not in record:
            raise DataError(f"{path}:{where}: missing field {field!r}")
        if not isinstance(record[field], kind):
            raise DataError(f"{path}:{where}: field {field!r} must be {kind.__name__}, "
                            f"got {type(record[field]).__name__}")


def _iter_dureader(path: str | Path, required: dict[str, type]) -> Iterator[tuple[int, dict]]:
    """JSONL, skipping questions without any reference answer (DuReader has some; nothing to score)."""
    for lineno, record in iter_jsonl(path, required):
        if record["answers"]:
            yield lineno, record


def _non_empty_strings(value, path: Path, where, field: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise DataError(f"{path}:{where}: field {field!r} must be a non-empty list of non-empty strings")
    return value


def _lawyer_llama(record: dict, path: Path, where, instruction: str) -> dict:
    """lawyer-llama ``{instruction, input, output}``: the item's instruction (the exam question) is the input."""
    question = record["instruction"].strip()
    if record["input"].strip():
        question += "\n" + record["input"].strip()
    if not question or not record["output"].strip():
        raise DataError(f"{path}:{where}: empty 'instruction' or 'output'")
    return {"id": f"{path.name}:{where}", "instruction": instruction, "input": question,
            "output": record["output"].strip(), "references": [record["output"].strip()]}


_GSM8K_CALC = re.compile(r"<<[^<>]*>>")


def _gsm8k(record: dict, path: Path, lineno, instruction: str) -> dict:
    """GSM8K ``{question, answer}``: output = the solution without ``<<calc>>`` annotations;
    reference = the number after ``#### ``."""
    solution, sep, final = record["answer"].rpartition("#### ")
    final = final.strip()
    if not sep or not re.fullmatch(r"-?[\d,]*\.?\d+", final):
        raise DataError(f"{path}:{lineno}: field 'answer' must end with '#### <number>', "
                        f"got {record['answer'][-40:]!r}")
    output = _GSM8K_CALC.sub("", solution).rstrip() + f"\n#### {final}"
    return {"id": f"{path.name}:{lineno}", "instruction": instruction, "input": record["question"].strip(),
            "output": output.strip(), "references": [final.replace(",", "")]}


def _mgsm(record: dict, path: Path, lineno, instruction: str) -> dict:
    """MGSM TSV ``question<TAB>answer``: reference = the numeric answer (thousands commas removed)."""
    answer = record["answer"].strip().replace(",", "")
    if not re.fullmatch(r"-?\d*\.?\d+", answer):
        raise DataError(f"{path}:{lineno}: answer {record['answer']!r} is not a number")
    return {"id": f"{path.name}:{lineno}", "instruction": instruction, "input": record["question"].strip(),
            "output": answer, "references": [answer]}


def _dureader(record: dict, path: Path, lineno, instruction: str) -> dict:
    """DuReader: context = ``most_related_para`` of each selected document (all documents if none is selected)."""
    answers = _non_empty_strings(record["answers"], path, lineno, "answers")
    docs = record["documents"]
    if not docs or not all(isinstance(d, dict) and isinstance(d.get("paragraphs"), list) for d in docs):
        raise DataError(f"{path}:{lineno}: field 'documents' must be a non-empty list of objects with 'paragraphs'")
    chosen = [d for d in docs if d.get("is_selected")] or docs
    paragraphs = []
    for d in chosen:
        k = d.get("most_related_para", 0)
        if not isinstance(k, int) or not 0 <= k < len(d["paragraphs"]):
            raise DataError(f"{path}:{lineno}: most_related_para {k!r} out of range for a document with "
                            f"{len(d['paragraphs'])} paragraphs")
        paragraphs.append(str(d["paragraphs"][k]).strip())
    context = "\n".join(p for p in paragraphs if p)
    return {"id": str(record.get("question_id", f"{path.name}:{lineno}")), "instruction": instruction,
            "input": f"文档：{context}\n问题：{record['question'].strip()}", "output": answers[0].strip(),
            "references": [a.strip() for a in answers]}


def _is_tsv(path: str | Path) -> bool:
    return Path(path).suffix.lower() == ".tsv"


def _math_word_problem(record: dict, path: Path, lineno, instruction: str) -> dict:
    """GSM8K JSONL or MGSM TSV, by file suffix (a task sheet has one loader for its train and test files)."""
    return (_mgsm if _is_tsv(path) else _gsm8k)(record, path, lineno, instruction)


def _iter_math_word_problems(path: str | Path, required: dict[str, type]) -> Iterator[tuple[int, dict]]:
    return (iter_tsv if _is_tsv(path) else iter_jsonl)(path, required)


LOADERS.update({
    "lawyer_llama": ({"instruction": str, "input": str, "output": str}, _lawyer_llama),
    "gsm8k": ({"question": str, "answer": str}, _gsm8k),
    "mgsm": ({"question": str, "answer": str}, _mgsm),
    "math_word_problems": ({"question": str, "answer": str}, _math_word_problem),  # gsm8k (.jsonl) | mgsm (.tsv)
    "dureader": ({"question": str, "documents": list, "answers": list}, _dureader),
})

#: Raw-file reader per loader (default :func:`iter_jsonl`); each yields ``(line or "item N", record)``.
READERS: dict[str, Callable[[str | Path, dict[str, type]], Iterator[tuple[int | str, dict]]]] = {
    "lawyer_llama": iter_json_array,
    "mgsm": iter_tsv,
    "math_word_problems": _iter_math_word_problems,
    "dureader": _iter_dureader,
}
