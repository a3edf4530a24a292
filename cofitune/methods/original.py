"""The aligned model as shipped: no training (the versatility reference)."""

from dataclasses import dataclass

from cofitune.methods import Method, register


@register("original")
@dataclass(frozen=True)
class Original(Method):
    trains = False

    def trainable(self, model):
        return set()
