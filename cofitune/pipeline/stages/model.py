"""Stage ``prepare-model``: one entry of the model sheet materialised as a safetensors folder."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


def run(sheet: str | Path, name: str, out: str | Path, meta: str | Path) -> dict:
    """Write model ``name`` of the sheet to ``out`` and its record (sha256, sanity generation) to ``meta``."""
    from cofitune.pipeline.model import prepare_model
    from cofitune.pipeline.sheets import read_sheet

    record = prepare_model(name, read_sheet(sheet), out, meta, sheet_path=sheet)
    log.info("prepared %s (%d layers, %.1fM params); sanity answer: %r", name, record["n_layers"],
             record["n_params"] / 1e6, record["sanity"]["answer"])
    return record
