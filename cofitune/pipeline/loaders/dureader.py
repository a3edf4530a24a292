"""DuReader JSONL ``{question, documents, answers}``: the context is the ``most_related_para`` of each
selected document (every document when none is selected); questions without a reference answer are skipped
(nothing to score)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

from cofitune.pipeline.records import DataError, iter_jsonl, non_empty_strings

REQUIRED = {"question": str, "documents": list, "answers": list}


def read(path: str | Path, required: dict[str, type]) -> Iterator[tuple[int, dict]]:
    for lineno, record in iter_jsonl(path, required):
        if record["answers"]:
            yield lineno, record


def convert(record: dict, path: Path, where, instruction: str) -> dict:
    answers = non_empty_strings(record["answers"], path, where, "answers")
    docs = record["documents"]
    if not docs or not all(isinstance(d, dict) and isinstance(d.get("paragraphs"), list) for d in docs):
        raise DataError(f"{path}:{where}: field 'documents' must be a non-empty list of objects with 'paragraphs'")
    chosen = [d for d in docs if d.get("is_selected")] or docs
    paragraphs = []
    for d in chosen:
        k = d.get("most_related_para", 0)
        if not isinstance(k, int) or not 0 <= k < len(d["paragraphs"]):
            raise DataError(f"{path}:{where}: most_related_para {k!r} out of range for a document with "
                            f"{len(d['paragraphs'])} paragraphs")
        paragraphs.append(str(d["paragraphs"][k]).strip())
    context = "\n".join(p for p in paragraphs if p)
    return {"id": str(record.get("question_id", f"{path.name}:{where}")), "instruction": instruction,
            "input": f"文档：{context}\n问题：{record['question'].strip()}", "output": answers[0].strip(),
            "references": [a.strip() for a in answers],
            # questions drawn on one document are not independent: the bootstrap resamples documents
            "cluster": hashlib.sha1(str(chosen[0].get("title", context)).encode("utf-8")).hexdigest()[:12]}
