#!/usr/bin/env python3
"""Regression-benchmark a method against a bench suite's stored baselines (``config/bench/<suite>.yaml``).

    python tools/bench.py --suite smollm2 --method my_method --plugin my_method.py
    python tools/bench.py --suite tiny --refresh          # re-run the suite's methods, store their metrics

The candidate row is added to the suite by a config overlay and the DAG's ``bench_verdict`` target
(``rules/bench.smk``) gates it; this launcher runs Snakemake, prints the verdict and exits 0 on pass and 1 on
fail (2 on bad input). The gate itself is :mod:`cofitune.reporting.bench`.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cofitune.pipeline import paths  # noqa: E402
from cofitune.pipeline.io import atomic_write_text, read_json  # noqa: E402
from cofitune.pipeline.launch import offline_env  # noqa: E402
from cofitune.reporting import bench  # noqa: E402

log = logging.getLogger("cofitune.bench")


def snakemake(workdir: Path, configfiles: list[Path], targets: list[str], cores: int) -> None:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
           "--configfile", *map(str, configfiles), "--cores", str(cores), "--rerun-incomplete", *targets]
    env = offline_env(PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.run(cmd, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"snakemake failed ({proc.returncode}) in {workdir}; see its logs/ folder")


def refresh(suite: str, *, cores: int, workdir: Path | None) -> Path:
    """Run every method of the suite and store its metrics as the suite's frozen baselines."""
    name, path, cfg = bench.load_suite(suite)
    workdir = Path(workdir or ROOT / "results" / "bench" / name / "_baselines")
    targets = [t for m in bench.baseline_rows(cfg) for t in bench.metrics_targets(cfg, m["method"], m["variant"])]
    snakemake(workdir, [path], targets, cores)
    return bench.store_baselines(suite, [workdir / t for t in targets])


def run_bench(suite: str, method: str, *, variant: str, params: dict, train: dict, seed: int | None,
              plugins: list[str], cores: int, workdir: Path | None) -> dict:
    """Add ``method`` to the suite, build its verdict, return it."""
    name, path, cfg = bench.load_suite(suite)
    stored = bench.BASELINES / name
    bench.check_baselines(name, cfg, stored)  # before any job runs
    workdir = Path(workdir or ROOT / "results" / "bench" / name / f"{method}-{variant}")
    workdir.mkdir(parents=True, exist_ok=True)
    verdict_json, verdict_md = (workdir / f"{paths.BENCH_VERDICT}.{ext}" for ext in ("json", "md"))
    for old in (verdict_json, verdict_md):  # a reused workdir: no earlier verdict survives a failed run
        old.unlink(missing_ok=True)
    overlay = workdir / "bench_overlay.yaml"
    atomic_write_text(overlay, yaml.safe_dump(bench.candidate_overlay(
        name, method, variant=variant, params=params, train=train, seed=seed, plugins=plugins, baselines=stored),
        sort_keys=False))
    snakemake(workdir, [path, overlay], [str(verdict_json.relative_to(workdir))], cores)
    return read_json(verdict_json)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tools/bench.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--suite", required=True, help="suite name under config/bench/ or a YAML path")
    p.add_argument("--method", help="registered method name (add --plugin for a method in its own file)")
    p.add_argument("--variant", default="bench", help="variant name of the new row (default: bench)")
    p.add_argument("--params", help="method params as a JSON object")
    p.add_argument("--train", help="train overrides for this row as a JSON object, e.g. '{\"lr\": 1e-4}'")
    p.add_argument("--seed", type=int, default=None, help="training seed of the new row (default: the suite's)")
    p.add_argument("--plugin", action="append", default=[], help="method file to load (repeatable)")
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--workdir", type=Path, default=None,
                   help="Snakemake working directory (default: results/bench/<suite>/<method>-<variant>)")
    p.add_argument("--refresh", action="store_true", help="re-run the suite's methods and store their metrics")
    return p


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if a.refresh:
            log.info("stored baselines of suite %s -> %s", a.suite, refresh(a.suite, cores=a.cores, workdir=a.workdir))
            return 0
        if not a.method:
            raise ValueError("tools/bench.py: give --method NAME (or --refresh to store the suite's baselines)")
        verdict = run_bench(a.suite, a.method, variant=a.variant, params=bench.parse_mapping(a.params, "--params"),
                            train=bench.parse_mapping(a.train, "--train"), seed=a.seed, plugins=a.plugin,
                            cores=a.cores, workdir=a.workdir)
    except (ValueError, FileNotFoundError) as err:
        log.error("bench failed: %s", err)
        return 2
    print(bench.to_markdown(verdict))
    return 0 if verdict["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
