"""The claims table: each claim's comparison, verdict and status on hand-built rows."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest

pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.PerformanceWarning")

from cofitune.reporting.aggregate import build_table
from cofitune.reporting.claims import build_claims, claims_markdown

ASPECTS = {"knowledge": ["mmlu"], "reasoning": ["arc"]}
N = 60


def _write(tmp_path, method, variant, params, spec, acc, p_shift, drift):
    rng = np.random.default_rng(zlib.crc32(f"{method}/{variant}".encode()))
    base = np.random.default_rng(0).uniform(0.3, 0.7, size=N)  # the same items' difficulty for every row
    suites = {}
    for name in ("mmlu", "arc"):
        items = (rng.uniform(size=N) < acc).astype(float).tolist()
        suites[name] = {"score": 100 * float(np.mean(items)), "items": items,
                        "margin": (base - 0.5 + p_shift).tolist()}
    aspects = {a: float(np.mean([suites[t]["score"] for t in ts])) for a, ts in ASPECTS.items()}
    spec_items = np.clip(np.random.default_rng(1).uniform(0, 100, N) + spec, 0, 100).tolist()
    m = {"run": {"model": "m", "task": "t", "method": method, "variant": variant, "row": variant, "seed": 1,
                 "params": params},
         "metrics": {"spec": float(np.mean(spec_items)), "spec_items": spec_items, "suites": suites,
                     "aspects": aspects, "aspects_tasks": ASPECTS, "vers": float(np.mean(list(aspects.values()))),
                     "trainable_fraction": 0.1,
                     "drift": {"items": (np.random.default_rng(2).uniform(0.5, 1.5, N) * drift).tolist()},
                     "task_drift": {"items": (np.random.default_rng(3).uniform(0.5, 1.5, N) * drift).tolist()}},
         "meta": {"git": {"sha": "abc", "dirty": False}}}
    path = tmp_path / f"{method}-{variant}.json"
    path.write_text(json.dumps(m))
    return path


def _claims(tmp_path, rows):
    table = build_table([_write(tmp_path, *r) for r in rows], keep_records=True)
    return build_claims(table)


FFN = {"layers": "bottom2", "modules": "ffn"}


def test_claims_on_a_run_with_every_row(tmp_path):
    claims = _claims(tmp_path, [
        ("original", "base", {}, 0, 0.5, 0.0, 0.0),
        ("full_sft", "all", {}, 40, 0.5, -0.2, 0.4),
        ("coarse_only", "ffn-bottom2", FFN, 38, 0.5, -0.05, 0.1),
        ("coarse_only", "mha-top", {"layers": "top", "modules": "mha"}, 20, 0.5, -0.05, 0.1),
        ("cofitune", "ffn-bottom2-grad", {**FFN, "target": "grad"}, 38, 0.5, -0.05, 0.1),
        ("cofitune", "ffn-bottom2-update", {**FFN, "target": "update"}, 37, 0.5, -0.01, 0.05),
    ]).set_index(["claim", "comparison", "measure"])
    c1 = claims.loc[("C1", "full_sft/all vs original/base")]
    assert c1.loc["VersM", "status"] == "supported" and c1.loc["VersM", "effect"] == pytest.approx(-0.2, abs=0.005)
    assert c1.loc["Drift", "status"] == "supported"
    c2 = claims.loc[("C2", "cofitune/ffn-bottom2-update vs full_sft/all")]
    assert c2.loc["Drift", "verdict"] == "better" and c2.loc["VersM", "status"] == "supported"
    assert claims.loc[("C3", "cofitune/ffn-bottom2-update vs 0.9 x full_sft/all", "Spec"), "status"] == "supported"
    c4 = claims.xs("C4", level="claim")
    assert len(c4) == 1 and "coarse_only/mha-top" in c4.index[0][0]
    c5 = claims.loc[("C5", "cofitune/ffn-bottom2-update vs coarse_only/ffn-bottom2")]
    assert c5.loc["Drift", "status"] == "supported"
    c6 = claims.loc[("C6", "cofitune/ffn-bottom2-grad vs coarse_only/ffn-bottom2")]
    assert c6.loc["VersM", "status"] == "supported"  # identical margins: the CI is [0, 0], inside ±0.01
    assert "margin" in c6.loc["VersM", "note"]
    assert (claims["status"] != "not tested").all()
    assert claims["p_adjusted"].dropna().le(1).all()


def test_claims_without_their_rows_say_what_they_need(tmp_path):
    claims = _claims(tmp_path, [("original", "base", {}, 0, 0.5, 0.0, 0.0),
                                ("full_sft", "all", {}, 40, 0.5, -0.2, 0.4)])
    missing = claims[claims.status == "not tested"]
    assert set(missing.claim) == {"C2", "C3", "C4", "C5", "C6"}
    assert all(n.startswith("needs rows:") for n in missing.note)
    md = claims_markdown(claims)
    assert "C1 (paper): Full SFT loses versatility" in md and "not tested" in md


def test_an_undecided_claim_says_how_many_items_would_settle_it(tmp_path):
    claims = _claims(tmp_path, [("original", "base", {}, 0, 0.5, 0.0, 0.0),
                                ("full_sft", "all", {}, 40, 0.5, -0.002, 0.4)])
    row = claims[(claims.claim == "C1") & (claims.measure == "Vers")].iloc[0]
    assert row.status == "undecided" and row.lo < 0 < row.hi
    assert row["items_needed"] > N  # the observed effect would need more items than the run has
    vp = claims[(claims.claim == "C1") & (claims.measure == "VersM")].iloc[0]
    assert vp.status == "supported"  # a constant shift of every item's margin is decided
