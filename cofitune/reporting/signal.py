"""Whether the versatility suites carry signal, and what changed item by item.

* **Chance.** Every suite declares its chance level (``metadata.chance`` of its YAML, recorded in each
  ``metrics.json``). Each row's margin over it is a one-sample comparison with its bootstrap CI
  (:func:`cofitune.stats.measures.over_chance`). A suite on which the *original* is not decidedly above chance
  carries no signal into Vers, only noise: it is flagged ``at chance`` in the table, the report and its aspect.
* **Flips.** Per suite with right/wrong items, the items a row lost (right in the reference, wrong in the row) and
  gained against each reference, with McNemar's exact test (:func:`cofitune.stats.measures.flips`).

Columns (every row of a (task, model) block): ``chance:<suite>``; ``over_chance:<suite>`` with ``_lo``, ``_hi``,
``_verdict``; ``lost:<suite>_vs_<reference>``, ``gained:...`` and ``mcnemar_p:...``; ``cut_share:<suite>`` (a
generation suite's answers cut by its budget, written by the table's rows).
"""

from __future__ import annotations

import math

import pandas as pd

from cofitune.stats import measures

AT_CHANCE = "at chance"


def _suites(df: pd.DataFrame) -> list[str]:
    """The suites of the table, in their column order (a suite column is a name that no other column pattern
    takes: the records say which)."""
    names: list[str] = []
    for rec in df["_record"]:
        names += [k[2:] for k in rec["data"] if k.startswith("s:") and k[2:] not in names]
    return names


def fill_signal(df: pd.DataFrame, references: dict[tuple, dict[str, pd.Series]]) -> pd.DataFrame:
    """Add the chance and flips columns to a table with ``_record`` (``references``: (task, model) -> reference
    name -> its row)."""
    suites = _suites(df)
    new: dict[str, list] = {}

    def put(col: str, i: int, value) -> None:
        new.setdefault(col, [math.nan] * len(df))[i] = value

    for i, (_, row) in enumerate(df.iterrows()):
        rec = row["_record"]
        for suite in suites:
            chance = (rec.get("chance") or {}).get(suite)
            c = measures.over_chance(rec, suite, chance, (rec.get("clusters") or {}).get(f"s:{suite}"))
            put(f"chance:{suite}", i, math.nan if chance is None else chance)
            for field, value in (("", None if c is None else c.delta), ("_lo", None if c is None else c.lo),
                                 ("_hi", None if c is None else c.hi), ("_verdict", "" if c is None else c.verdict)):
                put(f"over_chance:{suite}{field}", i, math.nan if value is None else value)
        for name, ref in references.get((row.task, row.model), {}).items():
            if ref.name == row.name:
                continue
            for suite in suites:
                f = measures.flips(rec, ref["_record"], suite)
                if f is not None:
                    put(f"lost:{suite}_vs_{name}", i, f["lost"])
                    put(f"gained:{suite}_vs_{name}", i, f["gained"])
                    put(f"mcnemar_p:{suite}_vs_{name}", i, f["p"])
    columns = {col: ["" if col.endswith("_verdict") and isinstance(v, float) and math.isnan(v) else v for v in values]
               for col, values in new.items()}
    df = pd.concat([df, pd.DataFrame(columns, index=df.index)], axis=1)
    return mark_aspects(df)


def mark_aspects(df: pd.DataFrame) -> pd.DataFrame:
    """``at_chance:<aspect>``: the suites of the aspect on which the block's original is at chance (``;``-joined,
    empty when none), on every row of the block, so the table and the report say which aspects lack signal."""
    marks: dict[str, pd.Series] = {}
    for _, block in df.groupby(["task", "model"], sort=False):
        flagged = set(at_chance(block))
        for aspect, suites in block.iloc[0]["_record"]["aspects"].items():
            col = marks.setdefault(f"at_chance:{aspect}", pd.Series("", index=df.index, dtype=object))
            col[block.index] = ";".join(s for s in suites if s in flagged)
    return pd.concat([df, pd.DataFrame(marks, index=df.index)], axis=1)


def aspect_header(aspect: str, row: pd.Series) -> str:
    """The aspect's column name, with the suites at chance named: ``knowledge (at chance: mmlu)``."""
    flagged = row.get(f"at_chance:{aspect}")
    return f"{aspect} ({AT_CHANCE}: {flagged.replace(';', ', ')})" if isinstance(flagged, str) and flagged else aspect


def at_chance(block: pd.DataFrame) -> list[str]:
    """The suites on which the block's original is not decidedly above chance (unknown chance levels aside)."""
    original = block[block.method == "original"]
    if original.empty:
        return []
    row = original.iloc[0]
    return [c.split(":", 1)[1][:-len("_verdict")] for c in block.columns
            if c.startswith("over_chance:") and c.endswith("_verdict") and row[c] not in ("", "better")]


def flips_text(row: pd.Series, suite: str, reference: str) -> str:
    """``−3 / +5 (p 0.73)``: items lost and gained against the reference, McNemar's exact p; ``–`` if none."""
    lost = row.get(f"lost:{suite}_vs_{reference}")
    if lost is None or (isinstance(lost, float) and math.isnan(lost)):
        return "–"
    gained, p = row[f"gained:{suite}_vs_{reference}"], row[f"mcnemar_p:{suite}_vs_{reference}"]
    return f"−{int(lost)} / +{int(gained)} (p {p:.2g})"


def signal_blocks(df: pd.DataFrame, reference: str = "original") -> list[tuple[str, list[str], list[list[str]]]]:
    """Per (task, model): every suite's chance level, the original's score and margin over chance [95% CI] with
    the flag, and each row's flips against ``reference``."""
    out = []
    for (task, model), block in df.groupby(["task", "model"], sort=False):
        suites = [c.split(":", 1)[1] for c in block.columns if c.startswith("chance:")]
        original = block[block.method == "original"]
        rows = [r for _, r in block.iterrows() if r.method != reference]
        header = ["Suite", "Chance", "Original", "Original − chance [95% CI]", "Signal", "Cut by the budget",
                  *[f"{r.method}/{r.variant} flips vs {reference}" for r in rows]]
        flagged = set(at_chance(block))
        lines = []
        for suite in suites:
            o = original.iloc[0] if not original.empty else None
            chance = block[f"chance:{suite}"].iloc[0]
            margin = "–" if o is None or isinstance(o[f"over_chance:{suite}"], str) or math.isnan(
                o[f"over_chance:{suite}"]) else (f"{o[f'over_chance:{suite}']:+.1f} [{o[f'over_chance:{suite}_lo']:+.1f}, "
                                                 f"{o[f'over_chance:{suite}_hi']:+.1f}]")
            signal = "–" if o is None or margin == "–" else (AT_CHANCE.upper() if suite in flagged else "above chance")
            cut = None if o is None else o.get(f"cut_share:{suite}")
            lines.append([suite, "–" if math.isnan(chance) else f"{chance:g}",
                          "–" if o is None else f"{o[suite]:.1f}", margin, signal,
                          "–" if cut is None or (isinstance(cut, float) and math.isnan(cut)) else f"{100 * cut:.0f}%",
                          *[flips_text(r, suite, reference) for r in rows]])
        out.append((f"{task} · {model}: signal (chance, flips)", header, lines))
    return out


SIGNAL_NOTE = ("Each suite's chance level (a uniform guess's score, declared in its YAML) and the original's margin "
               "over it with its bootstrap 95% CI: a suite the original is not decidedly above is flagged AT CHANCE, "
               "and its aspect carries no signal from it. A generation suite also shows the share of the original's "
               "answers its budget cut (an answer cut short can miss an instruction it was about to follow). Flips: "
               "items lost (right in the reference, wrong in the row) and gained, with McNemar's exact two-sided p; a "
               "row of several seeds counts an item by its majority.")
