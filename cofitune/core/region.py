"""A region: a layer range x a module set, the unit the coarse level trains and the tree search chooses.

One type, :class:`Region`, and every text form of it beside its parser:

- the id, ``<modules>@<layers>`` (``ffn@bottom2``): logs, search records, tables (:attr:`Region.id`,
  :meth:`Region.parse`);
- a search trial's run variant, ``node.<modules>.<layers>`` (:attr:`Region.variant`,
  :meth:`Region.from_variant`);
- a method's parameters, ``{"layers": ..., "modules": ...}`` (:attr:`Region.params`,
  :meth:`Region.from_params`);
- a search record's node (``chosen.json``, each visited node), ``{"node": id, "layers", "modules"}``
  (:meth:`Region.record`, :meth:`Region.from_record`).

``layers`` is a named range of :data:`~cofitune.core.selection.LAYER_RANGES` or an explicit ``start-stop`` span;
``modules`` a module-set name of :data:`~cofitune.core.selection.MODULE_SETS` or a tuple of projection names
(written joined with ``+``: ``up_proj+down_proj@bottom2``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cofitune.core.selection import LAYER_RANGES, MODULE_SETS, check_range_name, module_names

#: the run variant of a tree-search trial: ``node.<modules>.<layers>``
VARIANT_PREFIX = "node."
#: the keys of a region in a search record (``chosen.json``, ``visited``)
RECORD_KEYS = ("node", "layers", "modules")


def _modules(modules: str | Iterable[str]) -> str | tuple[str, ...]:
    """A module-set name as is; projection names as a tuple (one name, a list: the same tuple)."""
    if isinstance(modules, str):
        return modules if modules in MODULE_SETS else (modules,)
    return tuple(modules)


def _modules_text(text: str) -> str | tuple[str, ...]:
    return text if text in MODULE_SETS else tuple(text.split("+"))


@dataclass(frozen=True, order=True)
class Region:
    """A layer range x a module set; validated on construction (``ValueError`` names the bad part)."""

    layers: str
    modules: str | tuple[str, ...]

    def __post_init__(self):
        object.__setattr__(self, "modules", _modules(self.modules))
        module_names(self.modules)
        check_range_name(self.layers)

    def __str__(self) -> str:
        return self.id

    # ---- the id: ``modules@layers`` ---------------------------------------------------------------
    @property
    def modules_text(self) -> str:
        """The module set as written: its name, or its projections joined with ``+``."""
        return self.modules if isinstance(self.modules, str) else "+".join(self.modules)

    @property
    def id(self) -> str:
        """The region's text form, ``modules@layers`` (e.g. ``ffn@bottom2``); :meth:`parse` reads it."""
        return f"{self.modules_text}@{self.layers}"

    @classmethod
    def parse(cls, text: str) -> Region:
        """The region of an id ``modules@layers``; anything else raises ``ValueError`` naming the text."""
        modules, sep, layers = str(text).partition("@")
        try:
            if not sep or not modules:
                raise ValueError("no '@'" if not sep else "no modules")
            return cls(layers, _modules_text(modules))
        except ValueError as err:
            raise ValueError(f"{text!r} names no region: expected <modules>@<layers> (e.g. ffn@bottom2), modules "
                             f"one of {list(MODULE_SETS)} or projections joined with '+', layers one of "
                             f"{list(LAYER_RANGES)} or 'start-stop' ({err})") from None

    # ---- a search trial's run variant: ``node.modules.layers`` -------------------------------------
    @property
    def variant(self) -> str:
        """The run variant of a search trial of this region, e.g. ``node.ffn.bottom2``."""
        return f"{VARIANT_PREFIX}{self.modules_text}.{self.layers}"

    @classmethod
    def from_variant(cls, variant: str) -> Region | None:
        """Inverse of :attr:`variant`; None for an ordinary variant (one without the ``node.`` prefix)."""
        if not variant.startswith(VARIANT_PREFIX):
            return None
        modules, _, layers = variant[len(VARIANT_PREFIX):].partition(".")
        try:
            return cls(layers, _modules_text(modules))
        except ValueError as err:
            raise ValueError(f"search trial variant {variant!r} names no region "
                             f"({VARIANT_PREFIX}<modules>.<layers>): {err}") from None

    # ---- a method's parameters -------------------------------------------------------------------
    @property
    def params(self) -> dict:
        """The method parameters that train this region: ``{"layers": ..., "modules": ...}``."""
        return {"layers": self.layers, "modules": self.modules}

    @classmethod
    def from_params(cls, params: Mapping | None) -> Region | None:
        """The region of a method's parameters (``layers`` and ``modules``); None when either is unset."""
        params = params or {}
        if params.get("layers") is None or params.get("modules") is None:
            return None
        return cls(params["layers"], params["modules"])

    # ---- a search record's node ------------------------------------------------------------------
    def record(self) -> dict:
        """The region as a search record writes it (``chosen.json``, each visited node)."""
        return {"node": self.id, "layers": self.layers,
                "modules": self.modules if isinstance(self.modules, str) else list(self.modules)}

    @classmethod
    def from_record(cls, record: Mapping, where: str = "search record") -> Region:
        """Inverse of :meth:`record`; a missing key, a bad region or an id that disagrees with its parts
        raises ``ValueError`` naming ``where``."""
        if not isinstance(record, Mapping) or any(k not in record for k in RECORD_KEYS):
            raise ValueError(f"{where}: not a region record: expected the keys {list(RECORD_KEYS)}, got {record!r}")
        try:
            region = cls(record["layers"], record["modules"])
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
        if record["node"] != region.id:
            raise ValueError(f"{where}: node {record['node']!r} is not its layers and modules ({region.id})")
        return region
