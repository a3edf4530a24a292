"""Full SFT: every parameter trainable (the speciality reference)."""

from dataclasses import dataclass

from cofitune.core.methods import Method, register


@register("full_sft")
@dataclass(frozen=True)
class FullSFT(Method):
    def trainable(self, model):
        return {name for name, _ in model.named_parameters()}
