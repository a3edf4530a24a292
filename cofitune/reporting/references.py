"""The reference rows a block of the table is compared with (``original``, ``full_sft``; the leaderboard's
``cofitune``), chosen by config key ``references`` when a method has several rows."""

from __future__ import annotations

import pandas as pd


def reference_row(block: pd.DataFrame, method: str, references: dict[str, str] | None, where: str) -> pd.Series | None:
    """The row of ``method`` a block is compared with: its only row, or, when it has several, the one the config
    names (``references.<method>``); None when the block has none.

    Raises:
        ValueError: several rows and no configured one among them.
    """
    rows = block[block.method == method]
    if len(rows) <= 1:
        return rows.iloc[0] if len(rows) else None
    variant = (references or {}).get(method)
    chosen = rows[rows.variant == variant]
    if len(chosen) != 1:
        raise ValueError(f"{where}: {len(rows)} '{method}' rows ({sorted(rows.variant)}) and config key "
                         f"references.{method} = {variant!r} names none of them: name the reference row")
    return chosen.iloc[0]
