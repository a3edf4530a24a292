"""SQuAD v1.1 metric: golden values of the official normalisation, EM and token F1."""

import pytest

from evaluators.speciality import get_scorer
from evaluators.speciality.squad import extract, normalize_answer, score


@pytest.mark.parametrize("text,expected", [
    ("The Denver Broncos!", "denver broncos"),
    ("  an   Apple, a day ", "apple day"),
    ("Theater", "theater"),  # articles only as whole words
])
def test_normalize(text, expected):
    assert normalize_answer(text) == expected


@pytest.mark.parametrize("pred,refs,em,f1", [
    ("Denver Broncos", ["Denver Broncos", "Broncos"], 100.0, 100.0),
    ("the Broncos", ["Denver Broncos"], 0.0, 100 * 2 * (1 * 1.0 * 0.5) / (1.0 + 0.5)),  # P=1, R=1/2
    ("Carolina Panthers won", ["Denver Broncos"], 0.0, 0.0),
    ("Santa Clara, California", ["Santa Clara", "Levi's Stadium"], 0.0, 100 * 0.8),  # P=2/3, R=1
    ("", ["a"], 100.0, 0.0),  # both normalise to empty: EM 1, F1 0 (official v1.1 script)
    # several references, the best one not first: the score is the max over references (official script)
    # ref 1: no shared token -> 0; ref 2 "broncos": P=1/2, R=1 -> 2/3; ref 3 "denver broncos team": P=1, R=2/3 -> 0.8
    ("Denver Broncos", ["Carolina Panthers", "the Broncos", "Denver Broncos team"], 0.0, 100 * 0.8),
    # ref 1 and ref 3: 0; ref 2 "santa clara california": P=1, R=2/3 -> 0.8 (the best is in the middle)
    ("Santa Clara", ["Levi's Stadium", "Santa Clara, California", "Stadium"], 0.0, 100 * 0.8),
    # EM from the second reference ("The Broncos." normalises to "broncos"); F1 1 there too
    ("Broncos", ["Denver Broncos", "The Broncos.", "Denver"], 100.0, 100.0),
])
def test_score_golden(pred, refs, em, f1):
    got = score(pred, refs)
    assert got["exact_match"] == pytest.approx(em)
    assert got["f1"] == pytest.approx(f1)


def test_extract_first_nonempty_line():
    assert extract("\n  Paris \nIt is in France.") == "Paris"
    assert extract("") == ""


def test_registry():
    assert get_scorer("squad").PRIMARY == "f1"
    with pytest.raises(ValueError, match="unknown speciality evaluator 'nope'"):
        get_scorer("nope")
