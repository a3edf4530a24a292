"""Coarse-only: train the chosen (layer range x module set) region without a soft-mask."""

from dataclasses import dataclass

from cofitune.core.methods import Method, register
from cofitune.core.selection import check_range_name, module_names, trainable_names


@register("coarse_only")
@dataclass(frozen=True)
class CoarseOnly(Method):
    layers: str = "bottom2"
    modules: str | tuple[str, ...] = "ffn"
    from_search: bool = False  # true: layers/modules come from the tree search's chosen.json

    def __post_init__(self):
        module_names(self.modules)  # fail at config time on an unknown module name
        check_range_name(self.layers)

    def trainable(self, model):
        return trainable_names(model, self.layers, self.modules)
