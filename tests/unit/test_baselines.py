"""Baselines: Wise-FT endpoints, LoRA merged == unmerged, L2 with lam=0 == Full SFT, V-SoftMask units."""

import pytest
import torch

from cofitune.core.importance import unit_shapes
from cofitune.core.methods import get_method
from cofitune.core.recipe import TrainConfig
from cofitune.core.trainer import train
from cofitune.pipeline.model import load_trainable, save_trainable
from tests.conftest import make_examples, tiny_llama

CFG = TrainConfig(lr=1e-2, micro_batch=4, grad_accum=1, epochs=1, max_length=64)


def _run(method_name, params, tok, **train_kw):
    model = tiny_llama(vocab=len(tok))
    method = get_method(method_name).from_params(params)
    model = method.prepare(model)
    names = method.trainable(model)
    train(model, tok, make_examples(8), names, CFG, regularizer=method.regularizer(model, names),
          progress=False, **train_kw)
    return method.finalize(model, names)


def test_l2_with_zero_lambda_equals_full_sft_bit_for_bit(word_tokenizer):
    full, _ = _run("full_sft", {}, word_tokenizer)
    l2, _ = _run("l2", {"lam": 0.0}, word_tokenizer)
    for (n, p), (_, q) in zip(full.named_parameters(), l2.named_parameters()):
        assert torch.equal(p, q), n


@pytest.mark.parametrize("method", ["l1", "l2"])
def test_distance_penalty_pulls_towards_initial_weights(method, word_tokenizer):
    theta0 = dict(tiny_llama(vocab=len(word_tokenizer)).named_parameters())
    free, _ = _run("full_sft", {}, word_tokenizer)
    held, _ = _run(method, {"lam": 10.0}, word_tokenizer)

    def dist(m):
        return sum(((p - theta0[n]) ** 2).sum().item() for n, p in m.named_parameters())
    assert dist(held) < dist(free)


def test_wise_ft_endpoints_and_midpoint(word_tokenizer, tmp_path):
    tuned, names = _run("full_sft", {}, word_tokenizer)
    save_trainable(tuned, names, tmp_path, {})
    base = dict(tiny_llama(vocab=len(word_tokenizer)).named_parameters())
    for alpha in (0.0, 1.0, 0.5):
        model = tiny_llama(vocab=len(word_tokenizer))
        written = get_method("wise_ft").from_params({"alpha": alpha}).combine(model, [load_trainable(tmp_path)])
        assert written == names
        for n, p in model.named_parameters():
            expected = {0.0: base[n], 1.0: dict(tuned.named_parameters())[n]}.get(alpha)
            if expected is not None:
                assert torch.equal(p, expected), (alpha, n)
            else:
                torch.testing.assert_close(p, (base[n] + dict(tuned.named_parameters())[n]) / 2)


def test_wise_ft_rejects_bad_alpha():
    with pytest.raises(ValueError, match="alpha"):
        get_method("wise_ft").from_params({"alpha": 1.5})


def test_lora_merged_equals_unmerged_outputs(word_tokenizer):
    model = tiny_llama(vocab=len(word_tokenizer))
    method = get_method("lora").from_params({"r": 4, "alpha": 8, "modules": "mha+ffn", "layers": "bottom2"})
    model = method.prepare(model)
    names = method.trainable(model)
    assert names and all("lora_" in n for n in names)
    assert {int(n.split("layers.")[1].split(".")[0]) for n in names} == {1}  # bottom2 of 4 layers
    train(model, word_tokenizer, make_examples(8), names, CFG, progress=False)
    ids = torch.randint(4, len(word_tokenizer), (2, 9), generator=torch.Generator().manual_seed(0))
    model.eval()
    with torch.no_grad():
        unmerged = model(input_ids=ids).logits
    merged, targets = method.finalize(model, names)
    with torch.no_grad():
        torch.testing.assert_close(merged(input_ids=ids).logits, unmerged, rtol=1e-5, atol=1e-5)
    assert targets == {f"model.layers.1.{blk}.{p}.weight" for blk, ps in
                       (("self_attn", ("q_proj", "k_proj", "v_proj")), ("mlp", ("up_proj", "down_proj"))) for p in ps}


def test_v_softmask_masks_every_unit_type_on_all_layers():
    model = tiny_llama()
    method = get_method("v_softmask").from_params({})
    names = method.trainable(model)
    imp = {k: torch.rand(s) for k, s in unit_shapes(model.config).items()}
    mask = method.softmask(model, names, imp)
    assert len(mask.scales) == 4 * 5 and mask.target == "grad"
    assert len(names) == len(list(model.parameters()))


@pytest.mark.parametrize("power", [1, 2])
def test_distance_penalty_adds_the_exact_gradient_in_closed_form(power):
    """The penalty's value and the gradient it adds equal autograd's of lam * sum(|theta - theta0|^power)."""
    from cofitune.core.methods.l2 import distance_penalty

    model = tiny_llama()
    names = {"model.layers.0.mlp.up_proj.weight", "model.layers.1.self_attn.q_proj.weight"}
    params = dict(model.named_parameters())
    theta0 = {n: params[n].detach().clone() for n in names}
    penalty = distance_penalty(model, names, 0.3, power)
    with torch.no_grad():
        for n in names:
            params[n].add_(torch.randn_like(params[n]) * 0.1)
            params[n].view(-1)[:3] = theta0[n].view(-1)[:3]  # at theta0: the subgradient 0, as autograd's
    expected = 0.3 * sum(((params[n] - theta0[n]).abs() ** power).sum() for n in names)
    expected.backward()
    want = {n: params[n].grad.clone() for n in names}
    model.zero_grad(set_to_none=True)
    value = penalty()
    assert value == pytest.approx(expected.item(), rel=1e-5)
    for n in names:
        torch.testing.assert_close(params[n].grad, want[n], rtol=1e-6, atol=1e-7)
    assert all(p.grad is None for n, p in params.items() if n not in names)
