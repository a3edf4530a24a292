"""train.bf16: "auto" resolves to the device's native support; true where bf16 is only emulated is an error."""

import copy
from pathlib import Path

import pytest
import torch
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from cofitune.core.recipe import TrainConfig, config_from_dict
from cofitune.core.trainer import native_bf16, resolve_bf16, train
from tests.conftest import make_examples, tiny_llama

ROOT = Path(__file__).resolve().parents[2]
CPU = torch.device("cpu")


@pytest.fixture
def cpu_bf16(monkeypatch):
    """Pretend the CPU has (True) or lacks (False) native bf16 matmul."""
    def set_(native: bool):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    return set_


@pytest.mark.parametrize("native", [True, False])
def test_auto_follows_native_support(cpu_bf16, native):
    cpu_bf16(native)
    assert native_bf16(CPU)[0] is native
    assert resolve_bf16("auto", CPU) is native


def test_true_where_bf16_is_emulated_is_refused_with_the_key(cpu_bf16):
    cpu_bf16(False)
    with pytest.raises(ValueError, match=r"train\.bf16 = true.*no native bf16.*AVX512-BF16 False.*auto"):
        resolve_bf16(True, CPU)


def test_true_where_native_and_false_anywhere(cpu_bf16):
    cpu_bf16(True)
    assert resolve_bf16(True, CPU) is True
    cpu_bf16(False)
    assert resolve_bf16(False, CPU) is False


def test_bad_setting_is_rejected():
    with pytest.raises(ValueError, match=r"train\.bf16 = 'yes'"):
        config_from_dict({"bf16": "yes"})
    with pytest.raises(ValueError, match=r"train\.bf16 = 'yes'"):
        resolve_bf16("yes", CPU)


def test_schema_accepts_auto_and_rejects_other_strings():
    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    assert cfg["train"]["bf16"] == "auto"
    validate(copy.deepcopy(cfg), str(ROOT / "workflow/schemas/config.schema.yaml"))
    cfg["train"]["bf16"] = "maybe"
    with pytest.raises(WorkflowError, match="maybe"):
        validate(cfg, str(ROOT / "workflow/schemas/config.schema.yaml"))


def _trained(tok, bf16):
    model = tiny_llama(vocab=len(tok))
    names = {n for n, _ in model.named_parameters()}
    res = train(model, tok, make_examples(8), names,
                TrainConfig(lr=1e-2, micro_batch=4, grad_accum=1, epochs=1, max_length=64, bf16=bf16),
                progress=False)
    return model, res


@pytest.mark.parametrize("native", [True, False])
def test_auto_trains_exactly_as_the_setting_it_resolves_to_and_records_it(word_tokenizer, cpu_bf16, native):
    cpu_bf16(native)
    auto_model, auto_res = _trained(word_tokenizer, "auto")
    same_model, same_res = _trained(word_tokenizer, native)
    assert auto_res.bf16 is same_res.bf16 is native
    assert auto_res.losses == same_res.losses
    for (n, p), (_, q) in zip(auto_model.named_parameters(), same_model.named_parameters()):
        assert torch.equal(p, q), n
    if native:  # and bf16 autocast really changed the arithmetic
        assert auto_res.losses != _trained(word_tokenizer, False)[1].losses
