"""Method registry, per-method trainable sets, partial checkpoints and the explicit training loop."""

import pytest
import torch

from cofitune.core.methods import get_method, method_names
from cofitune.core.recipe import TrainConfig, config_from_dict
from cofitune.core.trainer import IGNORE, collate, n_targets, sft_loss, tokenize_example, train
from cofitune.pipeline.model import merge_trainable, save_trainable
from tests.conftest import make_examples, tiny_llama


def test_registry_lists_the_methods():
    assert {"original", "full_sft", "coarse_only", "cofitune"} <= set(method_names())
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        get_method("nope")


def test_trainable_sets_per_method():
    model = tiny_llama(n_layers=8)
    all_names = {n for n, _ in model.named_parameters()}
    assert get_method("original").from_params({}).trainable(model) == set()
    assert get_method("full_sft").from_params({}).trainable(model) == all_names
    coarse = get_method("coarse_only").from_params({"layers": "bottom2", "modules": "ffn"}).trainable(model)
    cofi = get_method("cofitune").from_params({"layers": "bottom2", "modules": "ffn"}).trainable(model)
    assert coarse == cofi == {f"model.layers.{i}.mlp.{p}.weight" for i in (2, 3) for p in ("up_proj", "down_proj")}


@pytest.mark.parametrize("method,params,match", [
    ("cofitune", {"layer": "bottom2"}, r"params: unknown key\(s\) \['layer'\]"),
    ("cofitune", {"modules": "up_projection,down_projection"}, "unknown module"),
    ("coarse_only", {"layers": "bottom5"}, "unknown layer range"),
    ("cofitune", {"target": "weights"}, "target must be one of"),
    ("cofitune", {"mask_units": ["up_projection"]}, "mask_units"),
])
def test_bad_method_params(method, params, match):
    with pytest.raises(ValueError, match=match):
        get_method(method).from_params(params)


def test_out_of_range_layers_fail_on_the_model():
    m = get_method("coarse_only").from_params({"layers": "6-12"})
    with pytest.raises(ValueError, match="outside a model with 8 layers"):
        m.trainable(tiny_llama(n_layers=8))


def test_tokenize_masks_prompt_unless_train_on_prompt(word_tokenizer):
    ex = {"instruction": "answer the question", "input": "what is the capital", "output": "paris"}
    masked = tokenize_example(ex, word_tokenizer, TrainConfig())
    full = tokenize_example(ex, word_tokenizer, TrainConfig(train_on_prompt=True))
    n_target = sum(1 for x in masked["labels"] if x != -100)
    assert n_target == 2  # "paris" + EOS
    assert masked["labels"][-2:] == masked["input_ids"][-2:]
    assert full["labels"] == full["input_ids"]
    assert tokenize_example(ex, word_tokenizer, TrainConfig(max_length=8)) is None


def test_collate_right_pads():
    batch = collate([{"input_ids": [5, 6, 7], "labels": [-100, 6, 7]}, {"input_ids": [5], "labels": [5]}], pad_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [5, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 6, 7], [5, -100, -100]]


def test_the_sft_loss_runs_the_lm_head_only_where_a_label_is_predicted(word_tokenizer):
    """Same loss and gradients as the cross-entropy over full (B, T, V) logits, from a head that saw only the
    N hidden states whose next token is a label (prompt and padding positions never reach the vocabulary)."""
    import torch.nn.functional as F

    model = tiny_llama(vocab=len(word_tokenizer))
    items = [tokenize_example(e, word_tokenizer, TrainConfig(max_length=64)) for e in make_examples(4)]
    batch, n = collate(items, word_tokenizer.pad_token_id), n_targets(items)
    seen = []
    hook = model.get_output_embeddings().register_forward_hook(lambda _m, args, _out: seen.append(args[0].shape))
    loss = sft_loss(model, model, batch, n)
    hook.remove()
    loss.backward()
    grads = {k: p.grad.clone() for k, p in model.named_parameters()}
    model.zero_grad()
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    ref = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), batch["labels"][:, 1:].reshape(-1),
                          ignore_index=IGNORE, reduction="sum") / n
    ref.backward()
    assert seen == [torch.Size([n, model.config.hidden_size])] and n < batch["input_ids"].numel() / 3
    assert torch.allclose(loss, ref, rtol=1e-6, atol=0)
    for k, p in model.named_parameters():
        assert torch.allclose(grads[k], p.grad, rtol=1e-5, atol=1e-8), k


def test_a_part_without_labels_has_zero_loss_and_zero_gradients(word_tokenizer):
    """A DDP rank left without examples runs one fully ignored example: nothing reaches the head, and every
    parameter still gets a (zero) gradient, as the collectives need."""
    model = tiny_llama(vocab=len(word_tokenizer))
    item = tokenize_example(make_examples(1)[0], word_tokenizer, TrainConfig(max_length=64))
    batch = collate([{"input_ids": item["input_ids"], "labels": [IGNORE] * len(item["labels"])}],
                    word_tokenizer.pad_token_id)
    loss = sft_loss(model, model, batch, 5)
    loss.backward()
    assert loss.item() == 0.0
    assert all(p.grad is not None and not p.grad.any() for p in model.parameters())


def test_training_lowers_loss_and_logs_steps(word_tokenizer, tmp_path):
    model = tiny_llama(vocab=len(word_tokenizer))
    names = {n for n, _ in model.named_parameters()}
    cfg = TrainConfig(lr=3e-3, micro_batch=4, grad_accum=2, epochs=4, max_length=64)
    res = train(model, word_tokenizer, make_examples(16), names, cfg, log_path=tmp_path / "log.jsonl",
                progress=False)
    assert res.steps == 8 and len((tmp_path / "log.jsonl").read_text().splitlines()) == 8
    assert res.losses[-1] < res.losses[0]
    assert res.n_trainable == res.n_params


def test_checkpoint_holds_only_trainable_tensors_and_merges_back(word_tokenizer, tmp_path):
    model = tiny_llama(vocab=len(word_tokenizer))
    method = get_method("coarse_only").from_params({"layers": "bottom2", "modules": "ffn"})
    names = method.trainable(model)
    train(model, word_tokenizer, make_examples(8), names, TrainConfig(lr=1e-2, micro_batch=4, grad_accum=1,
          epochs=1, max_length=64), progress=False)
    save_trainable(model, names, tmp_path, {"method": "coarse_only"})
    from safetensors.torch import load_file
    assert set(load_file(str(tmp_path / "trainable.safetensors"))) == names
    base = tiny_llama(vocab=len(word_tokenizer))
    merged = merge_trainable(base, tmp_path)
    for (n, p), (_, q) in zip(model.named_parameters(), merged.named_parameters()):
        assert torch.equal(p, q), n


def test_train_config_rejects_unknown_and_bad_values():
    with pytest.raises(ValueError, match=r"train: unknown key\(s\) \['learning_rate'\]"):
        config_from_dict({"learning_rate": 1e-4})
    with pytest.raises(ValueError, match=r"train\.lr = -1"):
        config_from_dict({"lr": -1})


def test_registry_lists_every_method_even_after_one_file_was_imported_directly():
    import subprocess
    import sys

    code = ("import cofitune.core.methods.l1\n"  # registers l1, l2, full_sft only
            "from cofitune.core.methods import method_names\n"
            "print(','.join(method_names()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert set(out.split(",")) >= {"original", "full_sft", "coarse_only", "cofitune", "l1", "l2", "wise_ft",
                                   "lora", "v_softmask"}


def test_every_method_declares_its_kind_and_a_bad_kind_is_refused():
    from dataclasses import dataclass

    from cofitune.core.methods import KINDS, METHODS, Method, get_method, register

    get_method("original")  # discovers every method file
    kinds = {name: cls.kind for name, cls in METHODS.items()}
    assert set(kinds.values()) <= set(KINDS)
    assert kinds["original"] == "reference" and kinds["wise_ft"] == "post_hoc" and kinds["full_sft"] == "trained"
    assert get_method("coarse_only").from_params({"from_search": True}).from_search is True
    assert get_method("full_sft")().from_search is False
    with pytest.raises(ValueError, match="kind = 'frozen'"):
        @register("bad_kind")
        @dataclass(frozen=True)
        class Bad(Method):
            kind = "frozen"
    with pytest.raises(ValueError, match="post_hoc: it must define sources"):
        @register("bad_post_hoc")
        @dataclass(frozen=True)
        class BadPostHoc(Method):
            kind = "post_hoc"
    assert "bad_kind" not in METHODS and "bad_post_hoc" not in METHODS


def test_cofitune_masks_the_regions_own_units_unless_told():
    from cofitune.core.methods import get_method

    cls = get_method("cofitune")
    assert cls.from_params({"modules": "ffn"}).units == ("up_proj", "down_proj")  # the release's default
    assert cls.from_params({"modules": "mha"}).units == ("q_proj", "k_proj", "v_proj")  # a searched MHA region
    assert cls.from_params({"modules": "mha+ffn"}).units == ("up_proj", "down_proj")
    assert cls.from_params({"modules": "mha+ffn", "mask_units": ["q_proj"]}).units == ("q_proj",)


def test_a_searched_cofitune_row_trains_an_attention_region_with_a_mask(word_tokenizer):
    """The tree search may choose MHA: the soft mask then falls on q/k/v rows (it used to fail: FFN units)."""
    import dataclasses

    import torch

    from cofitune.core.importance import unit_shapes
    from cofitune.core.methods import get_method

    model = tiny_llama(vocab=len(word_tokenizer))
    method = get_method("cofitune").from_params({"from_search": True, "target": "update"})
    method = dataclasses.replace(method, layers="bottom1", modules="mha")  # what the runner does with chosen.json
    names = method.trainable(model)
    g = torch.Generator().manual_seed(0)
    mask = method.softmask(model, names, {k: torch.rand(s, generator=g) for k, s in unit_shapes(model.config).items()})
    assert {n.split(".")[-2] for n in names} == {"q_proj", "k_proj", "v_proj"}
    assert mask is not None and set(mask.scales) == names


@pytest.mark.parametrize("method, params, text", [
    ("coarse_only", {"layers": "bottom2", "modules": "ffn", "from_search": False}, "ffn@bottom2"),
    ("coarse_only", {"layers": "middle", "modules": "mha", "from_search": True}, "mha@middle (searched)"),
    ("cofitune", {"layers": "bottom2", "modules": "ffn", "from_search": False, "mask_units": ["up_proj", "down_proj"],
                  "target": "update", "layout": "rows"}, "ffn@bottom2, update mask"),
    ("cofitune", {"layers": "bottom2", "modules": "ffn", "mask_units": ["down_proj"], "target": "grad",
                  "layout": "tiled"}, "ffn@bottom2, grad mask on down_proj, tiled layout"),
    ("hard_mask", {"layers": "bottom2", "modules": "ffn", "p": 0.25, "mask_units": None},
     "ffn@bottom2, hard mask p=0.25"),
    ("v_softmask", {"target": "grad", "layout": "rows"}, "grad mask on mha+ffn@all"),
    ("lora", {"r": 8, "alpha": 16, "dropout": 0.0, "modules": "mha+ffn", "layers": None}, "mha+ffn@all, r=8, alpha=16"),
    ("lora", {"r": 4, "alpha": 8, "dropout": 0.1, "modules": ["q_proj", "v_proj"], "layers": "top"},
     "q_proj+v_proj@top, r=4, alpha=8, dropout=0.1"),
    ("wise_ft", {"source": ["full_sft", "all"], "alpha": 0.25}, "alpha=0.25 of full_sft/all"),
    ("kl_sft", {"beta": 0.1}, "beta=0.1"),
    ("original", {}, ""),
    # not buildable here (a plugin not loaded, params of another release): the params as they are, readably
    ("no_such_method", {"modules": ["q_proj", "v_proj"], "layers": None, "on": True}, "modules=q_proj+v_proj, on=true"),
    ("full_sft", {"layers": "bottom2"}, "layers=bottom2"),
])
def test_a_runs_setting_reads_in_words(method, params, text):
    """The table's Setting column: each method says its setting in words, a region in its id form."""
    from cofitune.core.methods import describe_setting

    assert describe_setting(method, params) == text
