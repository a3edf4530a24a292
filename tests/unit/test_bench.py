"""The bench gate on hand-made metrics: per-metric pass/fail, directions, CI vs point tests, reasons."""

import math
from pathlib import Path

import pytest
import yaml

from cofitune.reporting.bench import compare, load_suite, standing, to_markdown

ROOT = Path(__file__).resolve().parents[2]

ASPECTS = {"knowledge": ["mmlu"], "reasoning": ["arc"]}


def _m(spec_items, nll_items, mmlu, arc):
    suites = {"mmlu": {"score": 100 * sum(mmlu) / len(mmlu), "items": mmlu},
              "arc": {"score": 100 * sum(arc) / len(arc), "items": arc}}
    aspects = {"knowledge": suites["mmlu"]["score"], "reasoning": suites["arc"]["score"]}
    return {"metrics": {"spec": sum(spec_items) / len(spec_items), "spec_items": spec_items,
                        "spec_nll": sum(nll_items) / len(nll_items), "spec_nll_items": nll_items,
                        "suites": suites, "aspects": aspects, "aspects_tasks": ASPECTS,
                        "vers": (aspects["knowledge"] + aspects["reasoning"]) / 2}}


REF = _m([50.0] * 20, [1.0] * 20, [1, 0] * 10, [1, 1, 0, 0] * 5)


def _by_metric(entries):
    return {e["metric"]: e for e in entries}


def test_identical_run_passes_every_gate():
    gates = {"spec": {"test": "ci"}, "spec_nll": {"test": "ci"}, "vers": {"test": "point", "max_drop": 1.0},
             "aspect:knowledge": {"test": "point"}}
    entries = compare(REF, REF, gates, n_boot=200)
    assert [e["metric"] for e in entries] == list(gates)
    assert all(e["passed"] and e["diff"] == 0 and e["ci95"] == [0.0, 0.0] for e in entries)


def test_significant_spec_regression_fails_with_reason():
    new = _m([10.0] * 20, [1.0] * 20, [1, 0] * 10, [1, 1, 0, 0] * 5)
    e = _by_metric(compare(new, REF, {"spec": {"test": "ci", "max_drop": 5.0}}, n_boot=200))["spec"]
    assert not e["passed"] and e["diff"] == pytest.approx(-40.0)
    assert "significant regression" in e["reason"] and "spec 10.000 vs baseline 50.000" in e["reason"]


def test_ci_test_forgives_noise_the_point_test_does_not():
    # one item of 20 flips: diff -2.5 points, but the paired CI reaches 0
    new = _m([50.0] * 19 + [0.0], [1.0] * 20, [1, 0] * 10, [1, 1, 0, 0] * 5)
    ci = _by_metric(compare(new, REF, {"spec": {"test": "ci", "max_drop": 0.0}}, n_boot=500))["spec"]
    point = _by_metric(compare(new, REF, {"spec": {"test": "point", "max_drop": 1.0}}, n_boot=500))["spec"]
    assert ci["ci95"][1] == 0.0 and ci["passed"]
    assert not point["passed"] and "worse by 2.500 > allowed 1" in point["reason"]


def test_vers_point_gate_at_the_tolerance_boundary():
    # knowledge 50 -> 40 (two mmlu items flip): Vers 50 -> 45
    new = _m([50.0] * 20, [1.0] * 20, [1, 0] * 8 + [0, 0, 0, 0], [1, 1, 0, 0] * 5)
    entries = _by_metric(compare(new, REF, {"vers": {"test": "point", "max_drop": 5.0}}, n_boot=100))
    assert entries["vers"]["diff"] == pytest.approx(-5.0) and entries["vers"]["passed"]  # exactly at tolerance
    entries = _by_metric(compare(new, REF, {"vers": {"test": "point", "max_drop": 4.9}}, n_boot=100))
    assert not entries["vers"]["passed"]


def test_nll_is_lower_is_better():
    worse = _m([50.0] * 20, [3.0] * 20, [1, 0] * 10, [1, 1, 0, 0] * 5)
    better = _m([50.0] * 20, [0.5] * 20, [1, 0] * 10, [1, 1, 0, 0] * 5)
    gates = {"spec_nll": {"test": "ci", "max_drop": 0.5}}
    bad = compare(worse, REF, gates, n_boot=100)[0]
    assert not bad["passed"] and bad["better"] == "lower" and bad["diff"] == pytest.approx(2.0)
    assert compare(better, REF, gates, n_boot=100)[0]["passed"]


def test_non_finite_values_fail():
    broken = _m([50.0] * 20, [math.nan] * 20, [1, 0] * 10, [1, 1, 0, 0] * 5)
    e = compare(broken, REF, {"spec_nll": {"test": "point", "max_drop": 100.0}}, n_boot=50)[0]
    assert not e["passed"] and "not finite" in e["reason"]


def test_unknown_metric_and_test_are_errors():
    with pytest.raises(ValueError, match="unknown gate metric 'bleu'"):
        compare(REF, REF, {"bleu": {}})
    with pytest.raises(ValueError, match="test must be one of"):
        compare(REF, REF, {"spec": {"test": "vibes"}})
    with pytest.raises(ValueError, match="no aspect 'coding'"):
        compare(REF, REF, {"aspect:coding": {}})


def test_markdown_verdict_names_failures():
    new = _m([10.0] * 20, [1.0] * 20, [1, 0] * 10, [1, 1, 0, 0] * 5)
    entries = compare(new, REF, {"spec": {"test": "ci"}, "vers": {"test": "point"}}, n_boot=100)
    verdict = {"suite": "s", "method": "m", "variant": "v", "reference": "cofitune/x", "baselines": "b",
               "passed": False, "blocks": [{"model": "tiny", "task": "squad", "metrics": entries}]}
    md = to_markdown(verdict)
    assert "**FAIL**" in md and "| vers (higher is better) |" in md and "- FAIL: spec 10.000" in md


def test_suite_must_name_a_configured_reference(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"methods": [{"method": "original", "variant": "base"}]}))
    with pytest.raises(ValueError, match="needs `bench:"):
        load_suite(str(path))
    path.write_text(yaml.safe_dump({"methods": [{"method": "original", "variant": "base"}],
                                    "bench": {"reference": {"method": "cofitune", "variant": "x"}, "gates": {}}}))
    with pytest.raises(ValueError, match="not one of the suite's methods"):
        load_suite(str(path))
    with pytest.raises(FileNotFoundError, match="suites: "):
        load_suite("no-such-suite")


def _with_drift(m, drift, p_shift=0.0):
    import copy

    m = copy.deepcopy(m)
    m["metrics"]["drift"] = {"items": drift}
    for name, s in m["metrics"]["suites"].items():
        s["margin"] = [0.3 * (x - 0.5) + p_shift for x in s["items"]]
    return m


def test_drift_and_continuous_vers_gates():
    ref = _with_drift(REF, [0.10 + 0.01 * (i % 5) for i in range(20)])
    harmed = _with_drift(REF, [0.30 + 0.01 * (i % 5) for i in range(20)], p_shift=-0.05)
    gates = {"drift": {"test": "ci", "max_drop": 0.05}, "vers_m": {"test": "ci", "max_drop": 0.01}}
    same = _by_metric(compare(ref, ref, gates, n_boot=200))
    assert all(e["passed"] for e in same.values())
    bad = _by_metric(compare(harmed, ref, gates, n_boot=200))
    assert bad["drift"]["better"] == "lower" and bad["drift"]["diff"] == pytest.approx(0.2)
    assert not bad["drift"]["passed"] and bad["drift"]["verdict"] == "worse"
    assert bad["vers_m"]["diff"] == pytest.approx(-0.05) and not bad["vers_m"]["passed"]


def test_each_gate_reports_the_smallest_regression_it_detects():
    noisy = _m([50.0 + (5 if i % 2 else -5) for i in range(20)], [1.0] * 20, [1, 0] * 10, [1, 1, 0, 0] * 5)
    e = _by_metric(compare(noisy, REF, {"spec": {"test": "ci", "max_drop": 1.0}}, n_boot=500))["spec"]
    # paired differences are +-5 on 20 items: SE ~ 5 / sqrt(20) = 1.12, MDE ~ 2.80 * 1.12 = 3.1
    assert e["mde"] == pytest.approx(2.8016 * 5 / math.sqrt(20), rel=0.15)
    assert e["detectable"] == pytest.approx(1.0 + e["mde"])
    assert "detects a regression of" in e["reason"]
    point = _by_metric(compare(noisy, REF, {"spec": {"test": "point", "max_drop": 1.0}}, n_boot=100))["spec"]
    assert point["detectable"] == 1.0


def test_a_baseline_without_the_measure_asks_for_a_refresh():
    with pytest.raises(ValueError, match="gate drift: .*refresh the suite's baselines"):
        compare(_with_drift(REF, [0.1] * 20), REF, {"drift": {"test": "ci"}})


def test_a_stale_baseline_is_refused(tmp_path):
    """Keyed by the numerics fingerprint (tests/unit/test_fingerprint.py: the parts it names); a baseline from
    before it, with a code_sha256 only, is refused too."""
    from cofitune.reporting.bench import check_fresh

    path = tmp_path / "ref.json"
    path.write_text('{"run": {"model": "m", "task": "t", "method": "x", "variant": "v", "params": {}}, '
                    '"metrics": {}, "meta": {"code_sha256": "0000"}}')
    with pytest.raises(ValueError, match=r"ref.json: stored baseline without a numerics fingerprint .*--refresh"):
        check_fresh(path, "tiny", {"sha256": "1111", "parts": {}})


def test_the_committed_tiny_baselines_were_produced_by_this_code():
    """A stale reference would gate new methods against numbers the code no longer produces."""
    import json
    from pathlib import Path

    from cofitune.reporting.bench import check_fresh

    root = Path(__file__).resolve().parents[2] / "results" / "baselines" / "tiny"
    for name in json.loads((root / "MANIFEST.json").read_text())["files"]:
        check_fresh(root / name, "tiny")


def _launcher():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_launcher", ROOT / "tools" / "bench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_failed_bench_run_leaves_no_verdict_of_an_earlier_run(tmp_path, monkeypatch):
    """In a reused workdir, a run that fails must not leave the previous method's verdict looking fresh."""
    from cofitune.reporting import bench

    launcher = _launcher()
    work = tmp_path / "work"
    (work / "results/bench").mkdir(parents=True)
    for name in ("verdict.json", "verdict.md"):
        (work / "results/bench" / name).write_text("from an earlier run")

    def failing(*args, **kwargs):
        raise RuntimeError("snakemake failed (1)")

    monkeypatch.setattr(bench, "check_baselines", lambda *args: None)  # the stored baselines are not under test
    monkeypatch.setattr(launcher, "snakemake", failing)
    with pytest.raises(RuntimeError, match="snakemake failed"):
        launcher.run_bench("tiny", "full_sft", variant="x", params={}, train={}, seed=None, plugins=[], cores=1,
                           workdir=work)
    assert not (work / "results/bench/verdict.json").exists() and not (work / "results/bench/verdict.md").exists()


def test_the_gate_checks_its_inputs_are_the_candidate_and_writes_the_verdict(tmp_path, monkeypatch):
    """The bench_verdict job: the candidate's metrics against the stored reference, through the files; a
    metrics file of another row is refused, naming it."""
    import json

    from cofitune.reporting import bench

    monkeypatch.setattr(bench, "check_fresh", lambda *args: None)  # freshness: test_a_stale_baseline_is_refused
    stored = ROOT / "results" / "baselines" / "tiny"
    ref = stored / "tiny-llama-8/squad/cofitune/ffn-bottom2-update.json"
    other = stored / "tiny-llama-8/squad/full_sft/all.json"
    _, _, suite = bench.load_suite("tiny")
    cfg = {"models": suite["models"], "tasks": suite["tasks"],
           "bench": {**suite["bench"], "suite": "tiny", "candidate": {"method": "full_sft", "variant": "all"},
                     "baselines": str(stored)}}
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(cfg))
    verdict = bench.gate(path, [other])
    assert verdict["method"] == "full_sft" and verdict["reference"] == "cofitune/ffn-bottom2-update"
    # its standing among every stored baseline of the suite (the manifest's 3 rows), itself among them
    st = verdict["blocks"][0]["standing"]
    assert st["of"] == 4 and {r["row"] for r in st["rows"]} == {"original/base", "full_sft/all",
                                                               "cofitune/ffn-bottom2-update"}
    assert next(r for r in st["rows"] if r["row"] == "full_sft/all")["vs_new"]["Uni"]["delta"] == 0.0
    assert [e["metric"] for e in verdict["blocks"][0]["metrics"]] == list(suite["bench"]["gates"])
    assert verdict["blocks"][0]["metrics"] == bench.compare(json.loads(other.read_text()),
                                                            json.loads(ref.read_text()), suite["bench"]["gates"])
    with pytest.raises(ValueError, match="all.json: not the candidate cofitune/x"):
        cfg["bench"]["candidate"] = {"method": "cofitune", "variant": "x"}
        path.write_text(json.dumps(cfg))
        bench.gate(path, [other])
    bench.write_verdict(verdict, tmp_path / "v.json", tmp_path / "v.md")
    assert json.loads((tmp_path / "v.json").read_text())["passed"] == verdict["passed"]
    assert (tmp_path / "v.md").read_text() == bench.to_markdown(verdict)


def _run(spec: float) -> dict:
    return {**_m([spec] * 20, [1.0] * 20, [1, 0] * 10, [1, 1, 0, 0] * 5), "run": {"method": "x", "variant": "v"}}


def test_standing_ranks_the_new_row_among_the_stored_ones_with_paired_verdicts():
    """Stored Spec 50 and 40, new 45, the same versatility items (Vers 50 for all): Uni 50, 45 and 47.5, so the
    new row is 2nd of 3; its differences are exact (no spread), so they stay decided after Holm's correction."""
    st = standing(_run(45.0), {"a/x": _run(50.0), "b/y": _run(40.0)}, n_boot=200)
    assert (st["rank_uni"], st["of"], st["Uni"]) == (2, 3, 47.5)
    assert [r["row"] for r in st["rows"]] == ["a/x", "b/y"]  # by Uni
    a, b = (r["vs_new"] for r in st["rows"])
    assert (a["Spec"]["delta"], a["Spec"]["verdict"], a["Uni"]["delta"], a["Uni"]["verdict"]) == (-5.0, "worse", -2.5, "worse")
    assert (b["Spec"]["delta"], b["Spec"]["verdict"]) == (5.0, "better")
    assert (a["Vers"]["delta"], a["Vers"]["verdict"]) == (0.0, "undecided")
    assert all(d["p_adjusted"] is not None for r in st["rows"] for d in r["vs_new"].values())
