"""Method registry: one file per method, registered with ``@register("name")``.

Every module in this package is imported on first use, so a new method needs no edit elsewhere: the
config schema's method names and the DAG's wildcard constraint are read from :data:`METHODS`. The workflow
imports the registry each time it parses the DAG (and again inside every cluster job), so the method files
import torch where they compute, not at the top: a plugin may import it anywhere, at a few seconds per parse.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:  # the registry is read when the DAG parses: no torch import here
    import torch.nn as nn

    from cofitune.core.softmask import SoftMask

METHODS: dict[str, type[Method]] = {}
#: what a run of a method is: ``reference`` (the base model evaluated as is), ``trained`` (it trains), or
#: ``post_hoc`` (its weights are built from other runs' checkpoints, :meth:`Method.combine`)
KINDS = ("reference", "trained", "post_hoc")


class Method:
    """Base class: a frozen dataclass of the method's parameters plus what training needs."""

    name: ClassVar[str]
    kind: ClassVar[str] = "trained"  # one of KINDS
    needs_importance: ClassVar[bool] = False
    #: the region comes from the tree search's chosen.json (a method with a ``from_search`` parameter
    #: declares it as a dataclass field; every other method is False)
    from_search: ClassVar[bool] = False

    def trainable(self, model: nn.Module) -> set[str]:
        """Exact parameter names to train."""
        raise NotImplementedError

    def softmask(self, model: nn.Module, names: set[str], importance) -> SoftMask | None:
        return None

    # ---- optional hooks (defaults: plain SFT of ``trainable``) ----------------------------------
    def prepare(self, model: nn.Module) -> nn.Module:
        """Wrap or modify the model before training (e.g. add LoRA adapters)."""
        return model

    def regularizer(self, model: nn.Module, names: set[str]):
        """A callable that adds a penalty's gradient to the parameters' ``.grad`` once per optimiser step and
        returns its value (a float), or None."""
        return None

    def objective(self, model: nn.Module, items: list[dict], pad_id: int):
        """The training loss, built once on the untrained model and the tokenised examples (it may set each
        item's ``weight``): a callable with :func:`cofitune.core.trainer.sft_loss`'s signature, or None for
        plain SFT."""
        return None

    #: a method that replaces ``opt.step()`` (MoFO) defines ``optimizer_step(self, opt)``; None: the optimiser's
    optimizer_step = None

    def finalize(self, model: nn.Module, names: set[str]) -> tuple[nn.Module, set[str]]:
        """After training: the model to save and the names of the tensors that changed."""
        return model, names

    def sources(self) -> list[tuple[str, str]]:
        """(method, variant) runs whose checkpoints a post-hoc method combines (e.g. Wise-FT)."""
        return []

    def combine(self, model: nn.Module, sources: list[dict]) -> set[str]:
        """Post-hoc methods (``trains = False`` with sources): build the weights in place from each source
        run's saved tensors (name -> tensor, in :meth:`sources` order) and return the names written."""
        raise NotImplementedError

    @classmethod
    def from_params(cls, params: dict[str, Any] | None, where: str = "params") -> Method:
        """Build from a config mapping; unknown keys raise ``ValueError`` naming ``where.key``."""
        params = dict(params or {})
        fields = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
        unknown = sorted(set(params) - fields)
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {unknown} for method {cls.name!r}; known: {sorted(fields)}")
        for key, value in params.items():
            if isinstance(value, list):
                params[key] = tuple(value)
        try:
            return cls(**params)
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from err

    def describe(self) -> dict[str, Any]:
        return dataclasses.asdict(self) if dataclasses.is_dataclass(self) else {}

    def setting(self) -> str:
        """The run's setting in words, for the tables (``ffn@bottom2, update mask``); by default its parameters
        as ``key=value`` pairs (:func:`format_params`). A method whose parameters read better otherwise
        (a region: :class:`~cofitune.core.region.Region`'s id) overrides it."""
        return format_params(self.describe())


def format_params(params: dict[str, Any]) -> str:
    """``key=value`` pairs joined with ``, `` in the given order: unset (None) values left out, lists joined
    with ``+``, no quotes or brackets (``r=8, alpha=16, modules=q_proj+v_proj``)."""
    def text(value) -> str:
        if isinstance(value, (list, tuple)):
            return "+".join(text(v) for v in value)
        return str(value).lower() if isinstance(value, bool) else str(value)

    return ", ".join(f"{k}={text(v)}" for k, v in params.items() if v is not None)


def describe_setting(method: str, params: dict[str, Any] | None) -> str:
    """A run's setting in words from its recorded ``method`` and ``params`` (``run.params`` of ``metrics.json``):
    the registered method's :meth:`Method.setting`. Parameters the registry cannot build (a plugin that is not
    loaded here, a file written by an older release) are written as they are (:func:`format_params`)."""
    try:
        return get_method(method).from_params(params).setting()
    except (ValueError, TypeError):
        return format_params(dict(params or {}))


def register(name: str):
    """Class decorator adding a method to :data:`METHODS` under ``name``."""

    def wrap(cls):
        if name in METHODS and METHODS[name] is not cls:
            raise ValueError(f"method {name!r} registered twice ({METHODS[name]} and {cls})")
        if cls.kind not in KINDS:
            raise ValueError(f"method {name!r}: kind = {cls.kind!r}; expected one of {KINDS}")
        if cls.kind == "post_hoc" and (cls.sources is Method.sources or cls.combine is Method.combine):
            raise ValueError(f"method {name!r} is post_hoc: it must define sources() and combine()")
        cls.name = name
        METHODS[name] = cls
        return cls

    return wrap


def load_plugins(paths: list[str]) -> None:
    """Import method files that live outside this package (config key ``method_plugins``)."""
    import importlib.util
    from pathlib import Path

    _discover()
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"method plugin not found: {path}")
        spec = importlib.util.spec_from_file_location(f"cofitune_plugin_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)


_DISCOVERED = False


def _discover() -> None:
    """Import every method file once (a non-empty registry is not proof: importing one method file,
    e.g. ``l1`` which imports ``l2``, registers only those)."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
    _DISCOVERED = True


def get_method(name: str) -> type[Method]:
    _discover()
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; registered: {sorted(METHODS)}")
    return METHODS[name]


def method_names() -> list[str]:
    _discover()
    return sorted(METHODS)
