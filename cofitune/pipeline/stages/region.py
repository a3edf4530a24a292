"""Stage ``resolve-region``: a ``from_search`` row's config with the tree search's chosen region written in."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


def run(config: str | Path, chosen: str | Path, out: str | Path) -> dict:
    """Read the row's run (or train) config and ``chosen.json``; write the resolved config to ``out``."""
    from cofitune.pipeline.artifacts import read_run_config, read_search_record
    from cofitune.pipeline.config import resolve_region
    from cofitune.pipeline.io import write_json

    resolved = resolve_region(read_run_config(config), read_search_record(chosen), where=str(chosen))
    write_json(out, resolved)
    log.info("%s/%s trains %s (%s)", resolved["method"], resolved["variant"], resolved["region"], chosen)
    return resolved
