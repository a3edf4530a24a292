"""torchrun: 2 gloo ranks (DDP, FSDP2) train and compute importance exactly like one process.

One ``torch.distributed.run --nproc_per_node=2`` launch (module fixture) runs every scenario of
:data:`SCENARIOS` plus the ``train`` / ``importance`` CLI stages and saves the results; the tests compare
them with the same scenarios run here in a single process.
"""

from __future__ import annotations

import functools
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cofitune.core import distributed
from cofitune.core.importance import compute_importance, unit_shapes
from cofitune.core.methods.l2 import distance_penalty
from cofitune.core.recipe import TrainConfig
from cofitune.core.selection import trainable_names
from cofitune.core.softmask import SoftMask
from cofitune.core.trainer import IGNORE, batches, local_part, n_targets, tokenize_example, train
from cofitune.pipeline.artifacts import save_importance
from cofitune.pipeline.launch import offline_env
from tests.conftest import make_examples, tiny_llama, word_tokenizer

REPO = Path(__file__).resolve().parents[2]
WORLD = 2
# method -> (strategies run under torchrun); l2 under fsdp2 must be refused (its penalty holds full params)
SCENARIOS = {"full_sft": ("ddp", "fsdp2"), "update": ("ddp", "fsdp2"), "grad": ("ddp", "fsdp2"), "l2": ("ddp",)}
# 10 examples, micro_batch 3: micro-batches of 3,3,3,1 -> rank 1 gets an empty part (all-ignored stand-in)
TRAIN = dict(epochs=2, lr=1e-3, micro_batch=3, grad_accum=2, warmup_ratio=0.0, max_steps=3, max_length=64,
             clip=0.05)  # below every scenario's gradient norm: clipping (global norm) is active


def _tok():
    return word_tokenizer.__wrapped__()


def _importance(config) -> dict[str, torch.Tensor]:
    """Random importance with some rows exactly 1.0 (their mask is 0: fully protected)."""
    g = torch.Generator().manual_seed(3)
    imp = {k: torch.rand(s, generator=g) for k, s in unit_shapes(config).items()}
    imp["intermediate"][:, ::4] = 1.0
    imp["output"][:, ::5] = 1.0
    return imp


def setup_scenario(method: str, strategy: str = "ddp"):
    """(model, train kwargs) for one scenario; identical on every rank and in the single process."""
    model = tiny_llama()
    cfg = TrainConfig(**TRAIN, weight_decay=0.0 if method == "grad" else 0.1, distributed=strategy)
    names = {n for n, _ in model.named_parameters()} if method == "full_sft" else trainable_names(model, "all", "ffn")
    mask = reg = None
    if method in ("update", "grad"):
        mask = SoftMask.build(model, names, _importance(model.config), units=("up_proj", "down_proj"), target=method)
    if method == "l2":
        reg = distance_penalty(model, names, lam=1.0, power=2)
    return model, dict(tok=_tok(), examples=make_examples(10), names=names, cfg=cfg, softmask=mask,
                       regularizer=reg, progress=False)


class GradRecorder:
    """Stands in for the soft-mask hook of ``train``: applies the real mask (if any), then records the
    global gradient that clipping and the optimiser see (full tensors; a collective under FSDP2)."""

    def __init__(self, mask: SoftMask | None):
        self.mask, self.grads = mask, []

    def mask_grads(self, model) -> None:
        from torch.distributed.tensor import DTensor

        if self.mask is not None:
            self.mask.mask_grads(model)
        self.grads.append({n: (p.grad.full_tensor() if isinstance(p.grad, DTensor) else p.grad).cpu().clone()
                           for n, p in model.named_parameters() if p.grad is not None})

    def snapshot(self, model):
        return self.mask.snapshot(model) if self.mask is not None else None

    def mask_update(self, model, before) -> None:
        if self.mask is not None:
            self.mask.mask_update(model, before)


def run_scenario(method: str, strategy: str = "ddp") -> dict:
    model, kw = setup_scenario(method, strategy)
    recorder = kw["softmask"] = GradRecorder(kw["softmask"])
    result = train(model, **kw)
    state = distributed.full_tensors(model, {n for n, _ in model.named_parameters()})  # collective (FSDP2)
    return {"state": state, "grads": recorder.grads, "losses": result.losses, "tokens": result.tokens}


def importance_batches() -> list[dict]:
    tok = _tok()
    cfg = TrainConfig(train_on_prompt=True, max_length=64)
    items = [tokenize_example(e, tok, cfg) for e in make_examples(9, seed=1)]
    return list(batches(items, 2, tok.pad_token_id, seed=None))  # 5 batches: ranks get 3 and 2


def worker(out: str) -> None:
    """Body of each torchrun rank: every scenario, then the ``importance`` CLI stage.

    The stage joins the group already initialised here and destroys it at its end; a process group
    cannot be re-created under one torchrun launch, so each other CLI stage gets its own launch."""
    from cofitune.cli import main

    out = Path(out)
    distributed.init()
    r = distributed.rank()
    for method, strategies in SCENARIOS.items():
        for strategy in strategies:
            torch.save(run_scenario(method, strategy), out / f"{method}-{strategy}-rank{r}.pt")
    model, kw = setup_scenario("l2", "fsdp2")
    try:
        train(model, **kw)
    except ValueError as err:
        (out / f"l2-fsdp2-rank{r}.err").write_text(str(err))
    raw = compute_importance(tiny_llama(), importance_batches(), seed=7, progress=False)
    torch.save(raw, out / f"importance-rank{r}.pt")
    if main(json.loads((out / "cli.json").read_text())["importance"]) != 0:
        raise SystemExit(f"cofitune importance failed on rank {r}")


def _torchrun(out: Path, *args: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = offline_env(OMP_NUM_THREADS="1", MASTER_ADDR="127.0.0.1", TOKENIZERS_PARALLELISM="false",
                      CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={WORLD}",
                           "--master_addr=127.0.0.1", f"--master_port={port}", *args],
                          env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]


@pytest.fixture(scope="module")
def launched(tmp_path_factory) -> Path:
    """Three 2-rank gloo launches: :func:`worker`, and ``-m cofitune train`` with ddp and fsdp2.
    Returns the folder they wrote."""
    out = tmp_path_factory.mktemp("dist")
    cli = {k: [*argv, "--out", str(out / f"cli-{k}")] for k, argv in _cli_inputs(out).items()}
    cli["importance"][-1] += ".safetensors"
    (out / "cli.json").write_text(json.dumps(cli))
    script = out / "run_worker.py"
    script.write_text(f"import sys\nsys.path.insert(0, {str(REPO)!r})\n"
                      "from tests.unit.test_distributed import worker\nworker(sys.argv[1])\n")
    _torchrun(out, str(script), str(out))
    for strategy in ("ddp", "fsdp2"):
        _torchrun(out, "-m", "cofitune", *cli[f"train-{strategy}"])
    return out


def _cli_inputs(out: Path) -> dict[str, list[str]]:
    """A saved tiny model, a data file, an importance file and run configs for the CLI stages."""
    model_dir, tok = out / "model", _tok()
    model = tiny_llama()
    model.save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    data = out / "train.jsonl"
    data.write_text("".join(json.dumps(e) + "\n" for e in make_examples(10)))
    imp = out / "importance-in.safetensors"
    save_importance(imp, _importance(model.config), {"test": "1"})
    argv = {}
    for strategy in ("ddp", "fsdp2"):
        run = {"method": "cofitune", "kind": "trained", "train": {**TRAIN, "distributed": strategy},
               "params": {"layers": "all", "modules": "ffn", "mask_units": ["up_proj", "down_proj"],
                          "target": "update", "layout": "rows", "from_search": False}}
        (out / f"run-{strategy}.json").write_text(json.dumps(run))
        argv[f"train-{strategy}"] = ["train", "--run-config", str(out / f"run-{strategy}.json"), "--model-dir",
                                     str(model_dir), "--data", str(data), "--importance", str(imp)]
    argv["importance"] = ["importance", "--model-dir", str(model_dir), "--data", str(data), "--batch-size", "2"]
    return argv


@functools.cache
def single(method: str) -> dict:
    return run_scenario(method)


CASES = [(m, s) for m, strategies in SCENARIOS.items() for s in strategies]


@pytest.mark.parametrize("method,strategy", CASES)
def test_two_ranks_train_like_one_process(launched, method, strategy):
    ref, init = single(method), dict(tiny_llama().named_parameters())
    ranks = [torch.load(launched / f"{method}-{strategy}-rank{r}.pt") for r in range(WORLD)]
    _, kw = setup_scenario(method)
    assert len(ranks[0]["grads"]) == len(ref["grads"]) == TRAIN["max_steps"]
    for got, want in zip(ranks[0]["grads"], ref["grads"]):  # the gradient each step clips and applies
        assert got.keys() == want.keys() == kw["names"]
        for name, g in want.items():
            torch.testing.assert_close(got[name], g, rtol=1e-4, atol=1e-5 * float(g.abs().max()), msg=name)
    for name, p0 in init.items():
        got = ranks[0]["state"][name]
        torch.testing.assert_close(got, ref["state"][name], rtol=1e-5, atol=1e-5, msg=name)
        assert torch.equal(ranks[1]["state"][name], got), f"{name}: ranks disagree"
        if name not in kw["names"]:
            assert torch.equal(got, p0.detach()), f"frozen {name} changed"
    assert ranks[0]["tokens"] == ref["tokens"]
    torch.testing.assert_close(torch.tensor(ranks[0]["losses"]), torch.tensor(ref["losses"]), rtol=1e-5, atol=1e-6)
    if kw["softmask"] is not None:  # rows with importance 1.0 never move (grad target: weight decay is 0)
        for name, scale in kw["softmask"].scales.items():
            rows = scale.view(-1) == 0
            assert rows.any() and torch.equal(ranks[0]["state"][name][rows], init[name].detach()[rows]), name
            assert not torch.equal(ranks[0]["state"][name], init[name].detach()), f"{name} did not train"


def test_fsdp2_refuses_a_regularizer(launched):
    for r in range(WORLD):
        assert "train.distributed" in (launched / f"l2-fsdp2-rank{r}.err").read_text()


def test_two_rank_importance_equals_single_process(launched):
    ref = compute_importance(tiny_llama(), importance_batches(), seed=7, progress=False)
    for r in range(WORLD):
        got = torch.load(launched / f"importance-rank{r}.pt")
        for key in ref:
            torch.testing.assert_close(got[key], ref[key], rtol=1e-5, atol=1e-7, msg=key)


@pytest.mark.parametrize("strategy", ["ddp", "fsdp2"])
def test_cli_train_under_torchrun_saves_once_on_rank0(launched, strategy, tmp_path):
    from cofitune.cli import main

    argv = json.loads((launched / "cli.json").read_text())[f"train-{strategy}"]
    ckpt = launched / f"cli-train-{strategy}"
    assert main([*argv[:-2], "--out", str(tmp_path / "single")]) == 0
    got, ref = load_file(str(ckpt / "trainable.safetensors")), load_file(str(tmp_path / "single/trainable.safetensors"))
    assert got.keys() == ref.keys() and len(got) == 8  # up/down of 4 layers
    for name in ref:
        torch.testing.assert_close(got[name], ref[name], rtol=1e-5, atol=1e-5, msg=name)
    lines = (ckpt / "train_log.jsonl").read_text().splitlines()
    assert len(lines) == TRAIN["max_steps"]  # one writer: rank 0
    assert json.loads((ckpt / "trainable.json").read_text())["meta"]["world_size"] == WORLD
    assert not ckpt.with_name(ckpt.name + ".tmp").exists()


def test_cli_importance_under_torchrun_writes_one_file(launched):
    from safetensors import safe_open

    path = launched / "cli-importance.safetensors"
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
        shapes = {k: tuple(f.get_tensor(k).shape) for k in unit_shapes(tiny_llama().config)}
    assert meta["world_size"] == str(WORLD) and shapes == unit_shapes(tiny_llama().config)


def test_shard_and_row_block_by_hand():
    assert distributed.shard(list(range(7)), 0, 3) == [0, 3, 6]
    assert distributed.shard(list(range(7)), 2, 3) == [2, 5]
    assert distributed.shard([1], 1, 2) == []
    # DTensor Shard(0) uses torch.chunk: 5 rows over 4 ranks -> 2, 2, 1, 0
    assert [distributed.row_block(5, r, 4) for r in range(4)] == [slice(0, 2), slice(2, 4), slice(4, 5), slice(5, 5)]
    with pytest.raises(ValueError, match="rank"):
        distributed.shard([1, 2], 2, 2)


def test_a_rank_without_examples_gets_a_zero_loss_stand_in():
    micro = [{"input_ids": [5, 6, 7], "labels": [IGNORE, 6, 7]}]
    assert local_part(micro, 0, 2) == micro
    (stand_in,) = local_part(micro, 1, 2)
    assert stand_in["input_ids"] == [5, 6, 7] and n_targets([stand_in]) == 0
    weighted = [{**micro[0], "weight": 1.5}]  # a per-example weight (FLOW) survives, so collate can batch it
    (stand_in,) = local_part(weighted, 1, 2)
    assert stand_in["weight"] == 1.5 and n_targets([stand_in]) == 0


def test_without_torchrun_everything_is_single_process(monkeypatch):
    for key in distributed.ENV:
        monkeypatch.delenv(key, raising=False)
    assert distributed.init() is False
    assert (distributed.rank(), distributed.world_size(), distributed.is_main()) == (0, 1, True)
    assert distributed.all_reduce_float(2.5) == 2.5
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(RuntimeError, match="partial torchrun environment"):
        distributed.init()


def test_unknown_strategy_names_the_key():
    with pytest.raises(ValueError, match="train.distributed"):
        TrainConfig(distributed="zero3")
