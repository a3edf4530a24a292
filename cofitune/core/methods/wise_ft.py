"""Wise-FT: post-hoc interpolation ``theta = (1 - alpha) theta0 + alpha theta_ft`` (no training)."""

from dataclasses import dataclass

from cofitune.core.methods import Method, format_params, register


@dataclass(frozen=True)
class FromSource(Method):
    """A post-hoc method built from one fine-tuned run's checkpoint (``source``: method, variant)."""

    source: tuple[str, str] = ("full_sft", "all")
    kind = "post_hoc"

    def __post_init__(self):
        if len(self.source) != 2:
            raise ValueError(f"source must be [method, variant], got {list(self.source)}")

    def trainable(self, model):
        return set()

    def setting(self) -> str:
        """``alpha=0.5 of full_sft/all``: the parameters, then the run it is built from."""
        return format_params({k: v for k, v in self.describe().items() if k != "source"}) + (
            f" of {'/'.join(self.source)}")

    def sources(self):
        return [tuple(self.source)]


@register("wise_ft")
@dataclass(frozen=True)
class WiseFT(FromSource):
    """Args: alpha (0 = the original model, 1 = the fine-tuned one); source (method, variant) of the
    fine-tuned run, default Full SFT."""

    alpha: float = 0.5

    def __post_init__(self):
        super().__post_init__()
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}")

    def combine(self, model, sources):
        import torch  # at combination time, not when the DAG parses

        (tuned,) = sources
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name, theta1 in tuned.items():
                p = params[name]
                p.copy_(torch.lerp(p, theta1.to(p.dtype), self.alpha))
        return set(tuned)
