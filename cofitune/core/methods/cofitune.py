"""CoFiTune: coarse region (default FFN in bottom2) + fine soft-mask from unit importance."""

from dataclasses import dataclass

from cofitune.core.methods import register
from cofitune.core.methods.coarse_only import CoarseOnly
from cofitune.core.selection import LAYOUTS, MASKABLE, TARGETS, module_names


def check_mask_units(mask_units: tuple[str, ...] | None, where: str) -> None:
    if mask_units is not None:
        bad = [u for u in mask_units if u not in MASKABLE]
        if bad or not mask_units:
            raise ValueError(f"{where}.mask_units {list(mask_units)} invalid; choose from {MASKABLE}")


def masked_units(modules, mask_units: tuple[str, ...] | None) -> tuple[str, ...]:
    """The projections masked: ``mask_units`` when given, else the region's own: its FFN projections (up/down,
    the release's default) where it has them, else its attention ones (q/k/v). A searched row learns its
    region at training time, so a region of MHA only still gets a mask."""
    if mask_units is not None:
        return mask_units
    own = module_names(modules)
    ffn = tuple(u for u in ("up_proj", "down_proj") if u in own)
    return ffn or tuple(u for u in own if u in MASKABLE)


def mask_words(modules, mask_units: tuple[str, ...] | None, layout: str = "rows") -> str:
    """What a region's mask covers beyond its default, in words: `` on q_proj+v_proj`` when ``mask_units``
    are not the region's own, ``, tiled layout`` when the layout is not ``rows``."""
    units = "" if masked_units(modules, mask_units) == masked_units(modules, None) else (
        " on " + "+".join(masked_units(modules, mask_units)))
    return units + ("" if layout == "rows" else f", {layout} layout")


@register("cofitune")
@dataclass(frozen=True)
class CoFiTune(CoarseOnly):
    """Args: layers, modules (coarse region); mask_units (which projections get ``1 - I``; default: the
    region's own, see :attr:`units`); target (``grad`` as in the paper, or ``update``); layout (``rows``, or
    ``tiled`` to emulate the release)."""

    mask_units: tuple[str, ...] | None = None
    target: str = "update"
    layout: str = "rows"
    needs_importance = True

    def __post_init__(self):
        super().__post_init__()
        for key, value, allowed in (("target", self.target, TARGETS), ("layout", self.layout, LAYOUTS)):
            if value not in allowed:
                raise ValueError(f"cofitune.{key} must be one of {allowed}, got {value!r}")
        check_mask_units(self.mask_units, "cofitune")

    @property
    def units(self) -> tuple[str, ...]:
        """The projections masked (:func:`masked_units`)."""
        return masked_units(self.modules, self.mask_units)

    def setting(self) -> str:
        """``ffn@bottom2, update mask`` (``on <units>`` when they are not the region's own, the layout when
        not ``rows``)."""
        return super().setting() + f", {self.target} mask" + mask_words(self.modules, self.mask_units, self.layout)

    def softmask(self, model, names, importance):
        from cofitune.core.softmask import SoftMask  # torch: at training time, not when the DAG parses

        return SoftMask.build(model, names, importance, units=self.units, target=self.target, layout=self.layout)
