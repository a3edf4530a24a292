"""The rows of a config: ``methods`` entries expanded over sweeps and seeds, each run's method instance,
its sources (post-hoc methods), and the tree search's trial runs (:func:`trial_variant`)."""

from __future__ import annotations

from pathlib import Path

from cofitune.core.methods import get_method
from cofitune.core.region import Region
from cofitune.core.search import SEARCH_TRIAL_METHOD


def plugin_paths(config: dict, root: str | Path = ".") -> list[str]:
    return [str((Path(root) / p).resolve()) for p in config.get("method_plugins", [])]


def seed_suffix(seed: int | None, base_seed: int | None = None) -> str:
    """The variant suffix of a seeded run: none for unseeded runs and for the config's own ``seed`` (that run
    is the unseeded row's run, so adding seeds to a finished run reuses it)."""
    return "" if seed is None or seed == base_seed else f"{SEED_PREFIX}{seed}"


def expand_runs(methods: list[dict], seeds: list[int] | None = None, base_seed: int | None = None) -> list[dict]:
    """Expand ``sweep: {param: [v1, v2]}`` entries into one run per value (cartesian over params).

    The variant becomes ``<variant>-<param><value>`` so every row records its setting. With ``seeds``
    (config key ``seeds``), every run that trains or combines trained checkpoints is repeated once per
    seed as ``<variant>-seed<s>`` (``<variant>`` for ``base_seed``, the config's ``seed``); ``row`` keeps the
    unseeded variant that the table groups by. A row's own ``seeds`` list replaces the config's for that row
    (e.g. 3 seeds for the strongest rows only); a row's ``seed`` trains it under that one seed, unrepeated.
    """
    runs = []
    for i, run in enumerate(methods):
        if "seed" in run and "seeds" in run:
            raise ValueError(f"config key methods[{i}] ({run['method']}/{run['variant']}): give `seed` (one run) "
                             f"or `seeds` (one run per seed), not both")
        row_seeds = run.get("seeds", seeds)
        sweep = run.get("sweep") or {}
        combos = [{}]
        for key, values in sweep.items():
            if not isinstance(values, list) or not values:
                raise ValueError(f"config key methods[{i}].sweep.{key} must be a non-empty list")
            combos = [{**c, key: v} for c in combos for v in values]
        for combo in combos:
            variant = run["variant"] + "".join(f"-{k}{v}" for k, v in combo.items())
            entry = {"method": run["method"], "variant": variant, "row": variant, "_index": i, "seed": run.get("seed"),
                     "params": {**(run.get("params") or {}), **combo}, "train": run.get("train", {})}
            if row_seeds and entry["seed"] is None and _seeded(entry):
                runs += [{**entry, "variant": variant + seed_suffix(s, base_seed), "seed": s,
                          "seed_suffix": seed_suffix(s, base_seed)} for s in row_seeds]
            else:
                runs.append(entry)
    return runs


SEED_PREFIX = "-seed"


def _seeded(run: dict) -> bool:
    """Runs whose result depends on the training seed: trained ones and combinations of trained ones."""
    return get_method(run["method"]).kind != "reference"


def configured_runs(config: dict) -> list[dict]:
    """Every configured row of the table (sweeps and seeds expanded)."""
    return expand_runs(config["methods"], config.get("seeds"), config.get("seed"))


def run_sources(config: dict, method: str, variant: str) -> list[tuple[str, str]]:
    """(method, variant) of the checkpoints a post-hoc run combines, seeded like the run itself."""
    run = run_entry(config, method, variant)
    suffix = run.get("seed_suffix", "")
    return [(m, v + suffix) for m, v in get_method(method).from_params(run.get("params")).sources()]


def run_entry(config: dict, method: str, variant: str) -> dict:
    """A configured run, or a tree-search trial (``coarse_only`` / ``node.<modules>.<layers>``)."""
    region = Region.from_variant(variant)
    if region is not None and method == SEARCH_TRIAL_METHOD:
        return {"method": method, "variant": variant, "row": variant, "seed": None, "params": region.params}
    for run in configured_runs(config):
        if run["method"] == method and run["variant"] == variant:
            return run
    raise KeyError(f"no run {method}/{variant} in config key methods")


def trial_variant(config: dict, region: Region) -> str:
    """The run that trains a tree-search trial's region.

    A configured ``coarse_only`` row with exactly the node's region (same resolved params, no per-row
    ``train`` override, unseeded) trains what the trial would, so the trial is that row and the DAG
    trains the region once; otherwise the trial is its own run ``node.<modules>.<layers>``.
    """
    method = get_method(SEARCH_TRIAL_METHOD)
    want = method.from_params(region.params).describe()
    for run in configured_runs(config):
        if (run["method"] == SEARCH_TRIAL_METHOD and run["seed"] is None and not run.get("train")
                and method.from_params(run["params"]).describe() == want):
            return run["variant"]
    return region.variant


def reference_variant(config: dict, method: str) -> str:
    """The variant of the single configured run of ``method`` (e.g. the ``original`` reference)."""
    variants = [r["variant"] for r in configured_runs(config) if r["method"] == method]
    if len(variants) != 1:
        raise ValueError(f"config key methods: need exactly one {method!r} run as reference, found {variants}")
    return variants[0]


def method_for(config: dict, method: str, variant: str):
    """The configured method instance of a run."""
    return get_method(method).from_params(run_entry(config, method, variant).get("params"))


