"""Stage ``prepare-probe``: the drift probe of one model, its prompts and the base model's greedy
continuations (token ids), which ``evaluate`` scores every row against."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from cofitune.pipeline.io import write_json
from cofitune.pipeline.stage_configs import ProbeStage

log = logging.getLogger(__name__)


def run(cfg: ProbeStage, model_dir: str | Path, data_dir: str | Path, out: str | Path) -> dict:
    """The drift probe of one model: its prompts and the base model's greedy continuations (token ids)."""
    from cofitune.core.distributed import device
    from cofitune.pipeline.drift import greedy_continuations
    from cofitune.pipeline.model import load_base
    from cofitune.pipeline.probe import probe_prompts
    from cofitune.pipeline.provenance import collect

    t0 = time.perf_counter()
    prompts = probe_prompts(data_dir)
    model, tok = load_base(model_dir)
    model.to(device()).eval()
    items = greedy_continuations(model, tok, [p["prompt"] for p in prompts], max_new_tokens=cfg.max_new_tokens,
                                 max_prompt_tokens=cfg.max_prompt_tokens, batch_size=cfg.batch_size)
    n_tokens = sum(len(it["continuation_ids"]) for it in items)
    log.info("drift probe: %d prompts, %d continuation tokens (max %d each)", len(items), n_tokens, cfg.max_new_tokens)
    probe = {"items": [{**p, **it} for p, it in zip(prompts, items)], "max_new_tokens": cfg.max_new_tokens,
             "max_prompt_tokens": cfg.max_prompt_tokens,
             "meta": collect(wall_s=round(time.perf_counter() - t0, 2))}
    write_json(out, probe)
    return probe
