"""Coarse level: which (layer range x module set) region is trainable.

Layer ranges are fractions of the model depth N, never typed layer lists: 0-indexed layer ``i`` is in
``(a*N, b*N]`` when ``floor(a*N) <= i < floor(b*N)`` (docs/method.md section 2).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch.nn as nn

# name -> (a, b) as fractions of N
LAYER_RANGES: dict[str, tuple[float, float]] = {
    "all": (0.0, 1.0),
    "bottom-plus": (0.0, 0.5),
    "middle-plus": (0.25, 0.75),
    "top-plus": (0.5, 1.0),
    "bottom1": (0.0, 0.25),
    "bottom2": (0.25, 0.5),
    "middle": (0.5, 0.75),
    "top": (0.75, 1.0),
}

# Unit -> projection names shared by Llama / Qwen2 / Mistral. MHA deliberately omits o_proj and FFN
# omits gate_proj, as in the paper's release.
MODULE_SETS: dict[str, tuple[str, ...]] = {
    "mha": ("q_proj", "k_proj", "v_proj"),
    "ffn": ("up_proj", "down_proj"),
    "mha+ffn": ("q_proj", "k_proj", "v_proj", "up_proj", "down_proj"),
}

#: a decoder layer's projection parameter: groups (layer index, projection name, weight|bias)
LAYER_PARAM = re.compile(r"(?:^|\.)layers\.(\d+)\.(?:self_attn|mlp)\.(\w+)\.(weight|bias)$")

#: the projections a soft mask scales row by row (:mod:`cofitune.core.softmask`): every unit of MODULE_SETS
MASKABLE = MODULE_SETS["mha+ffn"]
#: the soft mask's options: what it scales (the gradient, or the optimiser's update) and how a row mask is
#: laid out (per row, or tiled over the blocks of a sharded tensor)
TARGETS = ("grad", "update")
LAYOUTS = ("rows", "tiled")


def layer_range(name: str, n_layers: int) -> range:
    """Return the 0-indexed layers of a named range for a model with ``n_layers`` layers.

    Args:
        name: one of ``LAYER_RANGES`` (e.g. ``"bottom2"``) or an explicit ``"start-stop"`` half-open
            span such as ``"8-16"``.
        n_layers: model depth N.

    Raises:
        ValueError: unknown name, or a range that is empty or outside ``[0, n_layers)``.
    """
    if n_layers < 1:
        raise ValueError(f"n_layers must be >= 1, got {n_layers}")
    check_range_name(name)
    if name in LAYER_RANGES:
        a, b = LAYER_RANGES[name]
        span = range(math.floor(a * n_layers), math.floor(b * n_layers))
    else:
        start, stop = (int(x) for x in name.split("-"))
        span = range(start, stop)
    if len(span) == 0 or span.start < 0 or span.stop > n_layers:
        raise ValueError(
            f"layer range {name!r} gives layers {span.start}..{span.stop - 1}, which is empty or "
            f"outside a model with {n_layers} layers"
        )
    return span


def check_range_name(name: str) -> None:
    """Raise ``ValueError`` unless ``name`` is a named range or an explicit ``start-stop`` span."""
    if name not in LAYER_RANGES and not re.fullmatch(r"\d+-\d+", str(name)):
        raise ValueError(
            f"unknown layer range {name!r}; expected one of {sorted(LAYER_RANGES)} or 'start-stop'"
        )


def module_names(modules: str | Iterable[str]) -> tuple[str, ...]:
    """Resolve a module-set name (``"ffn"``) or a list of projection names to projection names."""
    if isinstance(modules, str):
        if modules in MODULE_SETS:
            return MODULE_SETS[modules]
        modules = [modules]
    known = set(MODULE_SETS["mha+ffn"]) | {"o_proj", "gate_proj"}
    names = tuple(modules)
    bad = [m for m in names if m not in known]
    if bad or not names:
        raise ValueError(
            f"unknown module(s) {bad or names!r}; expected a set in {sorted(MODULE_SETS)} "
            f"or projection names from {sorted(known)}"
        )
    return names


def trainable_names(model: nn.Module, layers: str, modules: str | Iterable[str]) -> set[str]:
    """Exact parameter names trained for a (layer range, module set) region.

    Embeddings, norms and the LM head are never in the set. Raises ``ValueError`` when nothing matches.
    """
    n_layers = model.config.num_hidden_layers
    span = set(layer_range(layers, n_layers))
    wanted = set(module_names(modules))
    names = set()
    for name, _ in model.named_parameters():
        m = LAYER_PARAM.search(name)
        if m and int(m.group(1)) in span and m.group(2) in wanted:
            names.add(name)
    if not names:
        raise ValueError(f"selection layers={layers!r} modules={modules!r} matches no parameter")
    return names


def freeze_all_but(model: nn.Module, names: set[str]) -> None:
    """Set ``requires_grad`` to True exactly for ``names``; raise on a name the model lacks."""
    params = dict(model.named_parameters())
    missing = sorted(names - params.keys())
    if missing:
        raise ValueError(f"trainable names not in model: {missing[:5]}")
    for name, p in params.items():
        p.requires_grad_(name in names)
