"""The model sheet (``config/models.yaml``): what each entry may say, checked without loading a model
(the workflow reads the sheet when it parses the DAG; :mod:`cofitune.pipeline.model` prepares the entries).

Sources in the sheet (``config/models.yaml``):

* ``gguf-package``: a GGUF file shipped inside an installed Python package (``package`` + ``file``);
  dequantised once and saved as a safetensors HF folder (a GGUF-loaded model cannot be saved directly);
* ``hf-dir``: a local Hugging Face folder;
* ``hub``: a hub id (cluster use only; the demo and the tests never download);
* ``tiny``: a randomly initialised Llama of the given shape (tests only), with the tokenizer of a
  ``gguf-package`` entry.

``chat: true`` marks an aligned chat model: with ``train.template: auto`` it is trained and evaluated in its
tokenizer's chat template (speciality prompts and lm-eval's ``apply_chat_template``); an entry without it
(a base model, the paper's Chinese-Alpaca models) uses the Alpaca format.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

SOURCES = ("gguf-package", "hf-dir", "hub", "tiny")
#: the torch dtypes an entry may ask for, by name
DTYPE_NAMES = ("float32", "bfloat16", "float16")


def read_sheet(path: str | Path) -> dict:
    """Read and validate the model sheet (YAML mapping name -> spec)."""
    path = Path(path)
    sheet = yaml.safe_load(path.read_text()) or {}
    allowed = {"source", "package", "wheel", "file", "location", "revision", "dtype", "n_layers", "shape", "seed",
               "tokenizer_from", "description", "chat"}
    for name, spec in sheet.items():
        where = f"{path}: {name}"
        unknown = sorted(set(spec) - allowed)
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
        if spec.get("source") not in SOURCES:
            raise ValueError(f"{where}.source = {spec.get('source')!r}; expected one of {SOURCES}")
        if not isinstance(spec.get("chat", False), bool):
            raise ValueError(f"{where}.chat = {spec['chat']!r}; expected true (an aligned chat model, trained and "
                             f"evaluated in its tokenizer's chat template) or false")
        if spec.get("dtype", "float32") not in DTYPE_NAMES:
            raise ValueError(f"{where}.dtype = {spec['dtype']!r}; expected one of {sorted(DTYPE_NAMES)}")
        needs = {"gguf-package": ("package", "file"), "hf-dir": ("location",), "hub": ("location",),
                 "tiny": ("shape", "tokenizer_from")}[spec["source"]]
        for key in needs:
            if key not in spec:
                raise ValueError(f"{where}: source {spec['source']!r} needs key {key!r}")
        if spec["source"] == "tiny" and spec["tokenizer_from"] not in sheet:
            raise ValueError(f"{where}.tokenizer_from = {spec['tokenizer_from']!r} is not in the sheet")
    return json.loads(json.dumps(sheet))


def is_chat(sheet: dict, model: str) -> bool:
    """Whether the sheet marks ``model`` as an aligned chat model (key ``chat``, default false)."""
    return bool(sheet[model].get("chat", False))
