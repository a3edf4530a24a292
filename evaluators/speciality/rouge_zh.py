"""Character-level ROUGE-L F for Chinese generation (law: lawyer-llama, CAG: DuReader).

Text is NFKC-normalised and lower-cased; every non-whitespace character is one token (Chinese has
no spaces, so characters avoid depending on a word segmenter). With L = the length of the longest
common subsequence of prediction and reference tokens, P = L / len(prediction), R = L / len(reference)
and ROUGE-L F = 2PR / (P + R) (beta = 1; 0 when L = 0 or either side is empty). The item score is the
maximum over the references, on a 0-100 scale.
"""

from __future__ import annotations

import unicodedata

NAME = "rouge_zh"
PRIMARY = "rouge_l"
HIGHER_IS_BETTER = {"rouge_l": True}


def tokens(text: str) -> list[str]:
    """NFKC + lower case, one token per non-whitespace character."""
    return [ch for ch in unicodedata.normalize("NFKC", text).lower() if not ch.isspace()]


def extract(text: str) -> str:
    """The whole response, stripped (law explanations and DuReader answers are free text)."""
    return text.strip()


def lcs_length(a: list[str], b: list[str]) -> int:
    """Length of the longest common subsequence (O(len(a) * len(b)) time, O(len(b)) memory)."""
    if not a or not b:
        return 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, start=1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


def rouge_l_f(prediction: str, reference: str) -> float:
    """ROUGE-L F (beta = 1) on characters, in [0, 1]."""
    pred, ref = tokens(prediction), tokens(reference)
    lcs = lcs_length(pred, ref)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(pred), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)


def score(prediction: str, references: list[str]) -> dict[str, float]:
    """Per-item score on a 0-100 scale (max over references)."""
    if isinstance(references, str):  # a bare string is one reference, not a list of characters
        references = [references]
    return {"rouge_l": 100.0 * max((rouge_l_f(prediction, r) for r in references), default=0.0)}
