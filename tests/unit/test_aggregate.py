"""Tables derived from hand-written metrics files; bootstrap CIs."""

import json

import numpy as np
import pytest

from cofitune.aggregate import build_table, paired_vers_delta_ci, write_tables
from cofitune.stats import bootstrap_ci, paired_bootstrap_ci

ASPECTS = {"knowledge": ["mmlu"], "reasoning": ["arc", "piqa"]}


def _metrics(tmp_path, method, spec, items, frac=0.0):
    suites = {name: {"score": 100 * float(np.mean(v)), "items": v} for name, v in items.items()}
    aspects = {a: float(np.mean([suites[t]["score"] for t in ts])) for a, ts in ASPECTS.items()}
    m = {"run": {"model": "m", "task": "t", "method": method, "variant": "v", "params": {"layers": "bottom2"}},
         "metrics": {"spec": spec, "spec_ci95": [spec - 1, spec + 1], "spec_items": [spec] * 4,
                     "suites": suites, "aspects": aspects, "aspects_tasks": ASPECTS,
                     "vers": float(np.mean(list(aspects.values()))), "trainable_fraction": frac},
         "meta": {"git": {"sha": "abc", "dirty": False}}}
    path = tmp_path / f"{method}.json"
    path.write_text(json.dumps(m))
    return path


def test_table_golden_values(tmp_path):
    orig = _metrics(tmp_path, "original", 40.0, {"mmlu": [1, 1, 0, 0], "arc": [1, 1, 1, 1], "piqa": [1, 0, 1, 0]})
    full = _metrics(tmp_path, "full_sft", 80.0, {"mmlu": [1, 0, 0, 0], "arc": [1, 1, 0, 1], "piqa": [0, 0, 1, 0]}, 1.0)
    cofi = _metrics(tmp_path, "cofitune", 72.0, {"mmlu": [1, 1, 0, 0], "arc": [1, 1, 1, 0], "piqa": [1, 0, 1, 0]}, 0.1)
    df = build_table([cofi, full, orig]).set_index("method")
    assert list(df.index) == ["original", "full_sft", "cofitune"]
    # original: knowledge 50, reasoning (100 + 50)/2 = 75 -> Vers 62.5, Uni (40 + 62.5)/2
    assert df.at["original", "Vers"] == pytest.approx(62.5)
    assert df.at["original", "Uni"] == pytest.approx(51.25)
    # full_sft: knowledge 25, reasoning (75 + 25)/2 = 50 -> Vers 37.5
    assert df.at["full_sft", "Vers"] == pytest.approx(37.5)
    assert df.at["full_sft", "Vers_rel_original_%"] == pytest.approx(60.0)
    assert df.at["cofitune", "Spec_rel_full_sft_%"] == pytest.approx(90.0)
    assert df.at["cofitune", "dVers_vs_original"] == pytest.approx((50 + (75 + 50) / 2) / 2 - 62.5)
    assert df.at["cofitune", "trainable_frac"] == pytest.approx(0.1)
    assert df.at["cofitune", "setting"] == "layers=bottom2"


def test_write_tables(tmp_path):
    orig = _metrics(tmp_path, "original", 40.0, {"mmlu": [1, 0], "arc": [1, 1], "piqa": [0, 1]})
    write_tables([orig], tmp_path / "t.csv", tmp_path / "t.md")
    assert "original" in (tmp_path / "t.md").read_text()
    assert (tmp_path / "t.csv").read_text().startswith("model,task,method,variant")


def test_bootstrap_ci_brackets_mean_and_is_seeded():
    x = np.r_[np.ones(30), np.zeros(70)]
    lo, hi = bootstrap_ci(x, n_boot=2000, seed=0)
    assert lo < 0.3 < hi and 0.18 < lo and hi < 0.42
    assert bootstrap_ci(x, n_boot=2000, seed=0) == (lo, hi)
    assert bootstrap_ci([5.0, 5.0, 5.0]) == (5.0, 5.0)


def test_paired_ci_is_tighter_than_unpaired():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 2, 200).astype(float)
    worse = base.copy()
    worse[:10] = 0  # a few items flip
    lo, hi = paired_bootstrap_ci(worse, base)
    assert hi <= 0 and hi - lo < 0.1
    with pytest.raises(ValueError, match="equal-length"):
        paired_bootstrap_ci([1, 0], [1])


def test_paired_vers_delta_ci_of_identical_runs_is_zero():
    suites = {"mmlu": {"items": [1, 0, 1]}, "arc": {"items": [0, 1, 1]}, "piqa": {"items": [1, 1, 0]}}
    assert paired_vers_delta_ci(suites, suites, ASPECTS, n_boot=50) == (0.0, 0.0)
