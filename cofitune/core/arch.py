"""What the method assumes of a model's architecture: Llama-family decoder blocks, and the precision rule
for log-softmaxes over half-precision logits."""

from __future__ import annotations

import torch
import torch.nn as nn


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The decoder blocks of a Llama-family CausalLM (``model.model.layers``)."""
    try:
        return model.model.layers
    except AttributeError as err:
        raise TypeError(f"{type(model).__name__} has no .model.layers; not a Llama-family CausalLM") from err


def upcast(x: torch.Tensor) -> torch.Tensor:
    """Half-precision logits go to float32 for the softmax; float32/float64 stay as they are."""
    return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x
