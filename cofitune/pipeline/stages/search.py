"""Stage ``search-level`` / ``search-grid``: one tree-search decision from the evaluated trials' metrics
(:mod:`cofitune.pipeline.search`), with its margin over the runner-up."""

from __future__ import annotations

import logging
from pathlib import Path

from cofitune.pipeline.artifacts import read_metrics, write_search_record

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


def run(trials: list[str | Path], original: str | Path, out: str | Path, *, criterion: str,
        min_vers_pct: float | None, uni: dict[str, float], level: int | None = None, parent: str | None = None,
        order: str | None = None) -> dict:
    """Decide one level below ``parent`` (a node id; None: the root) in the search ``order`` or, with ``level``
    None, over the whole grid; write the decision record to ``out``."""
    from cofitune.core.search import ROOT, Node
    from cofitune.pipeline.search import decide_grid, decide_level

    evaluated, base = read_trials(trials), read_metrics(original)
    if level is None:
        record, what = decide_grid(evaluated, base, criterion=criterion, min_vers_pct=min_vers_pct, uni=uni), "grid"
    elif order is None:
        raise ValueError(f"search level {level}: give the search order (range-first or module-first)")
    else:
        record = decide_level(level, ROOT if parent is None else Node.parse(parent), evaluated, base,
                              criterion=criterion, min_vers_pct=min_vers_pct, order=order, uni=uni)
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
