"""The stale-metrics guard (:func:`refuse_stale`), both halves, on hand-made files: one current run config per
metrics file, and a metrics file recorded under another configuration refused naming the file and every
differing key. (Its wiring into the DAG: tests/integration/test_dag.py::test_a_stale_metrics_file_fails_the_dag.)
"""

from __future__ import annotations

import re

import pytest

from cofitune.reporting.aggregate import refuse_stale
from tests.unit.handmade import run_config, write_json, write_metrics


@pytest.fixture
def rows(tmp_path):
    """Two fresh rows: their metrics files and their current run configs, in the same order."""
    metrics = [write_metrics(tmp_path, "original", [40.0] * 4), write_metrics(tmp_path, "full_sft", [80.0] * 4)]
    configs = [write_json(tmp_path / "config" / f"{m}.json", run_config(m, "v")) for m in ("original", "full_sft")]
    return metrics, configs


def test_fresh_rows_pass(rows):
    refuse_stale(*rows)  # no exception


@pytest.mark.parametrize("n_metrics,n_configs", [(2, 1), (1, 2), (2, 0)])
def test_one_run_config_per_metrics_file(rows, n_metrics, n_configs):
    """A missing or extra config would leave a row unchecked (zip stops at the shorter list): refused."""
    metrics, configs = rows
    with pytest.raises(ValueError, match=f"{n_metrics} metrics files but {n_configs} run configs"):
        refuse_stale(metrics[:n_metrics], configs[:n_configs])


def test_an_unchecked_stale_row_cannot_slip_through_a_short_config_list(rows, tmp_path):
    """The row that would go unchecked is stale: the count check is what refuses it."""
    metrics, configs = rows
    stale = write_metrics(tmp_path / "old", "cofitune", [70.0] * 4, run_cfg=run_config("cofitune", "v", lr=0.5))
    with pytest.raises(ValueError, match="3 metrics files but 2 run configs"):
        refuse_stale([*metrics, stale], configs)


def test_a_changed_config_is_refused_naming_the_file_and_every_differing_key(rows, tmp_path):
    metrics, configs = rows
    # the row was computed under lr 0.02, 2 epochs, no warmup; the current config says 0.5, 3 epochs, warmup 10
    write_json(configs[1], run_config("full_sft", "v", lr=0.5, epochs=3, warmup=10))
    with pytest.raises(ValueError) as err:
        refuse_stale(metrics, configs)
    text = str(err.value)
    assert text.startswith(f"{metrics[1]}: row full_sft/v is stale")  # the second file, not the first
    assert str(metrics[0]) not in text
    for diff in ("train.epochs: 2 -> 3", "train.lr: 0.02 -> 0.5", "train.warmup: '(absent)' -> 10"):
        assert diff in text, (diff, text)
    assert text.count("->") == 3  # every differing key, and only those


def test_a_recorded_config_edited_after_the_run_is_refused(rows):
    """The other direction: the metrics file's own record differs (here: another seed)."""
    metrics, configs = rows
    write_metrics(metrics[0].parents[3], "original", [40.0] * 4, run_cfg=run_config("original", "v", seed=2))
    with pytest.raises(ValueError, match=rf"^{re.escape(str(metrics[0]))}: row original/v is stale.*seed: 2 -> 1"):
        refuse_stale(metrics, configs)
