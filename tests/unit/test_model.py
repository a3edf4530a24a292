"""Model preparation: the embedded GGUF model's folder, and hub entries read from a local HF cache only."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cofitune.pipeline.launch import offline_env
from cofitune.pipeline.model import prepare_model
from cofitune.pipeline.sheets import read_sheet
from tests.conftest import fake_hub_cache

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cofitune", *args], capture_output=True, text=True, cwd=ROOT,
                          env=offline_env(**(env or {})))


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny") / "base"
    prepare_model("tiny-llama-8", read_sheet(ROOT / "config/test_models.yaml"), out, out.with_suffix(".json"))
    return out


def test_the_prepared_gguf_folder_describes_its_dense_weights(tmp_path):
    """The GGUF load's ``quantization_config`` is not saved: the folder holds dense weights and says so, and
    a plain ``from_pretrained`` (what vLLM and lm-eval do) loads exactly them."""
    from transformers import AutoModelForCausalLM

    from cofitune.pipeline.model import _build_model

    sheet = read_sheet(ROOT / "config/models.yaml")
    out = tmp_path / "base"
    prepare_model("smollm2-135m", sheet, out, tmp_path / "base.json")
    config = json.loads((out / "config.json").read_text())
    assert "quantization_config" not in config
    reloaded = AutoModelForCausalLM.from_pretrained(str(out))
    assert getattr(reloaded.config, "quantization_config", None) is None
    built = _build_model(sheet["smollm2-135m"], sheet).state_dict()
    state = reloaded.state_dict()
    assert set(state) == set(built) and all(bool((state[k] == built[k]).all()) for k in built)


def test_a_hub_entry_is_prepared_offline_from_the_hf_cache(tmp_path, tiny_folder):
    from safetensors.torch import load_file

    snapshot = fake_hub_cache(tmp_path / "hub", "cofitune-test/tiny-llama", tiny_folder)
    sheet = tmp_path / "models.yaml"
    sheet.write_text(yaml.safe_dump({"tiny-hub": {"source": "hub", "location": "cofitune-test/tiny-llama",
                                                  "n_layers": 8}}))
    out = tmp_path / "prepared"
    proc = cli("prepare-model", "--sheet", str(sheet), "--name", "tiny-hub", "--out", str(out), "--meta",
               str(tmp_path / "prepared.json"), env={"HF_HUB_CACHE": str(tmp_path / "hub")})
    assert proc.returncode == 0, proc.stderr
    got, want = load_file(out / "model.safetensors"), load_file(snapshot / "model.safetensors")
    assert set(got) == set(want) and all(bool((got[k] == want[k]).all()) for k in want)
    assert json.loads((tmp_path / "prepared.json").read_text())["source"] == "hub"
    # fetch-models finds it cached (offline: no download is attempted)
    proc = cli("fetch-models", "--sheet", str(sheet), env={"HF_HUB_CACHE": str(tmp_path / "hub")})
    assert proc.returncode == 0 and str(snapshot) in proc.stderr, proc.stderr


def test_a_missing_hub_model_fails_in_one_line_with_the_fetch_command(tmp_path):
    sheet = tmp_path / "models.yaml"
    sheet.write_text(yaml.safe_dump({"qwen": {"source": "hub", "location": "Qwen/Qwen2.5-0.5B-Instruct"}}))
    out = tmp_path / "prepared"
    proc = cli("prepare-model", "--sheet", str(sheet), "--name", "qwen", "--out", str(out), "--meta",
               str(tmp_path / "m.json"), env={"HF_HUB_CACHE": str(tmp_path / "empty")})
    assert proc.returncode == 2 and not out.exists() and not (tmp_path / "m.json").exists()
    errors = [line for line in proc.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "hub model Qwen/Qwen2.5-0.5B-Instruct (qwen) is not in the HF cache " + str(tmp_path / "empty") in errors[0]
    assert f"python -m cofitune fetch-models --sheet {sheet} --name qwen" in errors[0]


def test_fetch_models_has_help_and_refuses_entries_it_cannot_fetch(tmp_path):
    proc = cli("fetch-models", "--help")
    assert proc.returncode == 0 and "--sheet" in proc.stdout and "Hugging Face cache" in " ".join(proc.stdout.split())
    proc = cli("fetch-models", "--sheet", str(ROOT / "config/models.yaml"), "--name", "smollm2-135m")
    assert proc.returncode == 2 and "only hub entries are fetched" in proc.stderr
    proc = cli("fetch-models", "--sheet", str(ROOT / "config/models.yaml"), "--name", "gpt-17")
    assert proc.returncode == 2 and "no model 'gpt-17'" in proc.stderr
