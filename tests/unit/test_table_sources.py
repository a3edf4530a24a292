"""The comparison table's ``sources`` column: each row lists exactly the metrics files it was computed from."""

from __future__ import annotations

import pandas as pd

from cofitune.reporting.aggregate import build_table, write_tables
from tests.unit.handmade import write_metrics


def test_sources_list_exactly_each_rows_metrics_files(tmp_path):
    own = {
        "original": [write_metrics(tmp_path, "original", [40.0] * 4)],
        "full_sft": [write_metrics(tmp_path, "full_sft", [80.0] * 4)],
        # one row of three seeds: three files
        "cofitune": [write_metrics(tmp_path, "cofitune", [70.0 + s] * 4, seed=s) for s in (1, 2, 3)],
    }
    given = [own["cofitune"][2], own["original"][0], own["cofitune"][0], own["full_sft"][0], own["cofitune"][1]]
    df = build_table(given).set_index("method")
    assert df.at["cofitune", "seeds"] == 3
    for method, files in own.items():
        listed = df.at[method, "sources"].split(";")
        assert sorted(listed) == sorted(map(str, files)), method
    # each file in exactly one row
    everything = [p for s in df["sources"] for p in s.split(";")]
    assert sorted(everything) == sorted(map(str, given))
    # and the CSV carries the column as it is
    write_tables(given, tmp_path / "t.csv", tmp_path / "t.md")
    csv = pd.read_csv(tmp_path / "t.csv").set_index("method")
    assert (csv["sources"] == df["sources"]).all()
