"""V-SoftMask (the DAS-style baseline): every weight trainable, soft-mask on every layer and unit type."""

from dataclasses import dataclass

from cofitune.core.methods import register
from cofitune.core.methods.full_sft import FullSFT
from cofitune.core.region import Region
from cofitune.core.selection import LAYOUTS, MASKABLE, TARGETS


@register("v_softmask")
@dataclass(frozen=True)
class VSoftMask(FullSFT):
    """Args: target (``grad`` as in DAS, or ``update``), layout (``rows`` or ``tiled``)."""

    target: str = "grad"
    layout: str = "rows"
    needs_importance = True

    def __post_init__(self):
        if self.target not in TARGETS or self.layout not in LAYOUTS:
            raise ValueError(f"v_softmask target/layout must be in {TARGETS}/{LAYOUTS}, got {self.target}/{self.layout}")

    def setting(self) -> str:
        """``grad mask on mha+ffn@all``: every weight trains, the mask covers every layer's units."""
        return f"{self.target} mask on {Region('all', 'mha+ffn').id}" + (
            "" if self.layout == "rows" else f", {self.layout} layout")

    def softmask(self, model, names, importance):
        from cofitune.core.softmask import SoftMask  # torch: at training time, not when the DAG parses

        return SoftMask.build(model, names, importance, units=MASKABLE, target=self.target, layout=self.layout)
