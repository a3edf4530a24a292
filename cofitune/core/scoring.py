"""Log-probabilities of continuations: the logits at the positions that predict a continuation's tokens, with
only those positions through the LM head. Answer NLL, the drift probe and lm-eval's multiple-choice scoring all
go through :func:`continuation_logits`."""

from __future__ import annotations

import torch
import torch.nn as nn
from tqdm.auto import tqdm

from cofitune.core.arch import head_rows


def continuation_logits(model: nn.Module, sequences: list[tuple[list[int], int]], *, pad_id: int,
                        batch_size: int = 16, desc: str = "score", progress: bool = True):
    """Yield ``(index, logits)`` for every ``(token ids, n_prompt)`` sequence: float32 logits of shape
    ``(len(ids) - n_prompt, V)`` at the positions that predict the continuation tokens ``ids[n_prompt:]``.

    Batches are sorted by length and right-padded. Position t predicts token t+1, so only the positions
    that predict a continuation token need logits: the LM head sees just those hidden states (N rows instead
    of B*T: the vocabulary projection over every prompt position dominated the cost), and whatever the model
    does after the head (casts, soft-capping) still applies. The same sequences in the same batches give
    bit-identical logits, so a model compared with itself differs by exactly 0.
    """
    device = next(model.parameters()).device
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i][0]))  # batches of similar length
    for start in tqdm(range(0, len(order), batch_size), desc=desc, disable=not progress):
        idx = order[start:start + batch_size]
        width = max(len(sequences[i][0]) for i in idx)
        ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        keep = torch.zeros_like(ids, dtype=torch.bool)
        for r, i in enumerate(idx):
            row, n_prompt = sequences[i]
            if not 0 < n_prompt < len(row):
                raise ValueError(f"sequence {i}: needs a prompt and a continuation, got n_prompt={n_prompt} "
                                 f"of {len(row)} tokens")
            ids[r, :len(row)] = torch.tensor(row)
            mask[r, :len(row)] = 1
            keep[r, n_prompt - 1:len(row) - 1] = True
        with head_rows(model, keep.to(device)):
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()  # (N, V)
        yield from zip(idx, torch.split(logits, keep.sum(dim=1).tolist()))
