"""tools/instrument_candidates.py: the table the demo's suites were chosen by, on hand-made metrics files."""

import json

import numpy as np
import pytest

from tools import instrument_candidates as ic


def _run(path, items, margin, inst, inst_clusters, cut):
    suites = {
        "piqa": {"score": 100 * float(np.mean(items)), "items": items, "metric": "acc_norm", "n": len(items),
                 "chance": 50.0, "margin": margin, "margin_unit": "nats/char",
                 "ll_choices": [[-1.0, -2.0]] * len(items), "choice_chars": [[3, 3]] * len(items),
                 "gold": [0] * len(items)},
        "ifeval_inst": {"score": 100 * float(np.mean(inst)), "items": inst, "metric": "inst_level_strict_acc",
                        "n": len(inst), "chance": 0.0, "clusters": inst_clusters, "cut": cut,
                        "cut_share": sum(cut) / len(cut)},
    }
    path.write_text(json.dumps({"metrics": {"suites": suites}, "meta": {"suite_seconds": {"piqa": 10.0,
                                                                                          "ifeval_inst": 40.0},
                                                                        "device": {"cpu": "AVX2"}}}))
    return path


def test_the_candidates_table_from_hand_made_runs(tmp_path):
    n = 40
    orig_items = [1.0] * 36 + [0.0] * 4
    full_items = [0.0] * 9 + [1.0] * 28 + [0.0] * 3  # loses items 0-8, gains item 36
    orig = _run(tmp_path / "o.json", orig_items, [0.1 if x else -0.1 for x in orig_items],
                [1.0, 1.0, 0.0, 1.0, 1.0, 1.0], [0, 0, 1, 1, 2, 2], [False, True, False])
    full = _run(tmp_path / "f.json", full_items, [0.05 if x else -0.1 for x in full_items],
                [1.0, 0.0, 0.0, 1.0, 1.0, 1.0], [0, 0, 1, 1, 2, 2], [True, True, False])
    ic.main(["--original", str(orig), "--full-sft", str(full), "--cores", "2", "--out", str(tmp_path / "c")])
    out = json.loads((tmp_path / "c.json").read_text())
    rows = {r["suite"]: r for r in out["suites"]}
    piqa = rows["piqa"]
    assert piqa["over_chance"][0] == pytest.approx(40.0) and piqa["over_chance_verdict"] == "better"
    assert piqa["effect"] == pytest.approx(100 * (28 - 36) / n)
    assert piqa["flips"]["lost"] == 9 and piqa["flips"]["gained"] == 1
    assert piqa["cpu_s"] == 20.0 and piqa["z_per_cpu_s"] == pytest.approx(piqa["z"] / 20.0)
    inst = rows["ifeval_inst"]
    # prompt level: a prompt passes when all of its instructions do: original [no, yes, yes], Full SFT [no, no, yes]
    assert inst["prompt_level"] == {"original": pytest.approx(200 / 3), "full_sft": pytest.approx(100 / 3), "n": 3}
    assert inst["cut_share"] == {"original": pytest.approx(1 / 3), "full_sft": pytest.approx(2 / 3)}
    # the margin falls where accuracy falls (decided): it agrees
    assert out["agreement"]["margin"] == [{"suite": "piqa", "accuracy": pytest.approx(-20.0),
                                           "margin": pytest.approx(np.mean([0.05 if x else -0.1 for x in full_items])
                                                                   - np.mean([0.1 if x else -0.1 for x in orig_items])),
                                           "agrees": True}]
    assert "piqa" in (tmp_path / "c.md").read_text()
