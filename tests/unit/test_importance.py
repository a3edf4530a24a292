"""Fine level: gate hooks, the KL proxy's gradient, normalisation, max-merge, file checks."""

import pytest
import torch
from safetensors.torch import save_file

from cofitune.core.importance import (
    compute_importance,
    gated,
    make_gates,
    max_merge,
    normalise,
    proxy_loss,
    unit_shapes,
)
from cofitune.pipeline.artifacts import load_importance, save_importance
from tests.conftest import tiny_llama


def _batch(vocab=64, b=2, t=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab, (b, t), generator=g)
    mask = torch.ones(b, t, dtype=torch.long)
    mask[1, -3:] = 0  # one padded row
    return {"input_ids": ids, "attention_mask": mask}


def test_gated_forward_with_unit_gates_equals_plain_forward():
    model = tiny_llama().eval()
    batch = _batch()
    plain = model(**batch).logits
    with gated(model, make_gates(model.config)):
        hooked = model(**batch).logits
    torch.testing.assert_close(hooked, plain, rtol=0, atol=0)


def test_gates_actually_gate():
    model = tiny_llama().eval()
    batch = _batch()
    plain = model(**batch).logits
    gates = make_gates(model.config)
    with torch.no_grad():
        gates["head"][1, 2] = 0.0
    with gated(model, gates):
        assert not torch.allclose(model(**batch).logits, plain)


def test_hooks_are_removed_after_the_block():
    model = tiny_llama().eval()
    batch = _batch()
    gates = make_gates(model.config)
    with torch.no_grad():
        gates["output"].zero_()
    with gated(model, gates, dropout=0.5):
        pass
    torch.testing.assert_close(model(**batch).logits, tiny_llama().eval()(**batch).logits)
    assert all(layer.self_attn.attention_dropout == 0.0 for layer in model.model.layers)


@pytest.mark.parametrize("unit", ["head", "intermediate", "output"])
def test_gate_gradient_equals_finite_difference(unit):
    # float64 model; Llama's RMSNorm still computes in float32, so use a central difference with a
    # step large enough to sit above that rounding noise, on the gate with the largest gradient.
    model = tiny_llama(dtype=torch.float64)
    model.train()
    model.requires_grad_(False)
    batch = _batch()
    gates = {k: v.double().detach().requires_grad_(True) for k, v in make_gates(model.config).items()}

    def loss_with(g):
        torch.manual_seed(7)  # identical dropout masks for every evaluation
        with gated(model, g, dropout=0.1):
            return proxy_loss(model, batch)

    (grad,) = torch.autograd.grad(loss_with(gates), [gates[unit]])
    index = tuple(int(i) for i in torch.unravel_index(grad.abs().argmax(), grad.shape))

    def loss_at(delta):
        g = {k: v.detach().clone() for k, v in gates.items()}
        g[unit][index] += delta
        for v in g.values():  # same autograd state as the analytic pass, so the same attention kernel
            v.requires_grad_(True)
        return loss_with(g).item()

    eps = 1e-3
    fd = (loss_at(eps) - loss_at(-eps)) / (2 * eps)
    assert abs(grad[index].item()) > 1e-7, "the test needs a non-zero gradient"
    assert grad[index].item() == pytest.approx(fd, rel=5e-3)


def test_zero_dropout_gives_zero_importance():
    model = tiny_llama()
    raw = compute_importance(model, [_batch(), _batch(seed=1)], dropout=0.0, progress=False)
    for key, shape in unit_shapes(model.config).items():
        assert raw[key].shape == shape
        assert torch.count_nonzero(raw[key]) == 0


def test_importance_is_nonzero_with_dropout_and_leaves_weights_untouched():
    model = tiny_llama()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    raw = compute_importance(model, [_batch()], dropout=0.05, progress=False)
    assert all(torch.count_nonzero(v) > 0 for v in raw.values())
    for n, p in model.named_parameters():
        assert torch.equal(p, before[n]) and p.grad is None and p.requires_grad


def test_abs_flag_accumulates_magnitudes():
    model = tiny_llama()
    torch.manual_seed(3)
    signed = compute_importance(model, [_batch(), _batch(seed=1)], dropout=0.05, progress=False)
    torch.manual_seed(3)
    absolute = compute_importance(model, [_batch(), _batch(seed=1)], dropout=0.05, abs_grad=True, progress=False)
    for key in signed:
        assert torch.all(absolute[key] >= signed[key].abs() - 1e-12)


def test_normalise_formula():
    raw = torch.tensor([[1.0, 2.0, 3.0, 6.0], [5.0, 5.0, 5.0, 5.0]])
    out = normalise(raw)
    row = raw[0]
    expected = torch.tanh((row - row.mean()) / row.std()).abs()
    torch.testing.assert_close(out[0], expected)
    assert torch.all(out[1] == 0)  # a layer with no spread ranks nothing
    assert torch.all((out >= 0) & (out < 1))


def test_max_merge_is_elementwise_max_and_checks_shapes():
    a = {"head": torch.tensor([[0.1, 0.9]]), "output": torch.tensor([[0.5]])}
    b = {"head": torch.tensor([[0.4, 0.2]]), "output": torch.tensor([[0.3]])}
    merged = max_merge([a, b])
    torch.testing.assert_close(merged["head"], torch.tensor([[0.4, 0.9]]))
    torch.testing.assert_close(merged["output"], torch.tensor([[0.5]]))
    with pytest.raises(ValueError, match="shape"):
        max_merge([a, {"head": torch.zeros(1, 3), "output": torch.zeros(1, 1)}])


def test_save_load_roundtrip_and_merge(tmp_path):
    model = tiny_llama()
    shapes = unit_shapes(model.config)
    raws = [{k: torch.randn(s, generator=torch.Generator().manual_seed(i)) for k, s in shapes.items()}
            for i in range(2)]
    paths = [tmp_path / f"imp{i}.safetensors" for i in range(2)]
    for raw, path in zip(raws, paths):
        save_importance(path, raw, {"source": str(path)})
    merged = load_importance(paths, model.config)
    for k in shapes:
        torch.testing.assert_close(merged[k], torch.maximum(normalise(raws[0][k]), normalise(raws[1][k])))


def test_wrong_shape_importance_file_names_file_and_shapes(tmp_path):
    model = tiny_llama()
    bad = {k: torch.zeros(s) for k, s in unit_shapes(model.config).items()}
    bad["intermediate"] = torch.zeros(4, 7)
    path = tmp_path / "bad.safetensors"
    save_file(bad, str(path))
    with pytest.raises(ValueError, match=r"bad\.safetensors: importance 'intermediate' has shape \(4, 7\), model expects \(4, 48\)"):
        load_importance([path], model.config)
    with pytest.raises(FileNotFoundError):
        load_importance([tmp_path / "missing.safetensors"], model.config)


def test_dropout_is_injected_into_attention_only_inside_the_block():
    model = tiny_llama()
    with gated(model, make_gates(model.config), dropout=0.003):
        assert all(layer.self_attn.attention_dropout == 0.003 for layer in model.model.layers)
    assert all(layer.self_attn.attention_dropout == 0.0 for layer in model.model.layers)


def test_attention_dropout_alone_moves_head_importance():
    # with attention-probability dropout only (MLP dropout hook bypassed), head gates still get gradient
    import cofitune.core.importance as imp

    model = tiny_llama()
    model.train()
    model.requires_grad_(False)
    gates = make_gates(model.config)
    with gated(model, gates, dropout=0.0):
        for layer in model.model.layers:
            layer.self_attn.attention_dropout = 0.2
        torch.manual_seed(0)
        loss = imp.proxy_loss(model, _batch())
    (g,) = torch.autograd.grad(loss, [gates["head"]])
    assert torch.count_nonzero(g) > 0
