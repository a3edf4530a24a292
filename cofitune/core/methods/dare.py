"""DARE (Yu et al., "Language Models are Super Mario: Absorbing Abilities from Homologous Models as a Free
Lunch", ICML 2024) of the fine-tuned run's task vector back onto the original, post-hoc like Wise-FT:
``theta = theta0 + weight * DARE(theta_ft - theta0)``: each task-vector entry is dropped with probability
``1 - density`` and the survivors rescaled by ``1 / density``. The merge math is PEFT's
(``peft.utils.merge_utils.dare_linear``); the drop draws from torch's generator seeded with ``seed`` per run.
``weight = 0`` is the original; ``density = 1, weight = 1`` the fine-tuned model (to float rounding).
"""

from __future__ import annotations

from dataclasses import dataclass

from cofitune.core.methods import register
from cofitune.core.methods.ties import TaskVectorMerge


@register("dare")
@dataclass(frozen=True)
class DARE(TaskVectorMerge):
    """Args: weight, density (fraction of entries kept, then rescaled), source, seed (of the random drop)."""

    seed: int = 0

    def merge(self, task_vector, weights):
        from peft.utils.merge_utils import dare_linear

        return dare_linear([task_vector], weights, self.density)

    def combine(self, model, sources):
        import torch

        torch.manual_seed(self.seed)
        return super().combine(model, sources)
