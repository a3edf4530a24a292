"""Regression benchmarking of a new method against frozen baseline results.

A *suite* is a pipeline config (``config/bench/<suite>.yaml``) plus a ``bench`` section: the stored
reference row and one gate per metric. ``python tools/bench.py --suite S --refresh`` runs the suite's methods
and stores their ``metrics.json`` under ``results/baselines/<suite>/`` (:func:`store_baselines`; on purpose,
never implicitly), keyed by the numerics fingerprint (:mod:`cofitune.pipeline.fingerprint`): a stored baseline is
refused only when the code that determines the numbers changed, naming the part (:func:`check_fresh`).
``python tools/bench.py --suite S --method NAME`` adds one row to the suite (:func:`candidate_overlay`) and
builds the DAG's ``bench_verdict`` target (``rules/bench.smk``), whose job is
:func:`gate`: per metric the new value, the stored baseline, the difference with its paired 95% bootstrap CI,
the gate and pass/fail with a readable reason. The gate logic is :func:`compare`, a pure function. The verdict
also says where the new row stands among every stored baseline of the suite (:func:`standing`: its rank by Uni,
and its paired differences with each, Holm-corrected). This module never runs Snakemake: the launcher in
``tools/`` does.
"""

from __future__ import annotations

import json
import functools
import math
import time
from pathlib import Path

import yaml

from cofitune import repo
from cofitune.pipeline import paths
from cofitune.pipeline.artifacts import read_metrics
from cofitune.pipeline.fingerprint import changed_parts, fingerprint
from cofitune.pipeline.io import atomic_write_text, read_json, sha256_text, write_json
from cofitune import stats
from cofitune.reporting import verdicts
from cofitune.stats.measures import compare_rows, measure_stat, record, value

ROOT = repo.ROOT
#: the stored baselines of every suite, ``<suite>/...`` (committed)
BASELINES = ROOT / "results" / "baselines"
#: gate metric -> the measure it compares (``aspect:<name>`` compares that aspect's Vers)
GATE_MEASURES = {"spec": "Spec", "spec_nll": "SpecNLL", "vers": "Vers", "vers_m": "VersM", "drift": "Drift"}
TESTS = ("point", "ci")
#: the measures of a new row's standing among the stored baselines (rank by the first)
STANDING_MEASURES = ("Uni", "Spec", "Vers")


def _comparison(metric: str, new: dict, ref: dict, n_boot: int, seed: int) -> stats.Comparison:
    """The paired comparison (new - baseline) of one gate metric, through the statistics layer."""
    aspects = new["metrics"]["aspects_tasks"]
    if metric.startswith("aspect:"):
        aspect = metric.split(":", 1)[1]
        if aspect not in aspects:
            raise ValueError(f"gate {metric!r}: no aspect {aspect!r} (have {sorted(aspects)})")
        measure, aspects = "Vers", {aspect: aspects[aspect]}
    elif metric in GATE_MEASURES:
        measure = GATE_MEASURES[metric]
    else:
        raise ValueError(f"unknown gate metric {metric!r}; known: {sorted(GATE_MEASURES)} and aspect:<name>")
    c = compare_rows(record(new), record(ref), measure, aspects, n_boot=n_boot, seed=seed)
    if c is None:
        raise ValueError(f"gate {metric}: the new run or the stored baseline has no {measure} items (written "
                         f"before the measure existed): refresh the suite's baselines with --refresh")
    return c


def _detectable(c: stats.Comparison, test: str, max_drop: float) -> float:
    """The smallest regression (in the metric's unit) the gate fails with 80% power at this n and spread."""
    return max_drop + (c.mde if test == "ci" else 0.0)


def compare(new: dict, ref: dict, gates: dict[str, dict], n_boot: int = 1000, seed: int = 1234) -> list[dict]:
    """One verdict entry per gated metric of a new run's metrics against a stored baseline's.

    Gate ``{"test": "point", "max_drop": x}``: fail when the new value is worse than the baseline by more
    than x. Gate ``{"test": "ci", "max_drop": x}``: fail only when the whole paired 95% CI of the
    difference lies beyond x in the worse direction (significantly worse). ``max_drop`` is in the
    metric's unit (points for scores, nats per token for spec_nll and drift). Every entry carries the
    comparison's verdict, its MDE and the smallest regression the gate would detect (``detectable``).
    """
    entries = []
    for metric, gate in gates.items():
        test, max_drop = gate.get("test", "point"), float(gate.get("max_drop", 0.0))
        if test not in TESTS:
            raise ValueError(f"gate {metric}: test must be one of {TESTS}, got {test!r}")
        c = _comparison(metric, new, ref, n_boot, seed)
        direction = +1 if c.higher_is_better else -1
        diff, lo, hi = c.delta, c.lo, c.hi
        value = stats.point(*_point_args(metric, new))
        base = value - diff
        word = "higher" if direction > 0 else "lower"
        entry = {"metric": metric, "new": value, "baseline": base, "diff": diff, "ci95": [lo, hi],
                 "better": word, "test": test, "max_drop": max_drop, "verdict": c.verdict, "mde": c.mde,
                 "detectable": _detectable(c, test, max_drop), "items": c.items}
        if not (math.isfinite(value) and math.isfinite(base)):
            entry |= {"passed": False, "reason": f"{metric} is not finite (new {value}, baseline {base})"}
        else:
            worse = -direction * diff  # > 0: worse than the baseline
            best_case = -direction * (hi if direction > 0 else lo)  # the CI end closest to "not worse"
            passed = worse <= max_drop if test == "point" else best_case <= max_drop
            detail = (f"{metric} {value:.3f} vs baseline {base:.3f} (diff {diff:+.3f}, 95% CI [{lo:+.3f}, {hi:+.3f}];"
                      f" {word} is better; detects a regression of {entry['detectable']:.3g})")
            if passed:
                reason = f"{detail}: within tolerance {max_drop:g} ({test})"
            elif test == "point":
                reason = f"{detail}: worse by {worse:.3f} > allowed {max_drop:g}"
            else:
                reason = f"{detail}: the whole CI is worse by more than {max_drop:g} (significant regression)"
            entry |= {"passed": bool(passed), "reason": reason}
        entries.append(entry)
    return entries


def standing(new: dict, stored: dict[str, dict], n_boot: int = 1000, seed: int = 1234) -> dict:
    """Where a new run stands among stored baselines of its (model, task) (``{"method/variant": metrics}``): its
    rank by Uni, and per stored row its Uni, Spec, Vers with the paired difference (new - stored), 95% CI and
    verdict, Holm-corrected over all of them as one family."""
    found = verdicts.compare_block({name: record(m) for name, m in stored.items()}, record(new), STANDING_MEASURES,
                                   aspects=new["metrics"]["aspects_tasks"], reference_first=True, n_boot=n_boot,
                                   seed=seed)
    rows = {name: {"row": name, **{ms: value(m, ms) for ms in STANDING_MEASURES}, "vs_new": {}}
            for name, m in stored.items()}
    for (name, measure), c in found.items():
        rows[name]["vs_new"][measure] = {"delta": c.delta, "lo": c.lo, "hi": c.hi, "verdict": c.verdict,
                                         "p_adjusted": c.p_adjusted}
    uni = value(new, "Uni")
    return {"Uni": uni, "rank_uni": 1 + sum(r["Uni"] > uni for r in rows.values()), "of": len(rows) + 1,
            "rows": sorted(rows.values(), key=lambda r: -r["Uni"])}


def _standing_markdown(st: dict) -> list[str]:
    out = [f"Where it stands among the {st['of'] - 1} stored baselines: **rank {st['rank_uni']} of {st['of']} by "
           f"Uni** ({st['Uni']:.2f}). New minus stored, paired 95% CI, Holm-corrected over the table:", "",
           "| stored row | Uni | Spec | Vers | Uni diff | Spec diff | Vers diff |", "|---|---|---|---|---|---|---|"]
    for r in st["rows"]:
        cells = [verdicts.cell(r["vs_new"].get(m) or {}) for m in STANDING_MEASURES]
        out.append(f"| {r['row']} | {r['Uni']:.2f} | {r['Spec']:.2f} | {r['Vers']:.2f} | {' | '.join(cells)} |")
    return out + [""]


def _point_args(metric: str, new: dict):
    aspects = new["metrics"]["aspects_tasks"]
    if metric.startswith("aspect:"):
        a = metric.split(":", 1)[1]
        stat, keys = measure_stat("Vers", {a: aspects[a]})
    else:
        stat, keys = measure_stat(GATE_MEASURES[metric], aspects)
    data = record(new)["data"]
    return {k: data[k] for k in keys if k in data}, stat


def _gate_difference(entry: dict) -> str:
    """A gate's ``diff [95% CI]`` (its verdict has a column of its own)."""
    return verdicts.difference({"delta": entry["diff"], "lo": entry["ci95"][0], "hi": entry["ci95"][1]}, 3)


def to_markdown(verdict: dict) -> str:
    out = [f"# bench verdict: {verdict['method']}/{verdict['variant']} on suite {verdict['suite']}: "
           f"**{'PASS' if verdict['passed'] else 'FAIL'}**", "",
           f"Reference: stored `{verdict['reference']}` ({verdict['baselines']}).", ""]
    for block in verdict["blocks"]:
        out += [f"## {block['task']} · {block['model']}", "",
                "| metric | new | baseline | diff [95% CI] | verdict | gate | detects | result |",
                "|---|---|---|---|---|---|---|---|"]
        for e in block["metrics"]:
            out.append(f"| {e['metric']} ({e['better']} is better) | {e['new']:.3f} | {e['baseline']:.3f} | "
                       f"{_gate_difference(e)} | {e['verdict']} | {e['test']}, "
                       f"max drop {e['max_drop']:g} | {e['detectable']:.3g} | {'pass' if e['passed'] else '**FAIL**'} |")
        failed = [e["reason"] for e in block["metrics"] if not e["passed"]]
        out += [""] + [f"- FAIL: {r}" for r in failed] + ([""] if failed else [])
        if block.get("standing"):
            out += _standing_markdown(block["standing"])
    return "\n".join(out) + "\n"


# ---- the suite: config, stored baselines, the gate over files --------------------------------------

def suite_path(suite: str) -> Path:
    path = Path(suite) if suite.endswith((".yaml", ".yml")) else ROOT / "config" / "bench" / f"{suite}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in (ROOT / "config" / "bench").glob("*.yaml"))
        raise FileNotFoundError(f"bench suite not found: {path} (suites: {known})")
    return path


def load_suite(suite: str) -> tuple[str, Path, dict]:
    path = suite_path(suite)
    cfg = yaml.safe_load(path.read_text()) or {}
    bench = cfg.get("bench")
    if not isinstance(bench, dict) or "reference" not in bench or "gates" not in bench:
        raise ValueError(f"{path}: a bench suite needs `bench: {{reference: {{method, variant}}, gates: {{...}}}}`")
    ref = bench["reference"]
    if not any(m.get("method") == ref.get("method") and m.get("variant") == ref.get("variant")
               for m in cfg.get("methods", [])):
        raise ValueError(f"{path}: bench.reference {ref} is not one of the suite's methods")
    return path.stem, path, cfg


def metrics_targets(cfg: dict, method: str, variant: str) -> list[str]:
    """The ``metrics.json`` of one row for every (model, task) of a suite."""
    return [paths.fill(paths.METRICS, model=m, task=t, method=method, variant=variant)
            for m in cfg["models"] for t in cfg["tasks"]]


def baseline_rows(cfg: dict) -> list[dict]:
    """The suite's methods whose metrics are stored as baselines (sweeps are not)."""
    return [m for m in cfg["methods"] if not m.get("sweep")]


def baseline_file(baselines: Path, model: str, task: str, method: str, variant: str) -> Path:
    return Path(baselines) / model / task / method / f"{variant}.json"


def stored_files(bench_cfg: dict, model: str, task: str) -> list[Path]:
    """Every stored baseline of one (model, task), as the suite's ``MANIFEST.json`` (under
    ``bench_cfg["baselines"]``) lists them."""
    root = Path(bench_cfg["baselines"])
    files = read_json(root / "MANIFEST.json")["files"]
    return [root / f for f in files if Path(f).parts[:2] == (model, task)]


def reference_files(bench_cfg: dict, models: list[str], tasks: list[str]) -> list[Path]:
    """The stored reference baseline of every (model, task), under ``bench_cfg["baselines"]``."""
    ref = bench_cfg["reference"]
    return [baseline_file(bench_cfg["baselines"], m, t, ref["method"], ref["variant"]) for m in models for t in tasks]


def store_baselines(suite: str, metrics: list[str | Path], baselines_root: Path = BASELINES,
                    current: dict | None = None) -> Path:
    """Store the suite's metrics files as its frozen baselines (``<baselines_root>/<suite>/``, MANIFEST.json),
    keyed by the numerics fingerprint (``current``, default: this checkout's) that every one of them must carry.

    Raises:
        ValueError: a metrics file made by other numerics code (an output a refresh did not rerun), naming it.
    """
    name, path, _ = load_suite(suite)
    current = current or checkout_fingerprint()
    out = Path(baselines_root) / name
    files = []
    for source in metrics:
        m = read_metrics(source)
        if problem := _other_numerics(source, m["meta"].get("fingerprint"), current, "metrics file"):
            raise ValueError(f"{problem}; not stored: delete it (or the refresh's workdir) and refresh again")
        run = m["run"]
        dest = baseline_file(out, run["model"], run["task"], run["method"], run["variant"])
        write_json(dest, m)
        files.append(str(dest.relative_to(out)))
    write_json(out / "MANIFEST.json", {"suite": name, "suite_sha256": sha256_text(path.read_text()),
                                       "refreshed": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                       "git": m["meta"]["git"], "fingerprint": current, "files": sorted(files)})
    return out


@functools.cache
def checkout_fingerprint() -> dict:
    """This checkout's numerics fingerprint (:func:`cofitune.pipeline.fingerprint.fingerprint`), once a process."""
    return fingerprint(ROOT)


def _other_numerics(where, stored: dict | None, current: dict, what: str = "stored baseline") -> str | None:
    """Why ``what`` at ``where``, of fingerprint ``stored``, was made by other numerics code than ``current``
    (None: it was not)."""
    if not stored:
        return (f"{where}: {what} without a numerics fingerprint (written before baselines were keyed by it; "
                f"its meta.code_sha256 gates nothing)")
    if stored.get("sha256") == current["sha256"]:
        return None
    parts = ", ".join(changed_parts(stored, current)) or "none (the fingerprint's format changed)"
    return (f"{where}: {what} made with other numerics code (fingerprint {str(stored.get('sha256'))[:12]}, "
            f"this checkout {current['sha256'][:12]}): parts changed: {parts}")


def check_fresh(base_path: Path, suite: str, current: dict | None = None) -> None:
    """Refuse a stored baseline whose numerics fingerprint (``meta.fingerprint``) is not ``current`` (default:
    this checkout's, :func:`cofitune.pipeline.fingerprint.fingerprint`), naming the parts that changed: its
    numbers may be stale. Docstrings, comments, plots and tables do not count."""
    problem = _other_numerics(base_path, read_metrics(base_path)["meta"].get("fingerprint"),
                              current or checkout_fingerprint())
    if problem:
        raise ValueError(f"{problem}; refresh with `python tools/bench.py --suite {suite} --refresh`")


def check_baselines(suite: str, cfg: dict, baselines: Path, current: dict | None = None) -> None:
    """Before any job runs: the suite has stored baselines, its reference is among them, and they were made by
    this checkout's numerics code (the MANIFEST's fingerprint and each reference's; ``current``: default this
    checkout's)."""
    manifest = Path(baselines) / "MANIFEST.json"
    if not manifest.is_file():
        raise FileNotFoundError(f"no stored baselines for suite {suite!r} in {baselines}: run "
                                f"`python tools/bench.py --suite {suite} --refresh` first")
    current = current or checkout_fingerprint()
    if problem := _other_numerics(manifest, read_json(manifest).get("fingerprint"), current):
        raise ValueError(f"{problem}; refresh with `python tools/bench.py --suite {suite} --refresh`")
    for base_path in reference_files({**cfg["bench"], "baselines": baselines}, cfg["models"], cfg["tasks"]):
        if not base_path.is_file():
            raise FileNotFoundError(f"stored baseline missing: {base_path} (refresh suite {suite!r})")
        check_fresh(base_path, suite, current)


def candidate_overlay(suite: str, method: str, *, variant: str, params: dict, train: dict, seed: int | None,
                      plugins: list[str], baselines: Path) -> dict:
    """The config overlay that adds the candidate row to a suite and names it (and the stored baselines) for
    the ``bench_verdict`` target (rules/bench.smk)."""
    entry = {"method": method, "variant": variant, "params": params, "train": train}
    if seed is not None:
        entry["seed"] = seed
    return {"methods": [entry], "search": {"enabled": False},
            "method_plugins": [str(Path(p).resolve()) for p in plugins],
            "bench": {"suite": suite, "candidate": {"method": method, "variant": variant},
                      "baselines": str(Path(baselines).resolve())}}


def gate(bench_config: str | Path, metrics: list[str | Path]) -> dict:
    """The verdict of the candidate row (its ``metrics.json`` for every (model, task), in the suite's order)
    against the stored reference: the ``bench`` stage config names the suite, gates, candidate and baselines."""
    cfg = read_json(bench_config)
    bench, cand = cfg["bench"], cfg["bench"]["candidate"]
    suite = bench["suite"]
    pairs = [(m, t) for m in cfg["models"] for t in cfg["tasks"]]
    if len(metrics) != len(pairs):
        raise ValueError(f"{bench_config}: {len(pairs)} (model, task) pairs but {len(metrics)} metrics files")
    blocks = []
    for (model, task), path, base_path in zip(pairs, metrics, reference_files(bench, cfg["models"], cfg["tasks"])):
        new = read_metrics(path)
        if (new["run"]["model"], new["run"]["task"], new["run"]["method"], new["run"]["variant"]) != (
                model, task, cand["method"], cand["variant"]):
            raise ValueError(f"{path}: not the candidate {cand['method']}/{cand['variant']} on {model}/{task}")
        stored = {}
        for path_ in [base_path, *stored_files(bench, model, task)]:
            check_fresh(path_, suite)
            m = read_metrics(path_)
            stored[f"{m['run']['method']}/{m['run']['variant']}"] = m
        blocks.append({"model": model, "task": task, "metrics": compare(new, read_metrics(base_path), bench["gates"]),
                       "standing": standing(new, stored)})
    ref = bench["reference"]
    return {"suite": suite, "method": cand["method"], "variant": cand["variant"],
            "setting": {"params": new["run"]["params"], "seed": new["run"]["seed"],
                        "train": new["meta"]["run_config"].get("train")}, "reference": f"{ref['method']}/{ref['variant']}",
            "baselines": bench["baselines"], "passed": all(e["passed"] for b in blocks for e in b["metrics"]),
            "blocks": blocks}


def write_verdict(verdict: dict, json_path: str | Path, md_path: str | Path) -> None:
    write_json(json_path, verdict)
    atomic_write_text(md_path, to_markdown(verdict))


def parse_mapping(text: str | None, what: str) -> dict:
    """A JSON object from the command line (``--params``/``--train``), with an error naming the flag."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{what}: not valid JSON ({err.msg}): {text!r}") from err
    if not isinstance(value, dict):
        raise ValueError(f"{what}: expected a JSON object, got {text!r}")
    return value
