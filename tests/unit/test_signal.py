"""Whether the versatility suites carry signal: chance levels and their flag, flips with McNemar's test, and the
continuous score's agreement with accuracy (issue 26)."""

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from cofitune.pipeline.config import warn_suites_at_chance
from cofitune.reporting.aggregate import build_table, to_html, to_markdown
from cofitune.reporting.claims import build_claims
from cofitune.reporting.signal import at_chance, flips_text
from cofitune.stats import measures

REPO = Path(__file__).resolve().parents[2]
LEADERBOARD = REPO / "docs" / "results" / "leaderboard-smollm2-135m-squad" / "runs"
ASPECTS = {"knowledge": ["mmlu"], "reasoning": ["piqa"]}
# 40 items each; the original is at chance on mmlu (10 of 40 right, chance 25) and far above it on piqa (36 of 40)
ORIG = {"mmlu": [1] * 10 + [0] * 30, "piqa": [1] * 36 + [0] * 4}
# full_sft: mmlu loses items 0, 1 and gains items 10-14; piqa loses items 0-8 and gains item 36
FULL = {"mmlu": [0, 0] + [1] * 8 + [1] * 5 + [0] * 25, "piqa": [0] * 9 + [1] * 27 + [1] + [0] * 3}


def _metrics(tmp_path: Path, method: str, items: dict, seed: int = 1) -> Path:
    chance = {"mmlu": 25.0, "piqa": 50.0}
    suites = {k: {"score": 100 * float(np.mean(v)), "items": v, "chance": chance[k]} for k, v in items.items()}
    aspects = {a: float(np.mean([suites[t]["score"] for t in ts])) for a, ts in ASPECTS.items()}
    m = {"run": {"model": "m", "task": "t", "method": method, "variant": "v", "row": "v", "seed": seed, "params": {}},
         "metrics": {"spec": 50.0, "spec_ci95": [49, 51], "spec_items": [0.5] * 4, "suites": suites,
                     "aspects": aspects, "aspects_tasks": ASPECTS, "vers": float(np.mean(list(aspects.values()))),
                     "trainable_fraction": 0.0, "format": {"template": "chat", "apply_chat_template": True}},
         "meta": {"git": {"sha": "abc", "dirty": False}}}
    path = tmp_path / f"{method}-{seed}.json"
    path.write_text(json.dumps(m))
    return path


def test_flips_match_a_hand_count_in_the_table_and_the_claims(tmp_path):
    orig, full = _metrics(tmp_path, "original", ORIG), _metrics(tmp_path, "full_sft", FULL)
    df = build_table([orig, full], keep_records=True).set_index("method")
    assert (df.at["full_sft", "lost:mmlu_vs_original"], df.at["full_sft", "gained:mmlu_vs_original"]) == (2, 5)
    assert (df.at["full_sft", "lost:piqa_vs_original"], df.at["full_sft", "gained:piqa_vs_original"]) == (9, 1)
    # McNemar's exact test on the 10 discordant piqa items: 2 * P[X <= 1], X ~ Bin(10, 1/2) = 2 * 11 / 1024
    assert df.at["full_sft", "mcnemar_p:piqa_vs_original"] == pytest.approx(22 / 1024)
    # 7 discordant mmlu items, 2 lost: 2 * (1 + 7 + 21) / 128
    assert df.at["full_sft", "mcnemar_p:mmlu_vs_original"] == pytest.approx(58 / 128)
    assert flips_text(df.loc["full_sft"], "piqa", "original") == "−9 / +1 (p 0.021)"
    claims = build_claims(df.reset_index(), None)
    c1 = claims[(claims.claim == "C1") & (claims.measure == "Vers")].iloc[0]
    assert "mmlu −2/+5" in c1.note and "piqa −9/+1 (p 0.021)" in c1.note


def test_flips_of_a_row_of_several_seeds_count_each_item_by_its_majority():
    a = {"data": {"s:x": np.array([[1, 0, 0, 1], [1, 1, 0, 0], [0, 1, 0, 0]], dtype=float)}}
    b = {"data": {"s:x": np.array([[1, 1, 1, 0]], dtype=float)}}
    # majority of a: [1, 1, 0, 0] -> lost item 2, gained nothing; item 3: 1 of 3 seeds, wrong, as in b
    assert measures.flips(a, b, "x") | {"p": None} == {"lost": 1, "gained": 0, "n": 4, "p": None}


def test_a_suite_at_chance_is_flagged_in_the_table_and_the_report(tmp_path):
    orig, full = _metrics(tmp_path, "original", ORIG), _metrics(tmp_path, "full_sft", FULL)
    full_table = build_table([orig, full], keep_records=True)
    assert at_chance(full_table) == ["mmlu"]
    df = full_table.set_index("method")
    assert df.at["original", "over_chance:mmlu"] == pytest.approx(0.0)
    assert df.at["original", "over_chance:mmlu_verdict"] == "undecided"
    assert df.at["original", "over_chance:piqa"] == pytest.approx(40.0)
    assert df.at["original", "over_chance:piqa_verdict"] == "better"
    assert df.at["original", "at_chance:knowledge"] == "mmlu" and df.at["original", "at_chance:reasoning"] == ""
    md = to_markdown(full_table.drop(columns=["_record"]))
    assert "knowledge (at chance: mmlu)" in md and "| mmlu | 25 | 25.0 | +0.0 [" in md and "AT CHANCE | – |" in md
    assert "| piqa | 50 | 90.0 | +40.0 [" in md and "above chance" in md
    assert "knowledge (at chance: mmlu)" in to_html(full_table.drop(columns=["_record"]))


def test_the_config_check_warns_when_the_originals_suites_are_at_chance(tmp_path, monkeypatch, caplog):
    import yaml

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["evaluation"]["versatility"]["suites"] = {"knowledge": ["mmlu"], "reasoning": ["piqa"]}
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "results/runs/smollm2-135m/squad/original/base/metrics.json"
    out.parent.mkdir(parents=True)
    out.write_text(_metrics(tmp_path, "original", ORIG).read_text())
    with caplog.at_level(logging.WARNING):
        warnings = warn_suites_at_chance(config, REPO)
    assert len(warnings) == 1 and "suite(s) ['mmlu']" in warnings[0] and "EVERY" not in warnings[0]
    config["evaluation"]["versatility"]["suites"] = {"knowledge": ["mmlu"]}
    assert "EVERY suite ['mmlu']" in warn_suites_at_chance(config, REPO)[0]
    config["evaluation"]["versatility"]["suites"] = {"reasoning": ["piqa"]}
    assert warn_suites_at_chance(config, REPO) == []


def _committed(name: str) -> dict:
    return json.loads((LEADERBOARD / name / "metrics.json").read_text())


def test_the_flat_p_gold_disagrees_with_accuracy_on_the_committed_leaderboard():
    """The old continuous score: on the committed real-model rows, DFT loses 11.7 HellaSwag points (decided) while
    its mean p(gold) rises, and Full SFT at a tenth of the lr loses MMLU items while its p(gold) rises."""
    original = _committed("original/base")
    disagreements = [(row, a["suite"]) for row in ("dft/token", "full_sft/lr-tenth")
                     for a in measures.sign_agreement(_committed(row), original, "p_gold") if not a["agrees"]]
    assert ("dft/token", "hellaswag") in disagreements and ("full_sft/lr-tenth", "mmlu") in disagreements


def test_the_table_resamples_the_passages_the_speciality_items_share(tmp_path):
    """SQuAD questions on one passage move together: with the loader's cluster keys recorded, the paired CI of
    Spec resamples passages and is wider than the item CI of the same numbers."""
    rng = np.random.default_rng(5)
    passage = np.repeat(rng.normal(0, 10, size=8), 5)  # 8 passages x 5 questions: a shared effect per passage
    base = rng.uniform(20, 60, size=40)
    widths = {}
    for clustered in (False, True):
        paths, folder = [], tmp_path / str(clustered)
        folder.mkdir()
        for method, shift in (("original", 0.0), ("full_sft", 1.0)):
            path = _metrics(folder, method, ORIG)
            m = json.loads(path.read_text())
            m["metrics"]["spec_items"] = (base + shift * (5 + passage)).tolist()
            if clustered:
                m["metrics"]["spec_clusters"] = [f"p{i // 5}" for i in range(40)]
            path.write_text(json.dumps(m))
            paths.append(path)
        df = build_table(paths).set_index("method")
        widths[clustered] = df.at["full_sft", "dSpec_vs_original_hi"] - df.at["full_sft", "dSpec_vs_original_lo"]
    assert widths[True] > 1.5 * widths[False]
