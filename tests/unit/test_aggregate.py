"""Tables derived from hand-written metrics files; bootstrap CIs."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cofitune.reporting.aggregate import build_table, to_latex, to_markdown, write_tables
from cofitune.stats import bootstrap_ci, paired_bootstrap_ci

ASPECTS = {"knowledge": ["mmlu"], "reasoning": ["arc", "piqa"]}
REPO = Path(__file__).resolve().parents[2]
GOLDEN_CSV = Path(__file__).parent / "golden" / "main_table.csv"


def _metrics(tmp_path, method, spec, items, frac=0.0, seed=1, row="v", dirty=False, spec_items=None):
    suites = {name: {"score": 100 * float(np.mean(v)), "items": v} for name, v in items.items()}
    aspects = {a: float(np.mean([suites[t]["score"] for t in ts])) for a, ts in ASPECTS.items()}
    variant = row if seed == 1 else f"{row}-seed{seed}"
    m = {"run": {"model": "m", "task": "t", "method": method, "variant": variant, "row": row, "seed": seed,
                 "params": {"layers": "bottom2"}},
         "metrics": {"spec": spec, "spec_ci95": [spec - 1, spec + 1], "spec_items": spec_items or [spec] * 4,
                     "suites": suites, "aspects": aspects, "aspects_tasks": ASPECTS,
                     "vers": float(np.mean(list(aspects.values()))), "trainable_fraction": frac},
         "meta": {"git": {"sha": "abc", "dirty": dirty}}}
    path = tmp_path / f"{method}-{variant}.json"
    path.write_text(json.dumps(m))
    return path


def _three(tmp_path, **cofi):
    orig = _metrics(tmp_path, "original", 40.0, {"mmlu": [1, 1, 0, 0], "arc": [1, 1, 1, 1], "piqa": [1, 0, 1, 0]})
    full = _metrics(tmp_path, "full_sft", 80.0, {"mmlu": [1, 0, 0, 0], "arc": [1, 1, 0, 1], "piqa": [0, 0, 1, 0]}, 1.0)
    cofi = _metrics(tmp_path, "cofitune", 72.0, {"mmlu": [1, 1, 0, 0], "arc": [1, 1, 1, 0], "piqa": [1, 0, 1, 0]},
                    0.1, **cofi)
    return [cofi, full, orig]


def test_table_golden_values(tmp_path):
    df = build_table(_three(tmp_path)).set_index("method")
    assert list(df.index) == ["original", "full_sft", "cofitune"]
    # original: knowledge 50, reasoning (100 + 50)/2 = 75 -> Vers 62.5, Uni (40 + 62.5)/2
    assert df.at["original", "Vers"] == pytest.approx(62.5)
    assert df.at["original", "Uni"] == pytest.approx(51.25)
    # full_sft: knowledge 25, reasoning (75 + 25)/2 = 50 -> Vers 37.5
    assert df.at["full_sft", "Vers"] == pytest.approx(37.5)
    assert df.at["full_sft", "Vers_ret_original_%"] == pytest.approx(60.0)
    assert df.at["cofitune", "Spec_ret_full_sft_%"] == pytest.approx(90.0)
    cofi_vers = (50 + (75 + 50) / 2) / 2  # 56.25
    assert df.at["cofitune", "Vers"] == pytest.approx(cofi_vers)
    assert df.at["cofitune", "dVers_vs_full_sft_%"] == pytest.approx(100 * (cofi_vers - 37.5) / 37.5)
    assert df.at["cofitune", "dVers_vs_original"] == pytest.approx(cofi_vers - 62.5)
    assert df.at["cofitune", "dSpec_vs_original"] == pytest.approx(32.0)
    assert (df.at["cofitune", "dSpec_vs_original_lo"], df.at["cofitune", "dSpec_vs_original_hi"]) == (32.0, 32.0)  # constant items
    assert df.at["cofitune", "trainable_frac"] == pytest.approx(0.1)
    assert df.at["cofitune", "setting"] == "ffn@bottom2, update mask"  # in words: its region and its mask
    assert df.at["full_sft", "setting"] == "layers=bottom2"  # params full_sft has no field for: as they are
    assert df.at["cofitune", "seeds"] == 1 and np.isnan(df.at["cofitune", "Spec_std"])
    assert df.at["original", "Vers_lo"] <= 62.5 <= df.at["original", "Vers_hi"]


def test_table_matches_golden_csv(tmp_path):
    """The whole layout (columns, order, every number) from hand-written metrics files."""
    df = build_table(_three(tmp_path)).drop(columns=["sources"])
    golden = pd.read_csv(GOLDEN_CSV, dtype={"seed_list": str, "git_sha": str})
    for col in [c for c in golden.columns if c.endswith("_verdict") or c.startswith("at_chance:") or c == "format"]:
        # CSV reads an empty string as NaN
        golden[col] = golden[col].astype(object).fillna("")
    pd.testing.assert_frame_equal(df.reset_index(drop=True), golden, check_dtype=False, atol=1e-6)


def test_uni_weights_are_configurable(tmp_path):
    df = build_table(_three(tmp_path), uni={"spec": 0.25, "vers": 0.75}).set_index("method")
    assert df.at["original", "Uni"] == pytest.approx(0.25 * 40 + 0.75 * 62.5)


def test_seeds_are_one_row_with_mean_and_std(tmp_path):
    paths = _three(tmp_path)[1:]
    items = {"mmlu": [1, 1, 0, 0], "arc": [1, 1, 1, 0], "piqa": [1, 0, 1, 0]}
    paths += [_metrics(tmp_path, "cofitune", 70.0, items, 0.1, seed=1, spec_items=[70.0, 70.0, 70.0, 70.0]),
              _metrics(tmp_path, "cofitune", 74.0, items, 0.1, seed=2, spec_items=[74.0, 74.0, 74.0, 74.0])]
    df = build_table(paths).set_index("method")
    row = df.loc["cofitune"]
    assert row["variant"] == "v" and row["seeds"] == 2 and row["seed_list"] == "1;2"
    assert row["Spec"] == pytest.approx(72.0) and row["Spec_std"] == pytest.approx(np.std([70, 74], ddof=1))
    # the CI resamples seeds, then items: the seed variance is in the interval (draws of 70, 72 or 74)
    assert (row["Spec_lo"], row["Spec_hi"]) == (70.0, 74.0)
    assert "72.00 ± 2.83" in to_markdown(build_table(paths))


def test_best_values_bold_and_dirty_rows_flagged(tmp_path):
    df = build_table(_three(tmp_path, dirty=True))
    md = to_markdown(df)
    cofi = next(line for line in md.splitlines() if line.startswith("| cofitune/v"))
    full = next(line for line in md.splitlines() if line.startswith("| full_sft/v"))
    orig = next(line for line in md.splitlines() if line.startswith("| original/v"))
    assert "cofitune/v †" in cofi and "†" not in full
    # Vers: original (62.5) is the reference, not a competitor; cofitune's 56.25 is the best fine-tuned row
    assert "**56.25" in cofi and "**" not in orig
    assert "**80.00" in full  # Spec: full_sft best
    tex = to_latex(df)
    assert r"\toprule" in tex and r"\bottomrule" in tex and r"\textbf{80.00" in tex
    assert r"cofitune/v $^\dagger$" in tex and r"\_" in tex  # escaped underscores (full\_sft)


def test_write_tables(tmp_path):
    orig = _metrics(tmp_path, "original", 40.0, {"mmlu": [1, 0], "arc": [1, 1], "piqa": [0, 1]})
    write_tables([orig], tmp_path / "t.csv", tmp_path / "t.md", tmp_path / "t.tex", tmp_path / "t.html")
    assert "<td>original/v</td>" in (tmp_path / "t.html").read_text()
    assert "original" in (tmp_path / "t.md").read_text()
    assert (tmp_path / "t.csv").read_text().startswith("model,task,method,variant")
    assert (tmp_path / "t.tex").read_text().count(r"\begin{tabular}") == 1


def test_two_references_are_refused(tmp_path):
    paths = _three(tmp_path)
    paths.append(_metrics(tmp_path, "original", 41.0, {"mmlu": [1, 0, 0, 0], "arc": [1, 1, 1, 1],
                                                        "piqa": [1, 0, 1, 0]}, row="other"))
    with pytest.raises(ValueError, match="2 'original' rows"):
        build_table(paths)


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


def test_paired_comparisons_of_identical_and_shifted_rows_are_exact():
    from cofitune.stats.measures import compare_rows, record

    rng = np.random.default_rng(1)
    suites = {n: {"items": rng.integers(0, 2, 30).tolist()} for n in ("mmlu", "arc", "piqa")}
    a = {"metrics": {"spec_items": rng.uniform(0, 100, 30).tolist(), "suites": suites, "aspects_tasks": ASPECTS}}
    ra = record(a)
    for measure in ("Vers", "Uni", "Spec"):
        c = compare_rows(ra, ra, measure, ASPECTS, n_boot=50)
        assert (c.lo, c.hi, c.verdict) == (0.0, 0.0, "undecided")
    shifted = record({"metrics": {**a["metrics"], "spec_items": [x + 4.0 for x in a["metrics"]["spec_items"]]}})
    c = compare_rows(shifted, ra, "Uni", ASPECTS, n_boot=50)  # Spec +4 on every item, Vers equal
    assert (c.lo, c.hi) == pytest.approx((2.0, 2.0)) and c.verdict == "better"  # Uni weight 0.5
    c = compare_rows(shifted, ra, "Uni", ASPECTS, uni={"spec": 1.0, "vers": 0.0}, n_boot=50)
    assert (c.lo, c.hi) == pytest.approx((4.0, 4.0))
    short = record({"metrics": {**a["metrics"], "spec_items": a["metrics"]["spec_items"][:5]}})
    with pytest.raises(ValueError, match="different item counts"):
        compare_rows(ra, short, "Uni", ASPECTS, n_boot=5)


def test_setting_reads_in_words(tmp_path):
    """The Setting column says what the method says of itself (``Method.setting``): no Python reprs."""
    path = _metrics(tmp_path, "lora", 30.0, {"mmlu": [1, 0], "arc": [1, 1], "piqa": [0, 1]})
    m = json.loads(path.read_text())
    m["run"]["params"] = {"r": 8, "layers": None, "modules": "mha+ffn"}
    path.write_text(json.dumps(m))
    assert build_table([path]).at[0, "setting"] == "mha+ffn@all, r=8, alpha=16"
    m["run"] |= {"method": "cofitune", "params": {"layers": "bottom2", "modules": "ffn", "from_search": False,
                                                  "mask_units": ["up_proj", "down_proj"], "target": "update",
                                                  "layout": "rows"}}
    path.write_text(json.dumps(m))
    table = build_table([path])
    assert table.at[0, "setting"] == "ffn@bottom2, update mask"
    assert "| cofitune/v | ffn@bottom2, update mask |  | 1 |" in to_markdown(table)  # no format recorded: empty


def _with_new_measures(path, margin: dict, drift: list[float]):
    m = json.loads(path.read_text())
    for name, values in margin.items():
        m["metrics"]["suites"][name]["margin"] = values
    m["metrics"]["drift"] = {"items": drift, "mean": float(np.mean(drift))}
    path.write_text(json.dumps(m))
    return path


def test_verdict_columns_on_a_hand_table(tmp_path):
    cofi, full, orig = _three(tmp_path)
    p = {"mmlu": [0.5, 0.5, 0.5, 0.5], "arc": [0.5] * 4, "piqa": [0.5] * 4}
    _with_new_measures(orig, p, [0.0] * 4)
    _with_new_measures(full, {k: [x - 0.2 for x in v] for k, v in p.items()}, [0.30, 0.32, 0.28, 0.30])
    _with_new_measures(cofi, {k: [x - 0.1 for x in v] for k, v in p.items()}, [0.10, 0.30, 0.20, 0.12])
    df = build_table([cofi, full, orig]).set_index("method")
    # VersM: every margin shifted by a constant -> exact differences, zero-width CIs, decided
    assert df.at["full_sft", "VersM"] == pytest.approx(0.3)
    assert df.at["full_sft", "dVersM_vs_original"] == pytest.approx(-0.2)
    assert df.at["full_sft", "dVersM_vs_original_verdict"] == "worse"
    assert df.at["cofitune", "dVersM_vs_full_sft"] == pytest.approx(0.1)
    assert df.at["cofitune", "dVersM_vs_full_sft_verdict"] == "better"
    # Drift: lower is better; original's drift is 0 on every item
    assert df.at["full_sft", "Drift"] == pytest.approx(0.30)
    assert df.at["full_sft", "dDrift_vs_original_verdict"] == "worse"
    assert df.at["cofitune", "dDrift_vs_full_sft"] == pytest.approx(0.18 - 0.30)
    # Vers on 4 binary items: one item apart, undecided, with what would settle it
    assert df.at["cofitune", "dVers_vs_original_verdict"] == "undecided"
    assert df.at["cofitune", "dVers_vs_original_items_needed"] > 4
    # Holm-adjusted p-values never fall below the raw ones and are recorded
    assert (df["dVers_vs_original_p_adjusted"].dropna() >= 0).all()
    md = to_markdown(build_table([cofi, full, orig]))
    assert "comparisons" in md and "Holm" in md and "worse" in md and "n≈" in md


def test_rows_without_the_new_measures_leave_their_cells_empty(tmp_path):
    df = build_table(_three(tmp_path)).set_index("method")
    assert np.isnan(df.at["cofitune", "VersM"]) and np.isnan(df.at["cofitune", "Drift"])
    assert np.isnan(df.at["cofitune", "TaskDrift"]) and df.at["cofitune", "format"] == ""
    assert np.isnan(df.at["cofitune", "dDrift_vs_full_sft"])
    assert df.at["cofitune", "dDrift_vs_full_sft_verdict"] == ""
    assert df.at["cofitune", "dSpec_vs_full_sft_verdict"] == "worse"  # 72 vs 80 on constant items


def write_golden() -> None:
    """Regenerate ``golden/main_table.csv`` on purpose: ``python -m tests.unit.test_aggregate``."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        df = build_table(_three(Path(tmp))).drop(columns=["sources"])
        GOLDEN_CSV.write_text(df.to_csv(index=False, float_format="%.6f"))


if __name__ == "__main__":
    write_golden()


def test_seed_rows_report_seed_and_item_components(tmp_path):
    paths = _three(tmp_path)[1:]
    items = {"mmlu": [1, 1, 0, 0], "arc": [1, 1, 1, 0], "piqa": [1, 0, 1, 0]}
    for seed, spec in ((1, 60.0), (2, 70.0), (3, 80.0)):  # constant items: the spread is all seed
        paths.append(_metrics(tmp_path, "cofitune", spec, items, 0.1, seed=seed, spec_items=[spec] * 4))
    df = build_table(paths).set_index("method")
    assert df.at["cofitune", "Spec_sd_seed"] == pytest.approx(10.0)  # sd of 60, 70, 80
    assert df.at["cofitune", "Spec_sd_item"] == 0.0
    assert df.at["cofitune", "Vers_sd_seed"] == 0.0  # the same versatility items in every seed
    assert np.isnan(df.at["full_sft", "Spec_sd_seed"])  # one seed: not measured
    assert "seeds vs items" in to_markdown(build_table(paths))


def test_a_stale_metrics_file_is_refused_naming_the_row_and_key(tmp_path):
    """The aggregation guard: a metrics.json made under another run configuration than the current one."""
    import subprocess
    import sys

    from cofitune.pipeline.io import read_json, write_json

    baselines = REPO / "results/baselines/tiny/tiny-llama-8/squad"
    metrics = [baselines / "original/base.json", baselines / "full_sft/all.json"]
    current = []
    for i, path in enumerate(metrics):
        cfg = read_json(path)["meta"]["run_config"]
        if cfg["method"] == "full_sft":
            cfg["train"]["lr"] = 0.5  # the config was edited after this row was computed
        current.append(tmp_path / f"run{i}.json")
        write_json(current[-1], cfg)
    out = tmp_path / "main.csv"
    args = [sys.executable, "-m", "cofitune", "aggregate", "--metrics", *map(str, metrics), "--run-configs",
            *map(str, current), "--csv", str(out), "--md", str(tmp_path / "main.md")]
    proc = subprocess.run(args, capture_output=True, text=True, cwd=REPO)
    assert proc.returncode != 0 and not out.exists() and not (tmp_path / "main.md").exists()
    assert "full_sft/all.json: row full_sft/all is stale" in proc.stderr and "train.lr: 0.02 -> 0.5" in proc.stderr
    fresh = [p for p in current if read_json(p)["method"] == "original"]
    proc = subprocess.run([*args[:5], str(metrics[0]), "--run-configs", str(fresh[0]), *args[-4:]],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
