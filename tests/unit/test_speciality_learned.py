"""A speciality drop can fail a test: a tiny Llama learns a small QA task in-process, then batched HF
generation + the SQuAD scorer must give it its score back, and an untrained model must score far lower.

The random tiny models of the DAG tier score 0 F1 on SQuAD, so they cannot show a broken generation or
scorer path (padding, length sorting, re-ordering). This model memorises 8 answers (word-level tokenizer,
lengths 1-3 words, prompts of different lengths, so left padding and re-ordering are exercised).
"""

from __future__ import annotations

import copy

import pytest

from cofitune.core.recipe import config_from_dict
from cofitune.core.trainer import train
from cofitune.pipeline.evaluate import evaluate_speciality
from evaluators.speciality import get_scorer
from tests.conftest import make_examples, tiny_llama


@pytest.fixture(scope="module")
def learned(word_tokenizer):
    examples = make_examples(8, seed=21)
    model = tiny_llama(vocab=len(word_tokenizer), n_layers=2, seed=3)
    untrained = copy.deepcopy(model).eval()
    cfg = config_from_dict({"epochs": 60, "lr": 1e-2, "micro_batch": 8, "grad_accum": 1, "max_length": 128,
                            "warmup_ratio": 0.0, "weight_decay": 0.0, "bf16": False, "clip": 1.0})
    train(model, word_tokenizer, examples, {n for n, _ in model.named_parameters()}, cfg, progress=False)
    return model.eval(), untrained, examples


def _spec(model, tok, examples, batch_size):
    return evaluate_speciality(model, tok, examples, get_scorer("squad"), template="alpaca", batch_size=batch_size,
                               max_new_tokens=6, repetition_penalty=1.0, n_bootstrap=100, seed=1, progress=False)


def test_a_learned_task_scores_high_and_its_loss_scores_low(learned, word_tokenizer):
    model, untrained, examples = learned
    good = _spec(model, word_tokenizer, examples, batch_size=3)
    bad = _spec(untrained, word_tokenizer, examples, batch_size=3)
    assert good["score"] >= 90.0, [(it["prediction"], ex["output"]) for it, ex in zip(good["items"], examples)]
    assert bad["score"] <= 20.0, bad["score"]
    # the per-item predictions come back in input order whatever the batching
    assert [it["prediction"] for it in good["items"]] == [
        it["prediction"] for it in _spec(model, word_tokenizer, examples, batch_size=8)["items"]]
    assert [it["f1"] for it in good["items"]] == [
        _spec(model, word_tokenizer, [ex], batch_size=1)["items"][0]["f1"] for ex in examples]
