"""Which versatility suites carry signal on a model: the table behind the demo's choice of suites (issue 26).

Reads the ``metrics.json`` of the original and of Full SFT, evaluated on every candidate suite
(``config/instruments.yaml``), and writes, per suite:

* the original's score, the suite's chance level and the original's margin over it [95% CI];
* Full SFT's paired effect on the suite's score, its standard error and ``|effect| / SE`` (how decisively the suite
  sees what fine-tuning did), and the same for the continuous score (VersM's per-item margin) where there is one;
* the suite's evaluation time on the original (CPU-seconds: wall seconds x the cores the job had) and ``|z|`` per
  CPU-second and per square-root CPU-second (a z grows with the square root of the items, so the second is the
  one that ranks suites by signal bought per unit of compute);
* for IFEval at instruction level, the prompt level derived from the same generations (a prompt passes when it
  follows all of its instructions) and the share of answers the budget cut;
* whether each continuous candidate moves with accuracy where accuracy's change is decided: the margin, and a
  softmax over the summed log-likelihoods, both recomputed from the stored per-choice log-likelihoods.

Usage::

    python tools/instrument_candidates.py --original ORIGINAL/metrics.json --full-sft FULL/metrics.json \\
        --cores 2 --out docs/results/instruments-smollm2-135m-squad/candidates
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from cofitune import stats
from cofitune.stats import measures


def _mean_stat(key: str, scale: float = 100.0):
    return lambda d: scale * float(d[key].mean())


def _prompt_level(suite: dict) -> list[float]:
    """Prompt-level strict accuracy from instruction-level items and their prompt clusters."""
    by: dict = {}
    for item, cluster in zip(suite["items"], suite["clusters"]):
        by.setdefault(cluster, []).append(item)
    return [float(all(v == 1.0 for v in by[c])) for c in sorted(by)]


def _softmax_sum_gold(suite: dict) -> list[float]:
    """The gold choice's probability among the choices under a softmax over the summed log-likelihoods (the
    model's own probability of each choice), recomputed from the stored per-choice log-likelihoods."""
    out = []
    for lls, gold in zip(suite["ll_choices"], suite["gold"]):
        p = np.exp(np.array(lls) - max(lls))
        out.append(float(p[gold] / p.sum()))
    return out


def suite_row(name: str, orig: dict, full: dict, seconds: float, cores: int) -> dict:
    o, f = orig["metrics"]["suites"][name], full["metrics"]["suites"][name]
    clusters = {"x": o["clusters"]} if o.get("clusters") else None
    chance = o.get("chance")
    over = measures.over_chance({"data": {f"s:{name}": np.array([o["items"]])}}, name, chance, o.get("clusters"))
    effect = stats.compare({"x": f["items"]}, {"x": o["items"]}, _mean_stat("x"), clusters=clusters)
    cpu_s = seconds * cores
    z = abs(effect.delta) / effect.se if effect.se > 0 else math.inf
    row = {"suite": name, "metric": o["metric"], "n": o["n"], "chance": chance, "original": o["score"],
           "full_sft": f["score"], "over_chance": None if over is None else [over.delta, over.lo, over.hi],
           "over_chance_verdict": None if over is None else over.verdict,
           "effect": effect.delta, "se": effect.se, "effect_ci": [effect.lo, effect.hi], "verdict": effect.verdict,
           "z": z, "cpu_s": cpu_s, "z_per_cpu_s": z / cpu_s, "z_per_sqrt_cpu_s": z / math.sqrt(cpu_s),
           "flips": measures.flips({"data": {f"s:{name}": np.array([f["items"]])}},
                                   {"data": {f"s:{name}": np.array([o["items"]])}}, name)}
    if "margin" in o:
        m = stats.compare({"x": f["margin"]}, {"x": o["margin"]}, _mean_stat("x", 1.0))
        row |= {"margin_effect": m.delta, "margin_se": m.se, "margin_z": abs(m.delta) / m.se if m.se else math.inf,
                "margin_verdict": m.verdict, "margin_unit": o["margin_unit"]}
    if o.get("clusters"):
        po, pf = _prompt_level(o), _prompt_level(f)
        row |= {"prompt_level": {"original": 100 * float(np.mean(po)), "full_sft": 100 * float(np.mean(pf)),
                                 "n": len(po)}, "cut_share": {"original": o.get("cut_share"),
                                                              "full_sft": f.get("cut_share")}}
    return row


def agreement(orig: dict, full: dict) -> dict:
    """Per continuous candidate, its agreement with accuracy on the suites where accuracy's change is decided."""
    for run in (orig, full):
        for suite in run["metrics"]["suites"].values():
            if "ll_choices" in suite:
                suite["p_sum"] = _softmax_sum_gold(suite)
    return {key: measures.sign_agreement(full, orig, key) for key in ("margin", "p_sum")}


def markdown(rows: list[dict], cpu: str, agree: dict) -> str:
    head = ["Suite", "Metric", "n", "Chance", "Original", "Original − chance [95% CI]", "Full SFT", "Effect [95% CI]",
            "SE", "|z|", "CPU-s", "|z| / CPU-s", "|z| / √CPU-s", "Flips (lost/gained, p)", "Margin effect (|z|)"]
    out = [f"Candidates on the original and Full SFT (CPU: {cpu}).", "",
           "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        oc = "–" if r["over_chance"] is None else (f"{r['over_chance'][0]:+.1f} [{r['over_chance'][1]:+.1f}, "
                                                  f"{r['over_chance'][2]:+.1f}] {r['over_chance_verdict']}")
        fl = "–" if r["flips"] is None else f"−{r['flips']['lost']}/+{r['flips']['gained']} (p {r['flips']['p']:.2g})"
        mg = "–" if "margin_effect" not in r else f"{r['margin_effect']:+.4f} {r['margin_unit']} ({r['margin_z']:.2f})"
        out.append(f"| {r['suite']} | {r['metric']} | {r['n']} | {r['chance']:g} | {r['original']:.1f} | {oc} | "
                   f"{r['full_sft']:.1f} | {r['effect']:+.1f} [{r['effect_ci'][0]:+.1f}, {r['effect_ci'][1]:+.1f}] "
                   f"{r['verdict']} | {r['se']:.2f} | {r['z']:.2f} | {r['cpu_s']:.0f} | {r['z_per_cpu_s']:.4f} | "
                   f"{r['z_per_sqrt_cpu_s']:.3f} | {fl} | {mg} |")
    for r in rows:
        if "prompt_level" in r:
            pl, cut = r["prompt_level"], r["cut_share"]
            out += ["", f"{r['suite']}: prompt level from the same generations {pl['original']:.1f} (original) and "
                        f"{pl['full_sft']:.1f} (Full SFT) on {pl['n']} prompts; the budget cut "
                        f"{100 * cut['original']:.0f}% and {100 * cut['full_sft']:.0f}% of the answers."]
    for key, entries in agree.items():
        out += ["", f"Continuous score `{key}` against accuracy where accuracy's change is decided: "
                    + ("; ".join(f"{e['suite']} accuracy {e['accuracy']:+.1f}, {key} {e[key]:+.4f}: "
                                 f"{'agrees' if e['agrees'] else 'DISAGREES'}" for e in entries) or "no decided change")]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--original", required=True, type=Path)
    parser.add_argument("--full-sft", required=True, type=Path)
    parser.add_argument("--cores", type=int, required=True, help="the cores each evaluation job had")
    parser.add_argument("--out", required=True, type=Path, help="output stem: <out>.json and <out>.md")
    a = parser.parse_args(argv)
    orig, full = (json.loads(p.read_text()) for p in (a.original, a.full_sft))
    seconds = orig["meta"]["suite_seconds"]
    rows = [suite_row(n, orig, full, seconds[n], a.cores) for n in orig["metrics"]["suites"]]
    cpu = orig["meta"].get("device", {}).get("cpu", "unknown")
    agree = agreement(orig, full)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.with_suffix(".json").write_text(json.dumps({"cpu": cpu, "cores": a.cores, "suites": rows,
                                                      "agreement": agree,
                                                      "sources": [str(a.original), str(a.full_sft)]}, indent=1))
    a.out.with_suffix(".md").write_text(markdown(rows, cpu, agree))
    print(a.out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
