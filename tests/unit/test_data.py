"""Speciality data: normalisation, fixed-seed sampling, and clear errors on bad lines."""

import json

import pytest

from cofitune.pipeline.data import load_split, prepare_task, read_examples
from cofitune.pipeline.records import DataError, iter_jsonl

SQUAD = {"context": "Paris is the capital of France.", "question": "What is the capital of France?",
         "answers": ["Paris", "Paris"]}


def _write(path, lines):
    path.write_text("".join((ln if isinstance(ln, str) else json.dumps(ln)) + "\n" for ln in lines))
    return path


def _task(tmp_path, train_lines, test_lines=None):
    return {"loader": "squad", "instruction": "Answer.", "max_input_chars": None,
            "train": str(_write(tmp_path / "train.raw.jsonl", train_lines)),
            "test": str(_write(tmp_path / "test.raw.jsonl", test_lines or [SQUAD] * 3))}


def test_squad_normalisation(tmp_path):
    (ex,) = load_split(_write(tmp_path / "a.jsonl", [SQUAD]), "squad", "Answer.", None)
    assert ex["instruction"] == "Answer."
    assert ex["input"] == "Context: Paris is the capital of France.\nQuestion: What is the capital of France?"
    assert ex["output"] == "Paris" and ex["references"] == ["Paris", "Paris"]


def test_prepare_is_seeded_and_writes_meta(tmp_path):
    rows = [dict(SQUAD, question=f"q{i}?") for i in range(20)]
    task = _task(tmp_path, rows)
    a = prepare_task(task, tmp_path / "a", n_train=5, n_test=2, seed=1)
    b = prepare_task(task, tmp_path / "b", n_train=5, n_test=2, seed=1)
    prepare_task(task, tmp_path / "c", n_train=5, n_test=2, seed=2)
    assert (tmp_path / "a/train.jsonl").read_text() == (tmp_path / "b/train.jsonl").read_text()
    assert (tmp_path / "a/train.jsonl").read_text() != (tmp_path / "c/train.jsonl").read_text()
    assert a["splits"]["train"]["n"] == 5 and a["splits"]["train"]["sha256"] == b["splits"]["train"]["sha256"]
    assert len(read_examples(tmp_path / "a/train.jsonl")) == 5


def test_max_input_chars_drops_long_examples(tmp_path):
    rows = [SQUAD, dict(SQUAD, context="x" * 500)]
    assert len(load_split(_write(tmp_path / "a.jsonl", rows), "squad", "A.", 100)) == 1


@pytest.mark.parametrize("bad_line,message", [
    ('{"context": "c", "question": "q", "answers": ["a"]', r"train\.raw\.jsonl:3: invalid JSON"),
    ('{"context": "c", "answers": ["a"]}', r"train\.raw\.jsonl:3: missing field 'question'"),
    ('{"context": "c", "question": 7, "answers": ["a"]}', r"train\.raw\.jsonl:3: field 'question' must be str, got int"),
    ('{"context": "c", "question": "q", "answers": []}', r"train\.raw\.jsonl:3: field 'answers' must be a non-empty list"),
    ('["not", "an", "object"]', r"train\.raw\.jsonl:3: expected a JSON object"),
])
def test_bad_line_names_file_and_line_and_leaves_no_output(tmp_path, bad_line, message):
    task = _task(tmp_path, [SQUAD, SQUAD, bad_line, SQUAD])
    out = tmp_path / "out"
    with pytest.raises(DataError, match=message):
        prepare_task(task, out, n_train=1, n_test=1, seed=0)
    assert not out.exists() or not any(out.iterdir())


def test_bad_test_split_leaves_no_train_output(tmp_path):
    task = _task(tmp_path, [SQUAD] * 3, test_lines=[SQUAD, "{oops"])
    out = tmp_path / "out"
    with pytest.raises(DataError, match=r"test\.raw\.jsonl:2"):
        prepare_task(task, out, n_train=1, n_test=1, seed=0)
    assert not out.exists() or not any(out.iterdir())


def test_too_few_examples(tmp_path):
    with pytest.raises(DataError, match="needs 10 examples, only 3 usable"):
        prepare_task(_task(tmp_path, [SQUAD] * 3), tmp_path / "o", n_train=10, n_test=1, seed=0)


def test_normalised_split_validation(tmp_path):
    path = _write(tmp_path / "train.jsonl", [{"instruction": "i", "input": "x"}])
    with pytest.raises(DataError, match=r"train\.jsonl:1: missing field 'output'"):
        list(iter_jsonl(path, {"instruction": str, "input": str, "output": str}))


def test_missing_file():
    with pytest.raises(DataError, match="file not found"):
        read_examples("/nonexistent/train.jsonl")
