"""Half Fine-Tuning (Hui et al., "HFT: Half Fine-Tuning for Large Language Models", 2024): half of the
parameter matrices are frozen, chosen at random at category level: in every decoder layer, half of the
attention projections (2 of q/k/v/o) and half of the FFN projections (1 or 2 of gate/up/down, a seeded coin
per layer, so half on average) train; the rest keep their values bit for bit.

Deviations: the choice is drawn once per run from ``seed`` (the paper redraws it per training stage; a single
SFT run has one stage) and recorded in the checkpoint's trainable list; the embeddings and norms, which are in
neither category, train as in Full SFT.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from cofitune.core.methods import Method, register

ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
FFN = ("gate_proj", "up_proj", "down_proj")


def half_choice(n_layers: int, seed: int) -> dict[int, tuple[str, ...]]:
    """Layer -> the projections that train: 2 of the 4 attention ones, and 1 or 2 of the 3 FFN ones."""
    rng = random.Random(seed)
    out = {}
    for layer in range(n_layers):
        n_ffn = rng.choice((1, 2))
        out[layer] = tuple(sorted(rng.sample(ATTENTION, 2))) + tuple(sorted(rng.sample(FFN, n_ffn)))
    return out


@register("hft")
@dataclass(frozen=True)
class HFT(Method):
    """Args: seed (the draw of the trained half; the same seed, the same half)."""

    seed: int = 0

    def trainable(self, model):
        from cofitune.core.selection import LAYER_PARAM

        chosen = half_choice(model.config.num_hidden_layers, self.seed)
        names = set()
        for name, _ in model.named_parameters():
            m = LAYER_PARAM.search(name)
            if m is not None and m.group(2) in ATTENTION + FFN:
                if m.group(2) in chosen[int(m.group(1))]:
                    names.add(name)
            elif ".layers." not in name or "norm" in name:  # embeddings, norms (Qwen3's q/k_norm too): neither
                names.add(name)
        return names
