"""The one resolver of the repository's files: the config schema, the sheets, the task YAMLs, ``resources/``.

The package runs from a checkout of its repository (``pip install -e .``, as ``make env`` does): the pipeline is
the Snakefile, the rules and the configs beside the package, not the package alone. Every module finds those
files through :data:`ROOT` and :func:`file`; a wheel install, which has none of them, is refused by
:func:`require_checkout` with one line (the CLI calls it first)."""

from __future__ import annotations

from pathlib import Path

#: the checkout this package runs from: the folder that holds ``cofitune/``
ROOT = Path(__file__).resolve().parents[1]
#: a file that only a checkout has: its presence tells a checkout from a wheel install
MARKER = Path("workflow", "schemas", "config.schema.yaml")


class NotACheckout(FileNotFoundError):
    """The package was installed without its repository (a wheel): the pipeline's files are not there."""


def require_checkout() -> Path:
    """:data:`ROOT`, after checking that it is a checkout of the repository.

    Raises:
        NotACheckout: one line saying where it looked and how to install instead.
    """
    if not (ROOT / MARKER).is_file():
        raise NotACheckout(f"{ROOT} is not a checkout of the cofitune repository (no {MARKER.as_posix()}): the "
                           f"pipeline runs from its repository, so install it with `pip install -e <checkout>`")
    return ROOT


def file(*parts: str) -> Path:
    """``ROOT/<parts>``, which must exist (a file or folder of the checkout).

    Raises:
        NotACheckout: the package runs from a wheel install; FileNotFoundError: the checkout lacks it.
    """
    path = require_checkout().joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"{path}: not in the repository checkout {ROOT}")
    return path
