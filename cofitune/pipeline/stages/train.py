"""Stage ``train``: one row's checkpoint, by training (the method's ``kind`` is ``trained``) or by combining source
checkpoints (``post_hoc``: Wise-FT), with its provenance in the checkpoint index."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from cofitune.pipeline.artifacts import TRAIN_CONFIG_FIELDS, read_run_config
from cofitune.pipeline.config import config_sha256
from cofitune.pipeline.io import atomic_path, publish

log = logging.getLogger(__name__)


def run(run_config: str | Path, model_dir: str | Path, data: str | Path, out: str | Path, *,
        importance: list[str | Path] = (), sources: list[str | Path] = ()) -> dict:
    """Build the checkpoint folder ``out`` of the row whose resolved run config is ``run_config``.

    Under torchrun every rank trains (``train.distributed``: ddp or fsdp2) and rank 0 alone writes; a post-hoc
    row is combined on rank 0 while the others wait. Returns the checkpoint index (``{}`` on other ranks).
    """
    from cofitune.core import distributed

    cfg = read_run_config(run_config, TRAIN_CONFIG_FIELDS)
    kind = cfg["kind"]
    with distributed.session():  # torchrun: the process group over all ranks; one process: nothing
        if kind == "trained":
            return _train(cfg, run_config, model_dir, data, list(importance), out)
        if kind == "post_hoc" and sources:
            index = _combine(cfg, run_config, model_dir, list(sources), out) if distributed.is_main() else {}
            distributed.barrier()
            return index
    raise ValueError(f"{run_config}: a {kind} run has no checkpoint to build"
                     + (" (post_hoc: --sources is empty)" if kind == "post_hoc" else ""))


def _trained_method(cfg: dict, where) -> tuple:
    """The method instance and training recipe of a run config that trains, checked before anything loads."""
    from cofitune.core.methods import get_method, load_plugins
    from cofitune.core.recipe import config_from_dict

    load_plugins(cfg.get("plugins", []))
    method = get_method(cfg["method"]).from_params(cfg["params"], where=f"{where}: params")
    if method.kind != "trained":
        raise ValueError(f"{where}: method {cfg['method']!r} is {method.kind}: it does not train")
    if method.from_search and "region" not in cfg:
        raise ValueError(f"{where}: a from_search row's config has no region: resolve it with the search's "
                         "chosen.json first (python -m cofitune resolve-region)")
    return method, config_from_dict(cfg["train"], where=f"{where}: train")


def _train_summary(result) -> dict:
    """What a checkpoint records of its training (the per-step losses are in its train_log.jsonl)."""
    summary = {k: v for k, v in vars(result).items() if k != "losses"}
    summary["trainable_fraction"] = result.n_trainable / result.n_params
    log.info("trained %d steps, %.0f tok/s, %d/%d params (%.2f%%), final loss %.4f", result.steps,
             result.tokens_per_s, result.n_trainable, result.n_params, 100 * summary["trainable_fraction"],
             result.final_loss)
    return summary


def _train(cfg: dict, run_config: str | Path, model_dir: str | Path, data: str | Path,
           importance: list[str | Path], out: str | Path) -> dict:
    """Train the run described by its run config (the train view) and save only its trainable tensors into ``out``.

    A ``from_search`` row's config must be resolved first (:func:`cofitune.pipeline.config.resolve_region`:
    the search's chosen region written into its params). Under torchrun (an initialised process group) every
    rank trains; rank 0 alone writes the log and the checkpoint (FSDP2: the trained tensors are gathered and
    loaded into a fresh base model on rank 0), the others wait at a barrier and return ``{}``.
    """
    from cofitune.core import distributed
    from cofitune.core.recipe import describe
    from cofitune.core.trainer import train
    from cofitune.pipeline.artifacts import load_importance
    from cofitune.pipeline.data import read_examples
    from cofitune.pipeline.model import load_base, save_trainable
    from cofitune.pipeline.provenance import collect

    method, train_cfg = _trained_method(cfg, run_config)
    multi, main = distributed.world_size() > 1, distributed.is_main()
    model, tok = load_base(model_dir)
    target = distributed.device()  # this rank's device; one process: the GPU when there is one
    moved = target.type != "cpu" or multi
    if moved:  # before prepare/regularizer/softmask, so everything they capture lives on this device
        model.to(target)
    model = method.prepare(model)
    names = method.trainable(model)
    mask = None
    if method.needs_importance:
        if not importance:
            raise ValueError(f"method {cfg['method']!r} needs --importance files")
        mask = method.softmask(model, names, load_importance(importance, model.config))
    log.info("training %d tensors (%s ...)", len(names), ", ".join(sorted(names)[:3]))
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    if main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    result = train(model, tok, read_examples(data), names, train_cfg, softmask=mask,
                   regularizer=method.regularizer(model, names), objective=method.objective, optimizer_step=method.optimizer_step,
                   log_path=tmp / "train_log.jsonl" if main else None, progress=main)
    if multi and train_cfg.distributed == "fsdp2":
        # collective: all ranks gather; rank 0 gets a fresh CPU model holding the trained tensors
        model = distributed.gather_to_main(model, names, lambda: method.prepare(load_base(model_dir)[0]))
    if not main:
        distributed.barrier()  # rank 0 saves and publishes, then joins this barrier
        return {}
    model, saved = method.finalize(model.cpu(), names) if moved else method.finalize(model, names)
    extra = {"run": cfg, "train": _train_summary(result), "train_config": describe(train_cfg),
             "importance": [str(p) for p in importance],
             "meta": collect(config_sha256=config_sha256(cfg))}
    if multi:
        extra["meta"]["world_size"] = distributed.world_size()
    save_trainable(model, saved, tmp, extra, n_trainable=result.n_trainable)
    publish(tmp, out)
    distributed.barrier()
    return extra


def _combine(cfg: dict, run_config: str | Path, model_dir: str | Path, sources: list[str | Path],
             out: str | Path) -> dict:
    """Post-hoc methods (Wise-FT): build weights from source checkpoints, save like a trained run."""
    from cofitune.core.methods import get_method, load_plugins
    from cofitune.pipeline.model import load_base, load_trainable, save_trainable
    from cofitune.pipeline.provenance import collect

    load_plugins(cfg.get("plugins", []))
    method = get_method(cfg["method"]).from_params(cfg["params"], where=f"{run_config}: params")
    model, _ = load_base(model_dir)
    names = method.combine(model, [load_trainable(s) for s in sources])
    extra = {"run": cfg, "sources": [str(s) for s in sources], "train": None,
             "meta": collect(config_sha256=config_sha256(cfg))}
    with atomic_path(out) as tmp:
        save_trainable(model, names, tmp, extra, n_trainable=0)
    return extra
