"""Shared fixtures: a tiny random Llama built in-process (unit tests only) and a word-level tokenizer."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from cofitune.pipeline.launch import go_offline

go_offline()

WORDS = ("the a of to is in and what who when where answer question context paris france capital city "
         "river name year born it was red blue green one two three").split()


def tiny_llama(n_layers: int = 4, dtype=torch.float32, vocab: int = 64, seed: int = 0, kv_heads: int = 2,
               **config):
    """A random Llama for tests; ``config`` overrides LlamaConfig fields (e.g. ``attention_bias=True``, as Qwen2)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=48, num_hidden_layers=n_layers,
                      num_attention_heads=4, num_key_value_heads=kv_heads, max_position_embeddings=128,
                      pad_token_id=0, bos_token_id=1, eos_token_id=2, tie_word_embeddings=False, **config)
    torch.manual_seed(seed)
    return LlamaForCausalLM(cfg).to(dtype)


HUB_REV = "0123456789abcdef0123456789abcdef01234567"


def fake_hub_cache(cache: Path, repo_id: str, folder: Path) -> Path:
    """A model folder laid out as the HF hub cache holds it (``models--org--name/refs/main`` naming
    ``snapshots/<rev>/``), so hub-sourced models resolve offline; returns the snapshot folder."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(folder, repo / "snapshots" / HUB_REV)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(HUB_REV)
    return repo / "snapshots" / HUB_REV


@pytest.fixture
def model():
    return tiny_llama()


@pytest.fixture(scope="session")
def word_tokenizer():
    """A whitespace word-level fast tokenizer with pad/eos, built in-process."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<s>", "</s>", "<unk>"]
    extra = ["#", "Below", "instruction", "describes", "task.", "Write", "response", "appropriately",
             "completes", "request.", "###", "Instruction:", "Response:", "an", "that", "Context:", "Question:"]
    vocab = {w: i for i, w in enumerate(specials + sorted(set(WORDS + extra)))}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", bos_token="<s>",
                                   eos_token="</s>", unk_token="<unk>")


def make_examples(n: int, seed: int = 0) -> list[dict]:
    import random

    rng = random.Random(seed)
    return [{"instruction": "answer the question",
             "input": " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12))),
             "output": " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3)))} for _ in range(n)]
