"""The aligned model as shipped: no training (the versatility reference)."""

from dataclasses import dataclass

from cofitune.core.methods import Method, register


@register("original")
@dataclass(frozen=True)
class Original(Method):
    kind = "reference"

    def trainable(self, model):
        return set()
