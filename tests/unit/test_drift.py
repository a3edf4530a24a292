"""The drift probe: exact KL against a hand computation, 0 for a model against itself, rising with lr."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from cofitune.core.recipe import config_from_dict
from cofitune.core.trainer import train
from cofitune.pipeline import drift, probe
from tests.conftest import make_examples, tiny_llama

REPO = __import__("pathlib").Path(__file__).resolve().parents[2]


def _probe(tok, model, n=7, max_new_tokens=5):
    prompts = [" ".join(ex["input"].split()[:6]) for ex in make_examples(n, seed=11)]
    return drift.greedy_continuations(model, tok, prompts, max_new_tokens=max_new_tokens, batch_size=3,
                                      progress=False)


def _kl(original, tuned, tok, items):
    ref = drift.reference_logprobs(original, items, pad_id=tok.pad_token_id, batch_size=3, progress=False)
    return drift.drift_kl(ref, tuned, items, pad_id=tok.pad_token_id, batch_size=3, progress=False)


def test_drift_equals_a_hand_computation(word_tokenizer):
    original = tiny_llama(vocab=len(word_tokenizer), seed=0).eval()
    tuned = tiny_llama(vocab=len(word_tokenizer), seed=1).eval()
    items = _probe(word_tokenizer, original)
    got = _kl(original, tuned, word_tokenizer, items)
    for it, value in zip(items, got):
        ids = torch.tensor([it["prompt_ids"] + it["continuation_ids"]])
        n_p, n_c = len(it["prompt_ids"]), len(it["continuation_ids"])
        with torch.no_grad():
            p = F.softmax(original(ids).logits[0, n_p - 1:n_p - 1 + n_c].double(), dim=-1)
            q = F.softmax(tuned(ids).logits[0, n_p - 1:n_p - 1 + n_c].double(), dim=-1)
        expected = float((p * (p.log() - q.log())).sum(dim=-1).mean())
        assert value == pytest.approx(expected, rel=1e-4)
        assert value > 0


def test_drift_is_exactly_zero_for_a_model_against_itself(word_tokenizer):
    model = tiny_llama(vocab=len(word_tokenizer)).eval()
    items = _probe(word_tokenizer, model)
    assert _kl(model, model, word_tokenizer, items) == [0.0] * len(items)


def test_continuations_are_the_models_greedy_choice(word_tokenizer):
    model = tiny_llama(vocab=len(word_tokenizer)).eval()
    items = _probe(word_tokenizer, model)
    for it in items:
        assert 1 <= len(it["continuation_ids"]) <= 5
        ids = torch.tensor([it["prompt_ids"] + it["continuation_ids"]])
        n_p = len(it["prompt_ids"])
        with torch.no_grad():
            pred = model(ids).logits[0, n_p - 1:-1].argmax(-1).tolist()
        assert pred == it["continuation_ids"]


def test_drift_rises_with_the_learning_rate(word_tokenizer):
    original = tiny_llama(vocab=len(word_tokenizer)).eval()
    items = _probe(word_tokenizer, original, n=10)
    examples = make_examples(16, seed=2)
    names = {n for n, _ in original.named_parameters() if ".mlp." in n}
    means = []
    for lr in (1e-4, 1e-3, 1e-2):
        model = copy.deepcopy(original).train()
        cfg = config_from_dict({"epochs": 1, "lr": lr, "micro_batch": 4, "grad_accum": 1, "max_length": 64,
                                "warmup_ratio": 0.0, "bf16": False})
        train(model, word_tokenizer, examples, names, cfg, progress=False)
        means.append(sum(_kl(original, model.eval(), word_tokenizer, items)) / len(items))
    assert 0 < means[0] < means[1] < means[2]


def test_probe_prompts_come_from_the_committed_subsets():
    prompts = probe.probe_prompts(REPO / "resources" / "data" / "versatility")
    assert len(prompts) == sum(probe.PROBE_SOURCES.values()) >= 200
    assert {p["source"] for p in prompts} == set(probe.PROBE_SOURCES)
    assert len({p["prompt"] for p in prompts}) == len(prompts)
    assert prompts[0]["prompt"].endswith("Answer:") and "\nA. " in prompts[0]["prompt"]


def test_long_prompts_keep_their_last_tokens(word_tokenizer):
    model = tiny_llama(vocab=len(word_tokenizer)).eval()
    long = " ".join(["the river name"] * 10 + ["what is the capital city"])
    items = drift.greedy_continuations(model, word_tokenizer, [long, "the red"], max_new_tokens=3,
                                       max_prompt_tokens=5, batch_size=2, progress=False)
    assert items[0]["prompt_ids"] == word_tokenizer(long, add_special_tokens=False)["input_ids"][-5:]
    assert items[1]["prompt_ids"] == word_tokenizer("the red", add_special_tokens=False)["input_ids"]


def test_the_task_probe_takes_the_tasks_first_training_prompts_whole(word_tokenizer, tmp_path, monkeypatch, caplog):
    """TaskDrift's probe: the first n training prompts in the row's format, never truncated (the task's context is
    what it is about), with the original's greedy continuations; a smaller split gives all of its prompts, said."""
    import json
    import logging

    from cofitune.core.prompt import build_prompt
    from cofitune.pipeline.io import read_json
    from cofitune.pipeline.stage_configs import TaskProbeStage
    from cofitune.pipeline.stages import probe as probe_stage

    model = tiny_llama(vocab=len(word_tokenizer)).eval()
    monkeypatch.setattr("cofitune.pipeline.model.load_base", lambda *a, **k: (model, word_tokenizer))
    examples = [{**e, "id": f"ex{i}"} for i, e in enumerate(make_examples(5, seed=3))]
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(e) + "\n" for e in examples))
    cfg = TaskProbeStage(n_prompts=3, max_new_tokens=4, batch_size=2, template="alpaca")
    probe_stage.run_task(cfg, tmp_path, train, tmp_path / "probe.json")
    items = read_json(tmp_path / "probe.json")["items"]
    assert [it["id"] for it in items] == [e["id"] for e in examples[:3]] and "example" not in items[0]
    for it, ex in zip(items, examples):
        whole = word_tokenizer(build_prompt(ex, "alpaca"), add_special_tokens=False)["input_ids"]
        assert it["prompt_ids"] == whole and 1 <= len(it["continuation_ids"]) <= 4
    with caplog.at_level(logging.WARNING):
        probe_stage.run_task(TaskProbeStage(n_prompts=9, max_new_tokens=2, batch_size=2), tmp_path, train,
                             tmp_path / "all.json")
    assert len(read_json(tmp_path / "all.json")["items"]) == 5 and "takes them all" in caplog.text
