"""The training recipe as data: :class:`TrainConfig`, its defaults and checks, with no torch import (the
workflow validates every row's recipe when it parses the DAG; :mod:`cofitune.core.trainer` runs it)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

#: multi-rank strategies under torchrun (:mod:`cofitune.core.distributed`)
STRATEGIES = ("ddp", "fsdp2")


def check_bf16(setting) -> None:
    """``train.bf16`` is exactly true, false or "auto" (identity: 1 and 0 are not booleans here)."""
    if not (setting is True or setting is False or setting == "auto"):
        raise ValueError(f"train.bf16 = {setting!r}; expected true, false or \"auto\"")


@dataclass(frozen=True)
class TrainConfig:
    """Training recipe. Release defaults: lr 4e-5, 3 epochs, batch 256, max length 512 (the demo
    shrinks them to fit 2 CPU cores; see config/config.yaml)."""

    epochs: float = 3.0
    lr: float = 4e-5
    micro_batch: int = 8
    grad_accum: int = 32
    max_length: int = 512
    warmup_ratio: float = 0.03
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    clip: float | None = 1.0
    train_on_prompt: bool = False
    bf16: bool | str = False  # True | False | "auto" (bf16 autocast iff the device computes bf16 natively)
    template: str = "alpaca"
    seed: int = 1234
    max_steps: int | None = None
    distributed: str = "ddp"  # multi-rank strategy under torchrun: "ddp" or "fsdp2" (cofitune.core.distributed)

    def __post_init__(self):
        check_bf16(self.bf16)
        if self.distributed not in STRATEGIES:
            raise ValueError(f"train.distributed = {self.distributed!r}; expected one of {STRATEGIES}")
        checks = {"epochs": self.epochs > 0, "lr": self.lr > 0, "micro_batch": self.micro_batch >= 1,
                  "grad_accum": self.grad_accum >= 1, "max_length": self.max_length >= 8,
                  "warmup_ratio": 0 <= self.warmup_ratio < 1, "weight_decay": self.weight_decay >= 0,
                  "clip": self.clip is None or self.clip > 0,
                  "max_steps": self.max_steps is None or self.max_steps >= 1}
        for key, ok in checks.items():
            if not ok:
                raise ValueError(f"train.{key} = {getattr(self, key)!r} is out of range")


def config_from_dict(d: dict, where: str = "train") -> TrainConfig:
    """Build a :class:`TrainConfig`, rejecting unknown keys with the full key path."""
    known = set(TrainConfig.__dataclass_fields__)
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")
    d = dict(d)
    if "betas" in d:
        d["betas"] = tuple(d["betas"])
    return TrainConfig(**d)


def describe(cfg: TrainConfig) -> dict:
    return asdict(cfg)
