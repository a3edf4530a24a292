"""What the method assumes of a model's architecture: Llama-family decoder blocks, an LM head that can be
run on chosen positions only, and the precision rule for log-softmaxes over half-precision logits."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

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


@contextlib.contextmanager
def head_rows(model: nn.Module, keep: torch.Tensor) -> Iterator[None]:
    """Inside the block, the model's LM head sees only the hidden states at ``keep`` (a (B, T) bool mask): a
    forward returns ``logits`` of shape (N, V), N = ``keep.sum()``, the rows ``logits[keep]`` of a full
    forward. The vocabulary projection over positions nothing scores (prompts, padding) is most of a small
    model's compute. Whatever the model does after the head (casts, soft-capping) still applies; the hook
    sits on the unwrapped model's head, so it works the same under DDP, FSDP2 and PEFT wrappers."""
    head = model.get_output_embeddings()
    if head is None:
        raise ValueError(f"{type(model).__name__} has no output embedding (LM head): cannot select positions")
    hook = head.register_forward_pre_hook(lambda _module, args: (args[0][keep], *args[1:]))
    try:
        yield
    finally:
        hook.remove()
