"""Coarse level: the layer-range oracle table and exact trainable name sets."""

import pytest

from cofitune.core.selection import MODULE_SETS, freeze_all_but, layer_range, module_names, trainable_names
from tests.conftest import tiny_llama

# docs/method.md section 2; the N=32/40 columns and the N=60 bottom2 cell are the authors' hard-coded tables.
ORACLE = {
    "all": {32: (0, 31), 40: (0, 39), 60: (0, 59)},
    "bottom-plus": {32: (0, 15), 40: (0, 19), 60: (0, 29)},
    "middle-plus": {32: (8, 23), 40: (10, 29), 60: (15, 44)},
    "top-plus": {32: (16, 31), 40: (20, 39), 60: (30, 59)},
    "bottom1": {32: (0, 7), 40: (0, 9), 60: (0, 14)},
    "bottom2": {32: (8, 15), 40: (10, 19), 60: (15, 29)},
    "middle": {32: (16, 23), 40: (20, 29), 60: (30, 44)},
    "top": {32: (24, 31), 40: (30, 39), 60: (45, 59)},
}


@pytest.mark.parametrize("name,n", [(name, n) for name in ORACLE for n in (32, 40, 60)])
def test_layer_range_oracle(name, n):
    first, last = ORACLE[name][n]
    assert layer_range(name, n) == range(first, last + 1)


def test_bottom2_of_30_layers_is_7_to_14():
    assert list(layer_range("bottom2", 30)) == list(range(7, 15))


def test_explicit_span():
    assert layer_range("3-5", 8) == range(3, 5)


@pytest.mark.parametrize("name,n,match", [
    ("bottom3", 32, "unknown layer range"),
    ("5-5", 8, "empty"),
    ("6-12", 8, "outside"),
    ("bottom1", 3, "empty"),  # floor(0.25*3) = 0: no layer
])
def test_bad_ranges_raise(name, n, match):
    with pytest.raises(ValueError, match=match):
        layer_range(name, n)


def test_trainable_names_exact_ffn_bottom2():
    model = tiny_llama(n_layers=8)
    names = trainable_names(model, "bottom2", "ffn")
    assert names == {f"model.layers.{i}.mlp.{p}.weight" for i in (2, 3) for p in ("up_proj", "down_proj")}


def test_trainable_names_exact_mha_top():
    model = tiny_llama(n_layers=8)
    names = trainable_names(model, "top", "mha")
    assert names == {f"model.layers.{i}.self_attn.{p}.weight" for i in (6, 7) for p in ("q_proj", "k_proj", "v_proj")}


def test_trainable_names_never_include_embeddings_norms_or_head():
    model = tiny_llama(n_layers=4)
    names = trainable_names(model, "all", "mha+ffn")
    assert len(names) == 4 * 5
    assert not any(("embed" in n) or ("norm" in n) or ("lm_head" in n) or ("o_proj" in n) or ("gate_proj" in n)
                   for n in names)


def test_module_sets_match_paper():
    assert MODULE_SETS["mha"] == ("q_proj", "k_proj", "v_proj")
    assert MODULE_SETS["ffn"] == ("up_proj", "down_proj")


@pytest.mark.parametrize("modules", ["up_projection,down_projection", ["up_projection"], "attn", []])
def test_unknown_module_names_raise(modules):
    # the release's default "up_projection,down_projection" matched nothing and silently masked nothing
    with pytest.raises(ValueError, match="unknown module"):
        module_names(modules)


def test_freeze_all_but_sets_exact_flags():
    model = tiny_llama(n_layers=4)
    names = trainable_names(model, "bottom2", "ffn")
    freeze_all_but(model, names)
    assert {n for n, p in model.named_parameters() if p.requires_grad} == names
    with pytest.raises(ValueError, match="not in model"):
        freeze_all_but(model, {"model.layers.99.mlp.up_proj.weight"})
