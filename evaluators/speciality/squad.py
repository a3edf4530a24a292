"""SQuAD v1.1 scoring: exact match and token F1 with the official normalisation, max over references."""

from __future__ import annotations

import re
import string
from collections import Counter

NAME = "squad"
PRIMARY = "f1"
HIGHER_IS_BETTER = {"exact_match": True, "f1": True}
_PUNCT = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower case, drop punctuation and articles (a, an, the), collapse whitespace (official script)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def extract(text: str) -> str:
    """The answer is the first non-empty line of the response."""
    for line in text.strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


def _f1(prediction: str, reference: str) -> float:
    pred, ref = normalize_answer(prediction).split(), normalize_answer(reference).split()
    common = Counter(pred) & Counter(ref)
    same = sum(common.values())
    if same == 0:  # official v1.1 script: no shared token -> 0 (also when both are empty)
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def score(prediction: str, references: list[str]) -> dict[str, float]:
    """Per-item scores on a 0-100 scale."""
    em = max(float(normalize_answer(prediction) == normalize_answer(r)) for r in references)
    f1 = max(_f1(prediction, r) for r in references)
    return {"exact_match": 100.0 * em, "f1": 100.0 * f1}
