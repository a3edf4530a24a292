"""The drift probe's fixed prompts, read from the committed versatility subsets (no torch: the DAG reads
:data:`PROBE_SOURCES` at parse time)."""

from __future__ import annotations

import json
from pathlib import Path

#: subset file -> number of items taken from its end. The evaluated items are the first
#: ``limit`` of each file, so the probe takes the last ones; IFEval's 60 instructions are all taken.
PROBE_SOURCES = {
    "mmlu": 40, "arc_easy": 40, "hellaswag": 40, "piqa": 40, "ifeval": 60,
}


def _format(source: str, doc: dict) -> str:
    if source == "mmlu":
        letters = "ABCD"
        options = "\n".join(f"{letters[k]}. {c}" for k, c in enumerate(doc["choices"]))
        return f"{doc['question'].strip()}\n{options}\nAnswer:"
    if source == "arc_easy":
        return f"Question: {doc['question']}\nAnswer:"
    if source == "hellaswag":
        return doc["ctx"]
    if source == "piqa":
        return f"Question: {doc['goal']}\nAnswer:"
    if source == "ifeval":
        return doc["prompt"]
    raise ValueError(f"unknown probe source {source!r}; known: {sorted(PROBE_SOURCES)}")


def probe_prompts(data_dir: str | Path) -> list[dict]:
    """The fixed probe prompts (220 by default) from the committed versatility subsets in ``data_dir``."""
    out = []
    for source, count in PROBE_SOURCES.items():
        path = Path(data_dir) / f"{source}.jsonl"
        docs = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if len(docs) < count:
            raise ValueError(f"{path}: the probe takes {count} items, the file has {len(docs)}")
        out += [{"source": source, "prompt": _format(source, d)} for d in docs[len(docs) - count:]]
    return out
