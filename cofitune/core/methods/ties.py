"""TIES merging (Yadav et al., "TIES-Merging: Resolving Interference When Merging Models", NeurIPS 2023) of the
fine-tuned run's task vector back onto the original, post-hoc like Wise-FT: ``theta = theta0 + weight *
TIES(theta_ft - theta0)``. The merge math is PEFT's (``peft.utils.merge_utils``): trim the task vector to its
``density`` fraction of largest magnitudes per tensor (a deviation from the paper's code, which trims the
flattened task vector as a whole), elect signs, disjoint mean. With the single task vector here, sign
election keeps every surviving entry, so TIES reduces to magnitude trimming plus scaling.
``weight = 0`` is the original; ``density = 1, weight = 1`` the fine-tuned model (to float rounding).
"""

from __future__ import annotations

from dataclasses import dataclass

from cofitune.core.methods import register
from cofitune.core.methods.wise_ft import FromSource


@dataclass(frozen=True)
class TaskVectorMerge(FromSource):
    """A post-hoc merge of one fine-tuned run's task vector onto the original (TIES, DARE)."""

    weight: float = 1.0
    density: float = 0.2

    def __post_init__(self):
        super().__post_init__()
        if not 0.0 < self.density <= 1.0:
            raise ValueError(f"density must be in (0, 1], got {self.density}")
        if self.weight < 0:
            raise ValueError(f"weight must be >= 0, got {self.weight}")

    def merge(self, task_vector, weights):
        raise NotImplementedError

    def combine(self, model, sources):
        import torch

        (tuned,) = sources
        params = dict(model.named_parameters())
        weights = torch.tensor([self.weight])
        with torch.no_grad():
            for name, theta1 in tuned.items():
                p = params[name]
                delta = theta1.to(torch.float32) - p.to(torch.float32)
                p.copy_((p.to(torch.float32) + self.merge(delta, weights)).to(p.dtype))
        return set(tuned)


@register("ties")
@dataclass(frozen=True)
class TIES(TaskVectorMerge):
    """Args: weight (scale of the merged task vector; 0 = the original), density (fraction of each tensor's
    task-vector entries kept, by magnitude), source (method, variant) of the fine-tuned run."""

    def merge(self, task_vector, weights):
        from peft.utils.merge_utils import ties

        return ties([task_vector], weights, self.density)
