# cofitune: importance -> training (CoFiTune and baselines) -> speciality + versatility -> tables.
# Thin on purpose: decisions live in the cofitune package, where they are unit-tested.
from snakemake.utils import min_version, validate

min_version("9.0")

configfile: "config/config.yaml"
# `--config 'search={enabled: true}'` leaves nested scalars as strings; type them where the schema says so
from pathlib import Path

import yaml
from cofitune.pipeline.schema import coerce_cli_scalars

SCHEMA = Path(workflow.basedir, "workflow/schemas/config.schema.yaml")
for _key in coerce_cli_scalars(config, yaml.safe_load(SCHEMA.read_text())):
    logger.info(f"config: typed the --config string at {_key}")
validate(config, str(SCHEMA))

report: "workflow/report/workflow.rst"

include: "rules/common.smk"
include: "rules/model.smk"
include: "rules/data.smk"
include: "rules/importance.smk"
include: "rules/train.smk"
include: "rules/search.smk"
include: "rules/evaluate.smk"
include: "rules/aggregate.smk"
include: "rules/plots.smk"
include: "rules/bench.smk"

# Light bookkeeping runs on the submitting node, never as a cluster job (SLURM profile).
localrules: search_level, search_grid, choose_region, resolve_region, aggregate_results,
    plot_pareto, plot_search, plot_importance, all, search, bench_verdict


rule all:
    input:
        rules.aggregate_results.output,
        search_targets(),
        plot_targets(),
    default_target: True


rule search:
    """`snakemake search`: only the tree search (trials, level files, chosen.json)."""
    input:
        expand(P.CHOSEN, model=config["models"], task=config["tasks"]),
