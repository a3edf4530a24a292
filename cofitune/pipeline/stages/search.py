"""Stage ``search-level`` / ``search-grid``: one tree-search decision from the evaluated trials' metrics
(:mod:`cofitune.pipeline.search`), with its margin over the runner-up."""

from __future__ import annotations

import logging
from pathlib import Path

from cofitune.pipeline.artifacts import read_metrics, write_search_record
from cofitune.pipeline.stage_configs import SearchStage

log = logging.getLogger(__name__)


def read_trials(paths: list[str | Path]) -> dict:
    """Region -> the trial's metrics, one trial per region."""
    from cofitune.pipeline.search import trial_node

    trials = {}
    for path in paths:
        m = read_metrics(path)
        node = trial_node(m, str(path))
        if node in trials:
            raise ValueError(f"{path}: a second trial of region {node.id}")
        trials[node] = m
    return trials


def run(cfg: SearchStage, trials: list[str | Path], original: str | Path, out: str | Path, *, grid: bool = False,
        previous: str | Path | None = None) -> dict:
    """Decide over the whole grid (``grid``), or one level of the tree below ``previous``'s choice (the previous
    level's record; None: level 1, below the root), in ``cfg.order``; write the decision record to ``out``."""
    from cofitune.core.region import Region
    from cofitune.core.search import ROOT
    from cofitune.pipeline.artifacts import read_search_record
    from cofitune.pipeline.search import decide_grid, decide_level

    evaluated, base = read_trials(trials), read_metrics(original)
    if grid:
        record = decide_grid(evaluated, base, criterion=cfg.criterion, min_vers_pct=cfg.min_vers_pct, uni=cfg.uni)
        what = "grid"
    else:
        parent, level = ROOT, 1
        if previous is not None:
            before = read_search_record(previous)
            parent, level = Region.from_record(before["chosen"], where=str(previous)), before["level"] + 1
        record = decide_level(level, parent, evaluated, base, criterion=cfg.criterion, min_vers_pct=cfg.min_vers_pct,
                              order=cfg.order, uni=cfg.uni)
        what = f"level {level}"
    write_search_record(out, record)
    _log_decision(what, record)
    return record


def _log_decision(what: str, record: dict) -> None:
    log.info("%s: %s -> %s", what, [v["node"] for v in record["visited"]], record["chosen"]["node"])
    margin = record["margin"]
    if margin is not None:
        lo, hi = margin["ci95"]
        (log.warning if margin["within_noise"] else log.info)(
            "%s: lead over %s on %s = %.2f, paired-bootstrap 95%% CI [%.2f, %.2f]%s", what, margin["runner_up"],
            margin["key"], margin["delta"], lo, hi, " -- within noise" if margin["within_noise"] else "")
