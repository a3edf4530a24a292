"""CoFiTune: coarse region (default FFN in bottom2) + fine soft-mask from unit importance."""

from dataclasses import dataclass

from cofitune.core.methods import register
from cofitune.core.methods.coarse_only import CoarseOnly
from cofitune.core.softmask import LAYOUTS, MASKABLE, TARGETS, SoftMask


@register("cofitune")
@dataclass(frozen=True)
class CoFiTune(CoarseOnly):
    """Args: layers, modules (coarse region); mask_units (which projections get ``1 - I``; the
    release's default is up/down); target (``grad`` as in the paper, or ``update``); layout
    (``rows``, or ``tiled`` to emulate the release)."""

    mask_units: tuple[str, ...] = ("up_proj", "down_proj")
    target: str = "update"
    layout: str = "rows"
    needs_importance = True

    def __post_init__(self):
        super().__post_init__()
        for key, value, allowed in (("target", self.target, TARGETS), ("layout", self.layout, LAYOUTS)):
            if value not in allowed:
                raise ValueError(f"cofitune.{key} must be one of {allowed}, got {value!r}")
        bad = [u for u in self.mask_units if u not in MASKABLE]
        if bad or not self.mask_units:
            raise ValueError(f"cofitune.mask_units {list(self.mask_units)} invalid; choose from {MASKABLE}")

    def softmask(self, model, names, importance):
        return SoftMask.build(model, names, importance, units=self.mask_units,
                              target=self.target, layout=self.layout)
