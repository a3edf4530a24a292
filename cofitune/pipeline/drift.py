"""The label-free drift probe: how far a tuned model moved from the original on general behaviour.

A fixed set of general prompts (the versatility subsets' questions and the IFEval instructions) gets the original model's own greedy continuation once per model
(:func:`greedy_continuations`; the prompts: :mod:`cofitune.pipeline.probe`). A tuned model's drift on one prompt is the mean over the continuation
tokens of ``KL(p_original || p_tuned)``, computed exactly over the full vocabulary (:func:`drift_kl`).
It needs no labels and no generation from the tuned model, it is 0 exactly for a model against itself,
and it is a per-item number, so rows compare pairwise with a CI.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from cofitune.core.scoring import continuation_logits


@torch.no_grad()
def greedy_continuations(model: nn.Module, tok, prompts: list[str], *, max_new_tokens: int = 16,
                         max_prompt_tokens: int | None = None, batch_size: int = 16,
                         progress: bool = True) -> list[dict]:
    """The model's own greedy continuation of each prompt (no repetition penalty: its mode), as token ids.

    A continuation stops after the first EOS (kept, it is a prediction too) and has at least one token.
    ``max_prompt_tokens`` keeps only the end of a longer prompt (the question, the instruction): the
    drift passes run over every prompt token, so this bounds their cost.
    """
    tok.padding_side = "left"
    tok.truncation_side = "left"
    limit = {"truncation": True, "max_length": max_prompt_tokens} if max_prompt_tokens else {}
    device = next(model.parameters()).device
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out: list[dict] = [{}] * len(prompts)
    for start in tqdm(range(0, len(order), batch_size), desc="probe continuations", disable=not progress):
        idx = order[start:start + batch_size]
        enc = tok([prompts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False, **limit)
        gen = model.generate(**{k: v.to(device) for k, v in enc.items()}, do_sample=False,
                             max_new_tokens=max_new_tokens, min_new_tokens=1, pad_token_id=pad)
        for r, i in enumerate(idx):
            new = gen[r, enc["input_ids"].shape[1]:].tolist()
            if tok.eos_token_id in new:
                new = new[:new.index(tok.eos_token_id) + 1]
            prompt_ids = enc["input_ids"][r][enc["attention_mask"][r].bool()].tolist()
            out[i] = {"prompt_ids": prompt_ids, "continuation_ids": new}
    return out


def _sequences(items: list[dict]) -> list[tuple[list[int], int]]:
    return [(it["prompt_ids"] + it["continuation_ids"], len(it["prompt_ids"])) for it in items]


@torch.no_grad()
def reference_logprobs(model: nn.Module, items: list[dict], *, pad_id: int, batch_size: int = 16,
                       progress: bool = True) -> list[torch.Tensor]:
    """Log-probabilities ``(n_continuation, V)`` of the reference model at every continuation position."""
    out: list[torch.Tensor] = [torch.empty(0)] * len(items)
    for i, logits in continuation_logits(model, _sequences(items), pad_id=pad_id, batch_size=batch_size,
                                         desc="probe reference", progress=progress):
        out[i] = F.log_softmax(logits, dim=-1)
    return out


@torch.no_grad()
def drift_kl(reference: list[torch.Tensor], model: nn.Module, items: list[dict], *, pad_id: int,
             batch_size: int = 16, progress: bool = True) -> list[float]:
    """Per item: the mean over continuation tokens of ``KL(p_reference || p_model)`` in nats, exact over the
    full vocabulary. ``reference``: :func:`reference_logprobs` of the original on the same items."""
    if len(reference) != len(items):
        raise ValueError(f"{len(reference)} reference rows for {len(items)} probe items")
    out = [0.0] * len(items)
    for i, logits in continuation_logits(model, _sequences(items), pad_id=pad_id, batch_size=batch_size,
                                         desc="probe drift", progress=progress):
        ref = reference[i]
        log_q = F.log_softmax(logits, dim=-1)
        kl = (ref.exp() * (ref - log_q)).sum(dim=-1)  # (n_continuation,)
        out[i] = float(kl.mean())
    return out
