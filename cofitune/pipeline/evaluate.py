"""Evaluate one checkpoint: speciality (batched greedy generation + task scorer) and versatility
(lm-eval suites), with the model loaded once. Writes a single ``metrics.json``."""

from __future__ import annotations

import time
from pathlib import Path

import torch
import torch.nn as nn
from tqdm.auto import tqdm
from transformers import LogitsProcessor, LogitsProcessorList

from cofitune.core.scoring import continuation_logits
from cofitune.core.prompt import build_prompt
from cofitune.stats import compare


class RowRepetitionPenalty(LogitsProcessor):
    """HF's repetition penalty (CTRL's rule: a seen token's logit divided by ``penalty`` when positive,
    multiplied when negative) over each row's own tokens: the ``n_pad[b]`` left-padding positions of row b
    are not counted. HF's built-in processor counts them, so a prompt padded next to a longer neighbour has
    its pad token (often its EOS) penalized, and its text depends on the batch; vLLM penalizes prompt and
    output tokens only."""

    def __init__(self, penalty: float, n_pad: torch.Tensor):
        self.penalty, self.n_pad = penalty, n_pad

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        vocab = scores.shape[-1]
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        counted = (positions[None, :] >= self.n_pad.to(input_ids.device)[:, None]) & (input_ids < vocab)
        seen = torch.zeros_like(scores).scatter_add_(1, input_ids.clamp(max=vocab - 1), counted.to(scores.dtype)) > 0
        penalized = torch.where(scores < 0, scores * self.penalty, scores / self.penalty)
        return torch.where(seen, penalized, scores)


@torch.no_grad()
def generate(model: nn.Module, tok, prompts: list[str], *, batch_size: int = 16, max_new_tokens: int = 64,
             repetition_penalty: float = 1.2, progress: bool = True) -> tuple[list[str], int]:
    """Greedy generation, left-padded batches sorted by length, the repetition penalty over each prompt's
    own tokens (:class:`RowRepetitionPenalty`). Returns texts (input order) and the number of generated
    tokens."""
    tok.padding_side = "left"
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    texts: list[str] = [""] * len(prompts)
    n_new = 0
    for start in tqdm(range(0, len(order), batch_size), desc="generate", disable=not progress):
        idx = order[start:start + batch_size]
        enc = tok([prompts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False)
        penalty = LogitsProcessorList([RowRepetitionPenalty(repetition_penalty, (enc["attention_mask"] == 0).sum(1))])
        out = model.generate(**enc, do_sample=False, max_new_tokens=max_new_tokens, logits_processor=penalty,
                             pad_token_id=tok.pad_token_id)
        new = out[:, enc["input_ids"].shape[1]:]  # (B, new)
        n_new += int((new != tok.pad_token_id).sum())
        for i, row in zip(idx, new):
            texts[i] = tok.decode(row, skip_special_tokens=True)
    return texts, n_new


def evaluate_speciality(model, tok, examples: list[dict], scorer, *, template: str, batch_size: int,
                        max_new_tokens: int, repetition_penalty: float, n_bootstrap: int, seed: int,
                        progress: bool = True, llm=None) -> dict:
    """Generate, extract, score each item, and aggregate with a 95% bootstrap CI.

    ``llm``: a vLLM engine over the same weights (backend ``vllm``); None generates with HF.
    """
    prompts = [build_prompt(e, template, tok) for e in examples]
    t0 = time.perf_counter()
    if llm is None:
        texts, n_new = generate(model, tok, prompts, batch_size=batch_size, max_new_tokens=max_new_tokens,
                                repetition_penalty=repetition_penalty, progress=progress)
    else:
        from cofitune.pipeline.vllm_backend import generate as vllm_generate

        texts, n_new, _ = vllm_generate(llm, prompts, max_new_tokens=max_new_tokens,
                                        repetition_penalty=repetition_penalty, seed=seed)
    wall = time.perf_counter() - t0
    items = []
    for ex, text in zip(examples, texts):
        pred = scorer.extract(text)
        items.append({"id": ex.get("id"), "prediction": pred, "raw": text,
                      **scorer.score(pred, ex.get("references") or [ex["output"]])})
    clusters = [ex.get("cluster") for ex in examples]
    clusters = clusters if all(c is not None for c in clusters) else None
    metrics = {}
    for key in scorer.HIGHER_IS_BETTER:
        values = [it[key] for it in items]
        # items that share a passage are resampled together, as every comparison of the table resamples them
        c = compare({"x": values}, None, lambda d: float(d["x"].mean()), n_boot=n_bootstrap, seed=seed,
                    clusters=None if clusters is None else {"x": clusters})
        metrics[key] = {"mean": sum(values) / len(values), "ci95": [c.lo, c.hi]}
    return {"score": metrics[scorer.PRIMARY]["mean"], "metric": scorer.PRIMARY, "clusters": clusters,
            "ci95": metrics[scorer.PRIMARY]["ci95"], "metrics": metrics, "n": len(items),
            "generation": {"wall_s": wall, "new_tokens": n_new, "tokens_per_s": n_new / wall,
                           "max_new_tokens": max_new_tokens, "repetition_penalty": repetition_penalty,
                           "greedy": True, "backend": "hf" if llm is None else "vllm"},
            "items": items}


@torch.no_grad()
def answer_nll(model: nn.Module, tok, examples: list[dict], *, template: str, batch_size: int = 16,
               progress: bool = True) -> list[float]:
    """Teacher-forced NLL (nats per token) of each reference answer (+EOS) given its prompt.

    A continuous speciality signal: it moves with training even where generation scores 0 (a tiny
    model), and it explodes when a method breaks the model.
    """
    import torch.nn.functional as F

    sequences = []
    for ex in examples:
        p_ids = tok(build_prompt(ex, template, tok), add_special_tokens=False)["input_ids"]
        o_ids = tok(ex["output"], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        sequences.append((p_ids + o_ids, len(p_ids)))
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    out: list[float] = [0.0] * len(sequences)
    for i, logits in continuation_logits(model, sequences, pad_id=pad, batch_size=batch_size, desc="answer nll",
                                         progress=progress):
        row, n_prompt = sequences[i]
        target = torch.tensor(row[n_prompt:], device=logits.device)
        out[i] = F.cross_entropy(logits, target, reduction="mean").item()
    return out


def write_predictions(path: str | Path, items: list[dict]) -> None:
    import json

    from cofitune.pipeline.io import atomic_write_text
    atomic_write_text(path, "".join(json.dumps(it, ensure_ascii=False) + "\n" for it in items))
