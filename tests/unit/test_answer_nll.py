"""Teacher-forced answer NLL: equals the model's own loss on the answer tokens, batched or not."""

import pytest
import torch

from cofitune.core.prompt import build_prompt
from cofitune.pipeline.evaluate import answer_nll
from tests.conftest import make_examples, tiny_llama


def test_answer_nll_equals_hf_loss_per_example(word_tokenizer):
    model = tiny_llama(vocab=len(word_tokenizer)).eval()
    examples = make_examples(5, seed=3)
    got = answer_nll(model, word_tokenizer, examples, template="alpaca", batch_size=3, progress=False)
    for ex, value in zip(examples, got):
        p = word_tokenizer(build_prompt(ex, "alpaca", word_tokenizer), add_special_tokens=False)["input_ids"]
        o = word_tokenizer(ex["output"], add_special_tokens=False)["input_ids"] + [word_tokenizer.eos_token_id]
        ids = torch.tensor([p + o])
        labels = torch.tensor([[-100] * len(p) + o])
        with torch.no_grad():
            expected = model(input_ids=ids, labels=labels).loss.item()  # mean over answer tokens
        assert value == pytest.approx(expected, rel=1e-5)
    # right padding inside a batch changes nothing
    single = answer_nll(model, word_tokenizer, examples, template="alpaca", batch_size=1, progress=False)
    assert got == pytest.approx(single, rel=1e-5)
    assert not model.get_output_embeddings()._forward_pre_hooks  # the head-slicing hook never outlives a call


def test_answer_nll_keeps_input_order_when_batches_are_sorted_by_length(word_tokenizer):
    model = tiny_llama(vocab=len(word_tokenizer)).eval()
    examples = make_examples(6, seed=5)
    examples[0] = {**examples[0], "input": examples[0]["input"] + " extra words" * 6}  # the longest comes first
    batched = answer_nll(model, word_tokenizer, examples, template="alpaca", batch_size=4, progress=False)
    one_by_one = [answer_nll(model, word_tokenizer, [ex], template="alpaca", batch_size=1, progress=False)[0]
                  for ex in examples]
    assert batched == pytest.approx(one_by_one, rel=1e-5)
    assert len(set(batched)) == len(batched)


def test_answer_nll_falls_when_the_answer_is_learned(word_tokenizer):
    model = tiny_llama(vocab=len(word_tokenizer))
    ex = make_examples(1, seed=1)
    before = answer_nll(model, word_tokenizer, ex, template="alpaca", progress=False)[0]
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    p = word_tokenizer(build_prompt(ex[0], "alpaca", word_tokenizer), add_special_tokens=False)["input_ids"]
    o = word_tokenizer(ex[0]["output"], add_special_tokens=False)["input_ids"] + [word_tokenizer.eos_token_id]
    for _ in range(20):
        opt.zero_grad()
        model(input_ids=torch.tensor([p + o]), labels=torch.tensor([[-100] * len(p) + o])).loss.backward()
        opt.step()
    assert answer_nll(model.eval(), word_tokenizer, ex, template="alpaca", progress=False)[0] < before / 2
