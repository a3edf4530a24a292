"""Stage ``prepare-data``: one task of the task sheet normalised to ``{instruction, input, output}`` splits."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


def run(sheet: str | Path, root: str | Path, task: str, out: str | Path, *, n_train: int, n_test: int,
        seed: int) -> dict:
    """Write ``task``'s train/test JSONL and meta.json into ``out`` (paths of the sheet relative to ``root``)."""
    from cofitune.pipeline.config import read_task_sheet
    from cofitune.pipeline.data import prepare_task

    tasks = read_task_sheet(sheet, root)
    if task not in tasks:
        raise ValueError(f"{sheet}: no task {task!r} (have {sorted(tasks)})")
    meta = prepare_task(tasks[task], out, n_train=n_train, n_test=n_test, seed=seed)
    log.info("task %s: %s", task, {k: v["n"] for k, v in meta["splits"].items()})
    return meta
