"""Stage ``importance``: unit importance of one model on one task's training data, from the gate gradients of
the KL proxy (:func:`cofitune.core.importance.compute_importance`)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from cofitune.pipeline.stage_configs import ImportanceStage

log = logging.getLogger(__name__)


def run(cfg: ImportanceStage, model_dir: str | Path, data: str | Path, out: str | Path) -> dict:
    """Write raw and normalised importance over the first ``cfg.n_examples`` of ``data`` (all when None) to
    ``out``.

    Under torchrun each rank takes a shard of the batches with per-batch dropout streams (``seed`` + batch
    index); one process keeps the single global stream. Returns the file's metadata.
    """
    import torch

    from cofitune.core import distributed
    from cofitune.core.importance import compute_importance
    from cofitune.core.recipe import TrainConfig
    from cofitune.core.trainer import batches, tokenize_example
    from cofitune.pipeline.artifacts import save_importance
    from cofitune.pipeline.data import read_examples
    from cofitune.pipeline.model import load_base

    with distributed.session() as multi:
        seed = cfg.seed
        torch.manual_seed(seed)
        model, tok = load_base(model_dir)
        model.to(distributed.device())
        tokens = TrainConfig(max_length=cfg.max_length, template=cfg.template, train_on_prompt=True)
        items = [t for t in (tokenize_example(e, tok, tokens) for e in read_examples(data)[:cfg.n_examples])
                 if t is not None]
        t0 = time.perf_counter()
        raw = compute_importance(model, list(batches(items, cfg.batch_size, tok.pad_token_id, seed=None)),
                                 dropout=cfg.dropout, kl_weight=cfg.kl_weight, abs_grad=cfg.abs_grad,
                                 seed=seed if multi else None, progress=distributed.is_main())
        meta = {"n_examples": len(items), "dropout": cfg.dropout, "kl_weight": cfg.kl_weight, "abs_grad": cfg.abs_grad,
                "wall_s": round(time.perf_counter() - t0, 2), "data": str(data)}
        if multi:
            meta |= {"world_size": distributed.world_size(), "dropout_seed": f"per batch: {seed} + index"}
        if distributed.is_main():
            save_importance(out, {k: v.cpu() for k, v in raw.items()}, meta)
            log.info("importance over %d examples in %.1fs -> %s", len(items), meta["wall_s"], out)
        distributed.barrier()
    return meta
