"""Batched greedy generation: a prompt's text does not depend on its batch neighbours' padding."""

from __future__ import annotations

import copy

import torch
from transformers import RepetitionPenaltyLogitsProcessor

from cofitune.pipeline.evaluate import RowRepetitionPenalty, generate


def test_the_penalty_counts_each_rows_own_tokens_and_never_its_left_padding():
    torch.manual_seed(0)
    vocab, pad = 11, 2  # the pad id is also a real token (SmolLM2: pad = eos = <|im_end|>)
    rows = [torch.tensor([5, 7, 5, 9]), torch.tensor([3, 4])]
    width = max(len(r) for r in rows)
    batch = torch.stack([torch.cat([torch.full((width - len(r),), pad), r]) for r in rows])
    scores = torch.randn(len(rows), vocab)
    n_pad = torch.tensor([width - len(r) for r in rows])
    got = RowRepetitionPenalty(1.3, n_pad)(batch, scores.clone())
    for i, row in enumerate(rows):  # the golden value: HF's own penalty on the unpadded row alone
        want = RepetitionPenaltyLogitsProcessor(1.3)(row[None], scores[i:i + 1].clone())
        assert torch.equal(got[i:i + 1], want), i
    assert got[1, pad] == scores[1, pad]  # row 1's two pads are not counted as an earlier `pad` token


def test_generate_hands_each_row_its_padding_and_no_second_penalty(model, word_tokenizer):
    seen = {}
    real = model.generate

    def spy(**kwargs):
        seen.update(kwargs)
        return real(**kwargs)

    model.generate = spy
    prompts = ["the capital of france is paris", "one two"]
    generate(model.eval(), word_tokenizer, prompts, max_new_tokens=2, repetition_penalty=1.2, progress=False)
    (processor,) = seen["logits_processor"]
    mask = seen["attention_mask"]
    assert isinstance(processor, RowRepetitionPenalty) and processor.penalty == 1.2
    # the batch is sorted by prompt length: "one two" first, left-padded by the other prompt's 4 extra words
    assert torch.equal(processor.n_pad, (mask == 0).sum(1)) and processor.n_pad.tolist() == [4, 0]
    assert seen.get("repetition_penalty", 1.0) == 1.0  # HF's own (padding-counting) penalty is off


def test_a_prompt_generates_the_same_text_alone_and_in_a_padded_batch(model, word_tokenizer):
    """The padding token is the short prompt's own greedy next word, as when pad = eos: HF's built-in
    penalty would count the padding as an earlier occurrence and the padded row would change its text."""
    model.eval()
    short, long_ = "one two", "the capital of france is paris and what river is red"
    alone = generate(model, word_tokenizer, [short], max_new_tokens=6, repetition_penalty=5.0, progress=False)[0][0]
    first = alone.split()[0]
    assert first not in short.split()  # else the prompt itself already counts it
    tok = copy.deepcopy(word_tokenizer)
    tok.pad_token = first
    batched, _ = generate(model, tok, [short, long_], max_new_tokens=6, repetition_penalty=5.0, progress=False)
    want = [alone, generate(model, tok, [long_], max_new_tokens=6, repetition_penalty=5.0, progress=False)[0][0]]
    assert batched == want
