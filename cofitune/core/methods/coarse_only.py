"""Coarse-only: train the chosen (layer range x module set) region without a soft-mask."""

from dataclasses import dataclass

from cofitune.core.methods import Method, register
from cofitune.core.region import Region
from cofitune.core.selection import trainable_names


@register("coarse_only")
@dataclass(frozen=True)
class CoarseOnly(Method):
    layers: str = "bottom2"
    modules: str | tuple[str, ...] = "ffn"
    from_search: bool = False  # true: layers/modules come from the tree search's chosen.json

    def __post_init__(self):
        Region(self.layers, self.modules)  # fail at config time on an unknown module name or layer range

    @property
    def region(self) -> Region:
        """The (layer range x module set) region trained."""
        return Region(self.layers, self.modules)

    def setting(self) -> str:
        """``ffn@bottom2`` (``ffn@bottom2 (searched)`` for a row whose region the tree search chose)."""
        return self.region.id + (" (searched)" if self.from_search else "")

    def trainable(self, model):
        return trainable_names(model, self.layers, self.modules)
