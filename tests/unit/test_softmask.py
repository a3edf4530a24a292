"""Soft-mask: row masks, the release's tiled layout, grad vs update targets under AdamW, frozen params."""

import pytest
import torch

from cofitune.core.importance import unit_shapes
from cofitune.core.recipe import TrainConfig
from cofitune.core.selection import trainable_names
from cofitune.core.softmask import SoftMask, row_scale, tiled
from cofitune.core.trainer import train
from tests.conftest import make_examples, tiny_llama


def _importance(config, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {k: torch.rand(s, generator=g) for k, s in unit_shapes(config).items()}


def _grads(model, seed=0):
    torch.manual_seed(seed)
    ids = torch.randint(3, 64, (2, 12))
    model(input_ids=ids, labels=ids).loss.backward()


def test_grad_target_masks_output_rows():
    model = tiny_llama()
    names = trainable_names(model, "all", "mha+ffn")
    imp = _importance(model.config)
    mask = SoftMask.build(model, names, imp, units=("q_proj", "k_proj", "v_proj", "up_proj", "down_proj"))
    _grads(model)
    params = dict(model.named_parameters())
    g0 = {n: params[n].grad.clone() for n in names}
    mask.mask_grads(model)
    up, down = "model.layers.1.mlp.up_proj.weight", "model.layers.1.mlp.down_proj.weight"
    for r in range(params[up].shape[0]):
        torch.testing.assert_close(params[up].grad[r, :], g0[up][r, :] * (1 - imp["intermediate"][1, r]))
    for r in range(params[down].shape[0]):
        torch.testing.assert_close(params[down].grad[r, :], g0[down][r, :] * (1 - imp["output"][1, r]))
    q, k = "model.layers.2.self_attn.q_proj.weight", "model.layers.2.self_attn.k_proj.weight"
    head_dim = model.model.layers[2].self_attn.head_dim  # 8; 4 query heads, 2 kv heads
    for h in range(4):
        rows = slice(h * head_dim, (h + 1) * head_dim)
        torch.testing.assert_close(params[q].grad[rows], g0[q][rows] * (1 - imp["head"][2, h]))
    for kv in range(2):  # a kv head is protected as much as the most important query head sharing it
        rows = slice(kv * head_dim, (kv + 1) * head_dim)
        shared = imp["head"][2, 2 * kv: 2 * kv + 2].max()
        torch.testing.assert_close(params[k].grad[rows], g0[k][rows] * (1 - shared))


def test_default_units_leave_attention_unmasked():
    model = tiny_llama()
    names = trainable_names(model, "bottom2", "mha+ffn")
    mask = SoftMask.build(model, names, _importance(model.config), units=("up_proj", "down_proj"))
    assert set(mask.scales) == {n for n in names if "mlp" in n}


def test_tiled_layout_matches_flat_index_formula():
    model = tiny_llama()
    name = "model.layers.0.mlp.up_proj.weight"  # (48, 32): rows of 48, flattened in chunks of 32
    imp = _importance(model.config)
    rows = row_scale(model, name, imp)
    scale = tiled(rows, model.get_parameter(name).shape)
    flat = scale.reshape(-1)
    for k in (0, 1, 31, 32, 47, 48, 100, flat.numel() - 1):
        assert flat[k] == rows[k % 48]
    assert not torch.equal(scale, rows[:, None].expand_as(scale))  # a scramble, not per-row
    mask = SoftMask.build(model, {name}, imp, units=("up_proj",), layout="tiled")
    torch.testing.assert_close(mask.scales[name], scale)


def test_tiled_layout_is_per_column_for_square_qproj():
    model = tiny_llama(kv_heads=4)
    name = "model.layers.0.self_attn.q_proj.weight"  # (32, 32)
    rows = row_scale(model, name, _importance(model.config))
    scale = tiled(rows, torch.Size((32, 32)))
    torch.testing.assert_close(scale, rows[None, :].expand(32, 32))


@pytest.mark.parametrize("units,target,layout,match", [
    (("up_projection",), "grad", "rows", "unknown softmask unit"),
    (("up_proj",), "weights", "rows", "target"),
    (("up_proj",), "grad", "diagonal", "layout"),
])
def test_bad_softmask_settings_raise(units, target, layout, match):
    model = tiny_llama()
    with pytest.raises(ValueError, match=match):
        SoftMask.build(model, trainable_names(model, "all", "ffn"), _importance(model.config),
                       units=units, target=target, layout=layout)


def _per_row_update_ratio(target, optimizer, steps=5):
    """Ratio of per-row update norms masked/unmasked after steps on an identical gradient sequence."""
    name = "model.layers.1.mlp.up_proj.weight"
    deltas = []
    for masked in (False, True):
        model = tiny_llama()
        imp = _importance(model.config, seed=1)
        mask = SoftMask.build(model, {name}, imp, units=("up_proj",), target=target) if masked else None
        p = model.get_parameter(name)
        theta0 = p.detach().clone()
        model.requires_grad_(False)
        p.requires_grad_(True)
        opt = optimizer([p])
        for step in range(steps):
            # the same gradient sequence for both runs, independent of the trajectory
            p.grad = torch.randn(p.shape, generator=torch.Generator().manual_seed(step)) * (step + 1)
            if mask:
                mask.mask_grads(model)
            before = mask.snapshot(model) if mask else None
            opt.step()
            if mask:
                mask.mask_update(model, before)
            opt.zero_grad()
        deltas.append((p.detach() - theta0).norm(dim=1))
    return deltas[1] / deltas[0], 1 - imp["intermediate"][1]


def test_update_target_scales_adamw_row_updates_by_one_minus_importance():
    ratio, expected = _per_row_update_ratio("update", lambda ps: torch.optim.AdamW(ps, lr=1e-3, weight_decay=0.0))
    torch.testing.assert_close(ratio, expected, rtol=1e-4, atol=1e-6)


def test_grad_target_barely_changes_adamw_row_updates():
    # Adam divides by sqrt(v): a constant per-row gradient scale c cancels (m -> c m, v -> c^2 v)
    ratio, expected = _per_row_update_ratio("grad", lambda ps: torch.optim.AdamW(ps, lr=1e-3, weight_decay=0.0))
    assert torch.allclose(ratio, torch.ones_like(ratio), atol=1e-3)
    assert (expected < 0.9).any(), "the importance must ask for real scaling for this test to mean anything"


def test_grad_target_scales_sgd_row_updates():
    ratio, expected = _per_row_update_ratio("grad", lambda ps: torch.optim.SGD(ps, lr=1e-2))
    torch.testing.assert_close(ratio, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("target", ["grad", "update"])
def test_frozen_parameters_bit_identical_after_training(target, word_tokenizer):
    model = tiny_llama(vocab=len(word_tokenizer))
    names = trainable_names(model, "bottom2", "ffn")
    mask = SoftMask.build(model, names, _importance(model.config), units=("up_proj", "down_proj"), target=target)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    cfg = TrainConfig(lr=1e-2, micro_batch=4, grad_accum=1, epochs=1, max_length=64)
    result = train(model, word_tokenizer, make_examples(16), names, cfg, softmask=mask, progress=False)
    assert result.steps == 4 and result.trainable == sorted(names)
    for n, p in model.named_parameters():
        if n in names:
            assert not torch.equal(p, before[n]), f"{n} did not train"
        else:
            assert torch.equal(p, before[n]), f"frozen {n} changed"


def test_unmatched_softmask_unit_raises():
    model = tiny_llama()
    with pytest.raises(ValueError, match=r"\['q_proj'\] match no trainable parameter"):
        SoftMask.build(model, trainable_names(model, "all", "ffn"), _importance(model.config),
                       units=("q_proj", "up_proj"))


def test_train_masks_gradients_before_clipping(word_tokenizer, monkeypatch):
    import cofitune.core.trainer as trainer_mod

    model = tiny_llama(vocab=len(word_tokenizer))
    name = "model.layers.1.mlp.up_proj.weight"
    imp = _importance(model.config)
    imp["intermediate"][1] = 1.0 - 1e-7  # (1 - I) ~ 0: a masked gradient is ~0 at clipping time
    mask = SoftMask.build(model, {name}, imp, units=("up_proj",), target="grad")
    seen = []
    real_clip = torch.nn.utils.clip_grad_norm_

    def spy(params, max_norm):
        seen.append(model.get_parameter(name).grad.abs().max().item())
        return real_clip(params, max_norm)

    monkeypatch.setattr(trainer_mod.torch.nn.utils, "clip_grad_norm_", spy)
    train(model, word_tokenizer, make_examples(4), {name}, TrainConfig(micro_batch=4, grad_accum=1, epochs=1,
          max_length=64, clip=1.0), softmask=mask, progress=False)
    assert seen and seen[0] < 1e-8


def test_train_update_target_scales_first_step_rows(word_tokenizer):
    name = "model.layers.1.mlp.up_proj.weight"
    cfg = TrainConfig(lr=1e-2, micro_batch=4, grad_accum=1, epochs=1, max_length=64, warmup_ratio=0.0)
    deltas = []
    for masked in (False, True):
        model = tiny_llama(vocab=len(word_tokenizer))
        imp = _importance(model.config, seed=2)
        theta0 = model.get_parameter(name).detach().clone()
        mask = SoftMask.build(model, {name}, imp, units=("up_proj",), target="update") if masked else None
        train(model, word_tokenizer, make_examples(4), {name}, cfg, softmask=mask, progress=False)
        deltas.append(model.get_parameter(name).detach() - theta0)
    torch.testing.assert_close(deltas[1], deltas[0] * (1 - imp["intermediate"][1])[:, None], rtol=1e-4, atol=1e-7)


def test_tied_embeddings_full_sft_roundtrip_and_coarse_freezing(word_tokenizer, tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    from cofitune.core.methods import get_method
    from cofitune.pipeline.model import merge_trainable, save_trainable

    def tied():
        torch.manual_seed(0)
        return LlamaForCausalLM(LlamaConfig(vocab_size=len(word_tokenizer), hidden_size=32, intermediate_size=48,
                                            num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                                            tie_word_embeddings=True, pad_token_id=0, eos_token_id=2))

    cfg = TrainConfig(lr=1e-2, micro_batch=4, grad_accum=1, epochs=1, max_length=64)
    model = tied()
    head0 = model.lm_head.weight.detach().clone()
    names = get_method("coarse_only").from_params({"layers": "bottom2", "modules": "ffn"}).trainable(model)
    train(model, word_tokenizer, make_examples(4), names, cfg, progress=False)
    assert torch.equal(model.lm_head.weight, head0)
    full = tied()
    names = get_method("full_sft").from_params({}).trainable(full)
    train(full, word_tokenizer, make_examples(4), names, cfg, progress=False)
    save_trainable(full, names, tmp_path, {})
    merged = merge_trainable(tied(), tmp_path)
    assert merged.lm_head.weight.data_ptr() == merged.model.embed_tokens.weight.data_ptr()
    assert torch.equal(merged.lm_head.weight, full.lm_head.weight)
    for (n, p), (_, q) in zip(full.named_parameters(), merged.named_parameters()):
        assert torch.equal(p, q), n
