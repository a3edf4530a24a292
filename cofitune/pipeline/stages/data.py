"""Stage ``prepare-data``: one task of the task sheet normalised to ``{instruction, input, output}`` splits."""

from __future__ import annotations

import logging
from pathlib import Path

from cofitune.pipeline.stage_configs import DataStage

log = logging.getLogger(__name__)


def run(cfg: DataStage, out: str | Path) -> dict:
    """Write the task's train/test JSONL and meta.json into ``out``."""
    from cofitune.pipeline.data import prepare_task

    meta = prepare_task(cfg.spec, out, n_train=cfg.n_train, n_test=cfg.n_test, seed=cfg.seed)
    log.info("task %s: %s", cfg.task, {k: v["n"] for k, v in meta["splits"].items()})
    return meta
