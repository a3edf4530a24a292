"""The 2024-2026 forgetting-mitigation baselines, each by its defining property: MoFO's per-matrix update count
and its AdamW limit, HFT's frozen half, the hard mask's frozen rows and its coarse-only limit, KL-SFT's term and
its Full SFT limit, FLOW's weights and its uniform limit, DFT's gradient, TIES/DARE's endpoints."""

import dataclasses
import math

import pytest
import torch

from cofitune.core.importance import unit_shapes
from cofitune.core.methods import get_method
from cofitune.core.recipe import TrainConfig
from cofitune.core.trainer import collate, sft_loss, tokenize_example, train
from tests.conftest import make_examples, tiny_llama

CFG = TrainConfig(lr=1e-2, micro_batch=4, grad_accum=1, epochs=1, max_length=64)


def _train(method_name, params, tok, *, cfg=CFG, importance=None, model=None):
    model = model if model is not None else tiny_llama(vocab=len(tok))
    method = get_method(method_name).from_params(params)
    model = method.prepare(model)
    names = method.trainable(model)
    mask = method.softmask(model, names, importance) if method.needs_importance else None
    result = train(model, tok, make_examples(8), names, cfg, softmask=mask, regularizer=method.regularizer(model, names),
                   objective=method.objective, optimizer_step=method.optimizer_step, progress=False)
    return model, names, result


def _same(a, b) -> list[str]:
    """Names of the parameters that differ between two models (bit for bit)."""
    pb = dict(b.named_parameters())
    return [n for n, p in a.named_parameters() if not torch.equal(p, pb[n])]


def _importance(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {k: torch.rand(shape, generator=g) for k, shape in unit_shapes(model.config).items()}


# ---- MoFO -------------------------------------------------------------------------------------------------

def test_mofo_at_fraction_one_is_adamw_bit_for_bit(word_tokenizer):
    full, _, _ = _train("full_sft", {}, word_tokenizer)
    mofo, _, _ = _train("mofo", {"fraction": 1.0}, word_tokenizer)
    assert _same(full, mofo) == []


@pytest.mark.parametrize("fraction", [0.05, 0.15, 0.5])
def test_mofo_moves_exactly_ceil_fraction_of_each_matrix_per_step(word_tokenizer, fraction):
    base = tiny_llama(vocab=len(word_tokenizer))
    theta0 = {n: p.detach().clone() for n, p in base.named_parameters()}
    model, _, _ = _train("mofo", {"fraction": fraction}, word_tokenizer,
                         cfg=dataclasses.replace(CFG, max_steps=1), model=base)
    for name, p in model.named_parameters():
        changed = int((p != theta0[name]).sum())
        if p.dim() >= 2:
            assert changed == math.ceil(fraction * p.numel()), name
        else:  # norms and biases are not filtered (as the authors' optimizer)
            assert changed > 0, name


def test_mofo_moves_the_entries_of_largest_momentum(word_tokenizer):
    """After one step Adam's momentum is (1 - beta1) * grad: the moved entries are the largest |grad|."""
    model = tiny_llama(vocab=len(word_tokenizer))
    theta0 = {n: p.detach().clone() for n, p in model.named_parameters()}
    items = [tokenize_example(e, word_tokenizer, CFG) for e in make_examples(8)]  # the whole step's batch
    loss = sft_loss(model, model, collate(items, word_tokenizer.pad_token_id),
                    sum(sum(1 for t in it["labels"][1:] if t != -100) for it in items))
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    model.zero_grad()
    _train("mofo", {"fraction": 0.1}, word_tokenizer, cfg=dataclasses.replace(CFG, max_steps=1, micro_batch=8),
           model=model)
    w = "model.layers.1.mlp.up_proj.weight"
    moved = dict(model.named_parameters())[w] != theta0[w]
    k = math.ceil(0.1 * moved.numel())
    top = torch.zeros_like(moved).view(-1)
    top[torch.topk(grads[w].abs().view(-1), k).indices] = True
    assert torch.equal(moved.view(-1), top.bool())


def test_mofo_refuses_a_fraction_outside_0_1():
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="fraction must be in"):
            get_method("mofo").from_params({"fraction": bad})


# ---- HFT --------------------------------------------------------------------------------------------------

def test_hft_freezes_half_of_each_category_bit_for_bit_and_the_seed_fixes_it(word_tokenizer):
    from cofitune.core.methods.hft import ATTENTION, FFN, half_choice

    theta0 = dict(tiny_llama(vocab=len(word_tokenizer)).named_parameters())
    model, names, result = _train("hft", {"seed": 3}, word_tokenizer)
    chosen = half_choice(4, 3)
    assert chosen == half_choice(4, 3) and chosen != half_choice(4, 4)
    for layer, projs in chosen.items():
        assert sum(p in ATTENTION for p in projs) == 2 and sum(p in FFN for p in projs) in (1, 2)
    frozen = {n for n, _ in model.named_parameters()} - names
    expected = {f"model.layers.{i}.{'self_attn' if p in ATTENTION else 'mlp'}.{p}.weight"
                for i in range(4) for p in ATTENTION + FFN if p not in chosen[i]}
    assert frozen == expected
    assert [n for n in frozen if not torch.equal(dict(model.named_parameters())[n], theta0[n])] == []
    assert result.trainable == sorted(names)  # the draw is recorded with the checkpoint


def test_hft_trains_the_norms_inside_attention_as_full_sft():
    """Qwen3's q_norm / k_norm sit inside self_attn but are norms: in neither category, they always train."""
    from transformers import Qwen3Config, Qwen3ForCausalLM

    cfg = Qwen3Config(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=64)
    model = Qwen3ForCausalLM(cfg)
    names = get_method("hft").from_params({"seed": 0}).trainable(model)
    norms = {n for n, _ in model.named_parameters() if "norm" in n}
    assert any("q_norm" in n for n in norms) and norms <= names


# ---- hard mask --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("modules,bias", [("ffn", False), ("mha", True)])
def test_hard_mask_freezes_the_top_rows_bit_for_bit(word_tokenizer, modules, bias):
    """Weight rows and, on a model with q/k/v biases (Qwen2-style), the same rows' bias entries."""
    from cofitune.core.softmask import row_scale

    base = tiny_llama(vocab=len(word_tokenizer), attention_bias=bias)
    imp = _importance(base)
    theta0 = {n: p.detach().clone() for n, p in base.named_parameters()}
    model, names, _ = _train("hard_mask", {"layers": "bottom2", "modules": modules, "p": 0.25}, word_tokenizer,
                             importance=imp, model=base)
    params = dict(model.named_parameters())
    assert any(n.endswith(".bias") for n in names) == bias
    for name in sorted(names):
        rows_imp = 1.0 - row_scale(model, name, imp)
        k = math.ceil(0.25 * rows_imp.numel())
        top = torch.topk(rows_imp, k).indices
        diff = params[name] != theta0[name]
        changed = diff.any(dim=1) if diff.dim() == 2 else diff
        assert not changed[top].any(), name  # the top-p% rows: bit-identical
        rest = torch.ones_like(changed)
        rest[top] = False
        assert changed[rest].all(), name  # every other row trained


def test_hard_mask_zeroes_the_frozen_rows_gradients_before_clipping(word_tokenizer):
    """The clip norm sees only the rows that train, as if the frozen rows had requires_grad=False."""
    model = tiny_llama(vocab=len(word_tokenizer))
    method = get_method("hard_mask").from_params({"layers": "bottom2", "modules": "ffn", "p": 0.25})
    names = method.trainable(model)
    freeze = method.softmask(model, names, _importance(model))
    items = [tokenize_example(e, word_tokenizer, CFG) for e in make_examples(4)]
    batch = collate(items, word_tokenizer.pad_token_id)
    sft_loss(model, model, batch, int((batch["labels"] != -100).sum())).backward()
    params = dict(model.named_parameters())
    before = {n: params[n].grad.clone() for n in freeze.frozen}
    freeze.mask_grads(model)
    for name, rows in freeze.frozen.items():
        assert rows.sum() == math.ceil(0.25 * rows.numel())
        assert torch.all(params[name].grad[rows] == 0), name
        assert torch.equal(params[name].grad[~rows], before[name][~rows]), name


def test_hard_mask_refuses_sharded_parameters():
    """FSDP2 shards rows across ranks (DTensors): a whole-row freeze would index the wrong entries."""
    from cofitune.core.methods.hard_mask import RowFreeze

    class Sharded(torch.nn.Parameter):
        def to_local(self):  # what marks a DTensor parameter
            return self

    module = torch.nn.Linear(4, 3)
    module.weight = Sharded(torch.zeros(3, 4))
    freeze = RowFreeze({"weight": torch.tensor([True, False, False])})
    for call in (freeze.mask_grads, freeze.snapshot):
        with pytest.raises(ValueError, match="fsdp2"):
            call(module)


def test_hard_mask_at_p_zero_is_coarse_only_bit_for_bit(word_tokenizer):
    base = tiny_llama(vocab=len(word_tokenizer))
    coarse, _, _ = _train("coarse_only", {"layers": "bottom2", "modules": "ffn"}, word_tokenizer)
    hard, _, _ = _train("hard_mask", {"layers": "bottom2", "modules": "ffn", "p": 0.0}, word_tokenizer,
                        importance=_importance(base))
    assert _same(coarse, hard) == []


# ---- KL-SFT -----------------------------------------------------------------------------------------------

def test_kl_sft_at_beta_zero_is_full_sft_bit_for_bit(word_tokenizer):
    full, _, _ = _train("full_sft", {}, word_tokenizer)
    kl, _, _ = _train("kl_sft", {"beta": 0.0}, word_tokenizer)
    assert _same(full, kl) == []


def test_kl_term_matches_a_hand_computation():
    from cofitune.core.methods.kl_sft import kl_to_reference

    logits = torch.tensor([[1.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    ref = torch.tensor([[0.0, 1.0, 0.0], [2.0, 0.0, 0.0]])
    p = torch.softmax(ref, -1)
    expected = float((p * (torch.log(p) - torch.log_softmax(logits, -1))).sum())
    assert kl_to_reference(logits, ref).item() == pytest.approx(expected, rel=1e-6)
    assert kl_to_reference(ref, ref).item() == pytest.approx(0.0, abs=1e-7)


def test_kl_sft_loss_is_ce_plus_beta_kl_to_the_untrained_copy(word_tokenizer):
    model = tiny_llama(vocab=len(word_tokenizer))
    items = [tokenize_example(e, word_tokenizer, CFG) for e in make_examples(4)]
    batch = collate(items, word_tokenizer.pad_token_id)
    loss_fn = get_method("kl_sft").from_params({"beta": 0.5}).objective(model, items, 0)
    assert loss_fn(model, model, batch, 10).item() == pytest.approx(sft_loss(model, model, batch, 10).item(),
                                                                     rel=1e-6)  # untrained: KL = 0
    import copy

    from cofitune.core.methods.kl_sft import kl_to_reference
    from cofitune.core.trainer import label_logits

    original = copy.deepcopy(model)
    with torch.no_grad():
        model.lm_head.weight.mul_(2.0)  # the model moves away from its frozen copy
        logits, _, _ = label_logits(model, model, batch)
        ref, _, _ = label_logits(original, original, batch)
        expected = sft_loss(model, model, batch, 10).item() + 0.5 * kl_to_reference(logits, ref).item() / 10
    assert expected > sft_loss(model, model, batch, 10).item() + 1e-4
    assert loss_fn(model, model, batch, 10).item() == pytest.approx(expected, rel=1e-6)  # CE + beta * KL / n


# ---- FLOW -------------------------------------------------------------------------------------------------

def test_flow_weights_are_a_pure_function_of_the_original_losses():
    from cofitune.core.methods.flow import flow_weights

    losses = [1.0, 2.0, 3.0]
    w = flow_weights(losses)  # tau = median = 2
    raw = [math.exp(-x / 2.0) for x in losses]
    assert w == pytest.approx([r / (sum(raw) / 3) for r in raw])
    assert w[0] > w[1] > w[2] and sum(w) == pytest.approx(3.0)
    assert flow_weights(losses, tau=1.0) != pytest.approx(w)
    assert flow_weights([1.5, 1.5]) == pytest.approx([1.0, 1.0])


def test_flow_with_uniform_weights_equals_full_sft(word_tokenizer):
    from cofitune.core.methods.flow import weighted_loss

    def uniform(model, items, pad_id):
        for it in items:
            it["weight"] = 1.0
        return weighted_loss

    full, _, _ = _train("full_sft", {}, word_tokenizer)
    model = tiny_llama(vocab=len(word_tokenizer))
    train(model, word_tokenizer, make_examples(8), {n for n, _ in model.named_parameters()}, CFG,
          objective=uniform, progress=False)
    for (n, p), (_, q) in zip(full.named_parameters(), model.named_parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=n)


def test_flow_weighs_each_example_by_the_untrained_model_loss(word_tokenizer):
    from cofitune.core.methods.flow import example_losses, flow_weights

    model = tiny_llama(vocab=len(word_tokenizer))
    items = [tokenize_example(e, word_tokenizer, CFG) for e in make_examples(6)]
    losses = example_losses(model, items, word_tokenizer.pad_token_id)
    for it, loss in zip(items, losses):  # one example at a time: the same mean token loss
        b = collate([it], word_tokenizer.pad_token_id)
        n = sum(1 for t in it["labels"][1:] if t != -100)
        assert loss == pytest.approx(sft_loss(model, model, b, n).item(), rel=1e-5)
    get_method("flow").from_params({}).objective(model, items, word_tokenizer.pad_token_id)
    assert [it["weight"] for it in items] == pytest.approx(flow_weights(losses))


# ---- DFT --------------------------------------------------------------------------------------------------

def test_dft_gradient_equals_the_hand_derivation_on_two_tokens(monkeypatch):
    """loss = sum_t sg(p_t) * -log p_t / n; d/dz_t = sg(p_t) * (softmax(z_t) - onehot(y_t)) / n."""
    from cofitune.core.methods.dft import dft_loss

    class Head(torch.nn.Module):  # the model: logits are free parameters at the two label positions
        def __init__(self, z):
            super().__init__()
            self.z = torch.nn.Parameter(z)
            self.lm_head = torch.nn.Identity()

        def forward(self, input_ids, attention_mask):
            return type("Out", (), {"logits": self.lm_head(self.z)})()

    z = torch.tensor([[0.2, 1.0, -0.5], [1.5, 0.1, 0.3]])
    model = Head(z.clone())
    batch = {"input_ids": torch.zeros(1, 3, dtype=torch.long), "attention_mask": torch.ones(1, 3),
             "labels": torch.tensor([[-100, 1, 2]])}
    import contextlib

    monkeypatch.setattr("cofitune.core.trainer.head_rows", lambda model, keep: contextlib.nullcontext())
    dft_loss(model, model, batch, 2).backward()  # the "model" already returns the label rows' logits
    p = torch.softmax(z, -1)
    y = torch.tensor([1, 2])
    onehot = torch.nn.functional.one_hot(y, 3).float()
    expected = p[torch.arange(2), y][:, None] * (p - onehot) / 2
    torch.testing.assert_close(model.z.grad, expected, rtol=1e-6, atol=1e-7)


# ---- TIES / DARE ------------------------------------------------------------------------------------------

def _merge_source(tok, folder):
    """A Full SFT run saved as a merge source in ``folder``: the model, its trained names, and the untrained
    and trained parameters by name."""
    from cofitune.pipeline.model import save_trainable

    tuned, names, _ = _train("full_sft", {}, tok)
    save_trainable(tuned, names, folder, {})
    return tuned, names, dict(tiny_llama(vocab=len(tok)).named_parameters()), dict(tuned.named_parameters())


@pytest.mark.parametrize("method", ["ties", "dare"])
def test_merges_at_weight_zero_are_the_original_and_at_density_one_the_fine_tuned(method, word_tokenizer, tmp_path):
    from cofitune.pipeline.model import load_trainable

    tuned, names, base, tuned_p = _merge_source(word_tokenizer, tmp_path)
    for params, expected in (({"weight": 0.0, "density": 0.3}, base), ({"weight": 1.0, "density": 1.0}, tuned_p)):
        model = tiny_llama(vocab=len(word_tokenizer))
        assert get_method(method).from_params(params).combine(model, [load_trainable(tmp_path)]) == names
        for n, p in model.named_parameters():
            if params["weight"] == 0.0:
                assert torch.equal(p, expected[n]), n
            else:  # theta0 + (theta_ft - theta0): the fine-tuned weights up to float rounding
                torch.testing.assert_close(p, expected[n], rtol=1e-6, atol=1e-6, msg=n)


def test_ties_keeps_the_largest_task_vector_entries_and_dare_drops_at_random(word_tokenizer, tmp_path):
    from cofitune.pipeline.model import load_trainable

    tuned, names, base, _ = _merge_source(word_tokenizer, tmp_path)
    w = "model.layers.0.mlp.up_proj.weight"
    delta = dict(tuned.named_parameters())[w] - base[w]
    merged = {}
    for method, params in (("ties", {"density": 0.2}), ("dare", {"density": 0.5, "seed": 1}),
                           ("dare", {"density": 0.5, "seed": 2})):
        model = tiny_llama(vocab=len(word_tokenizer))
        get_method(method).from_params(params).combine(model, [load_trainable(tmp_path)])
        merged[method, params.get("seed")] = dict(model.named_parameters())[w] - base[w]
    kept = merged["ties", None] != 0
    assert int(kept.sum()) == pytest.approx(0.2 * delta.numel(), abs=2)
    assert delta.abs()[kept].min() >= delta.abs()[~kept].max()  # magnitude trimming
    a, b = merged["dare", 1], merged["dare", 2]
    assert not torch.equal(a, b)  # the seed draws the drop
    torch.testing.assert_close(a[a != 0], 2 * delta[a != 0], rtol=1e-4, atol=1e-6)  # survivors rescaled 1/density
    assert float((a != 0).float().mean()) == pytest.approx(0.5, abs=0.05)  # it keeps about `density` of them


@pytest.mark.parametrize("method", ["ties", "dare"])
def test_merge_weight_scales_the_task_vector(method, word_tokenizer, tmp_path):
    from cofitune.pipeline.model import load_trainable

    tuned, names, base, tuned_p = _merge_source(word_tokenizer, tmp_path)
    model = tiny_llama(vocab=len(word_tokenizer))
    get_method(method).from_params({"weight": 0.3, "density": 1.0}).combine(model, [load_trainable(tmp_path)])
    for n, p in model.named_parameters():
        torch.testing.assert_close(p, base[n] + 0.3 * (tuned_p[n] - base[n]), rtol=1e-5, atol=1e-6, msg=n)
