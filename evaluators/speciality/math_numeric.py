"""Numeric answer accuracy for math word problems (GSM8K / MGSM): the last number in the response.

``extract`` NFKC-normalises the response (full-width digits such as "１８" become "18"), drops
thousands separators and returns the last number (integer or decimal) as a string, "" if there is
none; a minus sign counts only when no digit precedes it ("48-24" -> "24", "答案是-5" -> "-5").
``score`` is 100 when that number equals a reference numerically (``|pred - ref| <= 1e-6``; "18",
"18.0" and "18.00" all match 18), else 0.
"""

from __future__ import annotations

import re
import unicodedata

NAME = "math_numeric"
PRIMARY = "accuracy"
HIGHER_IS_BETTER = {"accuracy": True}
_NUMBER = re.compile(r"(?:(?<![0-9])-)?\d+(?:,\d{3})*(?:\.\d+)?")  # "48-24" -> 48, 24 (no "-24")
_TOLERANCE = 1e-6


def _to_float(text: str) -> float | None:
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def extract(text: str) -> str:
    """The last number in the response (thousands commas removed), or "" when there is none."""
    numbers = _NUMBER.findall(unicodedata.normalize("NFKC", text))
    return numbers[-1].replace(",", "") if numbers else ""


def score(prediction: str, references: list[str]) -> dict[str, float]:
    """Per-item accuracy on a 0-100 scale (max over references)."""
    if isinstance(references, str):  # a bare string is one reference, not a list of characters
        references = [references]
    pred = _to_float(prediction) if prediction else None
    if pred is None:
        return {"accuracy": 0.0}
    refs = [r for r in (_to_float(str(ref).strip()) for ref in references) if r is not None]
    return {"accuracy": 100.0 * float(any(abs(pred - r) <= _TOLERANCE for r in refs))}
