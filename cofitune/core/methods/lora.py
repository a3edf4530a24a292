"""LoRA (PEFT): low-rank adapters on chosen projections, merged into the base weights for evaluation."""

from dataclasses import dataclass

from cofitune.core.methods import Method, register
from cofitune.core.region import Region
from cofitune.core.selection import layer_range, module_names


@register("lora")
@dataclass(frozen=True)
class LoRA(Method):
    """Args: r, alpha, dropout, modules (module set or projection names), layers (a named range or
    null for all layers; maps to PEFT's ``layers_to_transform``)."""

    r: int = 8
    alpha: int = 16
    dropout: float = 0.0
    modules: str | tuple[str, ...] = "mha+ffn"
    layers: str | None = None

    def __post_init__(self):
        module_names(self.modules)
        if self.r < 1 or self.alpha <= 0 or not 0 <= self.dropout < 1:
            raise ValueError(f"lora needs r >= 1, alpha > 0, 0 <= dropout < 1; got {self.r}, {self.alpha}, {self.dropout}")

    def setting(self) -> str:
        """``mha+ffn@all, r=8, alpha=16`` (the dropout when it is not 0)."""
        return f"{Region(self.layers or 'all', self.modules).id}, r={self.r}, alpha={self.alpha}" + (
            f", dropout={self.dropout:g}" if self.dropout else "")

    def prepare(self, model):
        from peft import LoraConfig, get_peft_model

        layers = None
        if self.layers is not None:
            layers = list(layer_range(self.layers, model.config.num_hidden_layers))
        cfg = LoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout,
                         target_modules=list(module_names(self.modules)), layers_to_transform=layers,
                         bias="none", task_type="CAUSAL_LM")
        return get_peft_model(model, cfg)

    def trainable(self, model):
        names = {n for n, _ in model.named_parameters() if "lora_" in n}
        if not names:
            raise ValueError("lora: no adapter parameters (call prepare() first)")
        return names

    def finalize(self, model, names):
        """Merge the adapters; the changed tensors are the targeted base weights."""
        targets = {n.split(".lora_")[0].removeprefix("base_model.model.") + ".weight" for n in names}
        merged = model.merge_and_unload()
        missing = targets - {n for n, _ in merged.named_parameters()}
        if missing:
            raise RuntimeError(f"lora: merged model lacks {sorted(missing)[:3]}")
        return merged, targets
