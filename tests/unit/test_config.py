"""Config validation: schema (unknown keys, defaults) and registry/sheet checks, each naming the key."""

import copy
from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from cofitune.pipeline.config import check_config, run_config, train_view
from cofitune.pipeline.runs import configured_runs, run_sources
from cofitune.pipeline.task_sheet import read_task_sheet
from cofitune.pipeline.sheets import read_sheet

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = str(ROOT / "workflow/schemas/config.schema.yaml")


@pytest.fixture
def config():
    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    validate(cfg, SCHEMA)
    return cfg


def test_defaults_filled_in():
    cfg = {"models": ["smollm2-135m"], "tasks": ["squad"], "methods": [{"method": "original", "variant": "b"}]}
    validate(cfg, SCHEMA)
    assert cfg["train"]["lr"] == 4e-5 and cfg["train"]["betas"] == [0.9, 0.95]
    assert cfg["importance"]["dropout"] == 0.003
    assert cfg["evaluation"]["speciality"]["repetition_penalty"] == 1.2


@pytest.mark.parametrize("path,key", [((), "trian"), (("train",), "learning_rate"), (("evaluation", "speciality"), "beams")])
def test_unknown_config_key_is_named(config, path, key):
    node = config
    for p in path:
        node = node[p]
    node[key] = 1
    with pytest.raises(WorkflowError, match=f"'{key}' was unexpected"):
        validate(config, SCHEMA)


def test_demo_config_passes(config):
    check_config(config, ROOT)


@pytest.mark.parametrize("edit,match", [
    (lambda c: c["methods"].append({"method": "nope", "variant": "x"}), "unknown method 'nope'"),
    (lambda c: c["methods"][2]["params"].update(modules="up_projection"), r"methods\[2\]\.params.*unknown module"),
    (lambda c: c["methods"][2]["params"].update(layers="bottom9"), r"methods\[2\]\.params.*unknown layer range"),
    (lambda c: c["methods"].append(dict(c["methods"][0])), "duplicate"),
    (lambda c: c.update(models=["gpt-17"]), r"config key models: 'gpt-17' is not in the sheet"),
    (lambda c: c.update(tasks=["chess"]), r"config key tasks: 'chess'"),
    (lambda c: c["evaluation"]["versatility"]["suites"].update(extra=["obqa"]),
     r"config key evaluation.versatility.suites.extra: unknown versatility task 'obqa': no .*cofitune_obqa.yaml"),
])
def test_check_config_errors(config, edit, match):
    cfg = copy.deepcopy(config)
    edit(cfg)
    with pytest.raises(ValueError, match=match):
        check_config(cfg, ROOT)


def test_run_config_resolves_defaults(config):
    rc = run_config(config, "smollm2-135m", "squad", "cofitune", "ffn-bottom2-update", ROOT)
    assert rc["params"] == {"layers": "bottom2", "modules": "ffn", "mask_units": ["up_proj", "down_proj"],
                            "target": "update", "layout": "rows", "from_search": False}
    assert rc["needs_importance"] and rc["kind"] == "trained"
    assert rc["speciality"]["max_new_tokens"] == 24  # from the task sheet
    assert rc["train"]["seed"] == config["seed"]


def test_sheet_errors(tmp_path):
    bad = tmp_path / "models.yaml"
    bad.write_text("m:\n  source: gguf-package\n  package: x\n")
    with pytest.raises(ValueError, match=r"models\.yaml: m: source 'gguf-package' needs key 'file'"):
        read_sheet(bad)
    bad.write_text("m:\n  source: torrent\n")
    with pytest.raises(ValueError, match=r"m\.source = 'torrent'"):
        read_sheet(bad)
    tasks = tmp_path / "tasks.yaml"
    tasks.write_text("t:\n  loader: squad\n  train: a\n  test: b\n  instruction: i\n  evaluator: squad\n  colour: red\n")
    with pytest.raises(ValueError, match=r"tasks\.yaml: t: unknown key\(s\) \['colour'\]"):
        read_task_sheet(tasks)


def test_run_config_holds_only_what_the_run_depends_on(config):
    """Staleness: `original` does not train, so train.* is not in its run config (editing lr leaves it alone)."""
    orig = run_config(config, "smollm2-135m", "squad", "original", "base", ROOT)
    cofi = run_config(config, "smollm2-135m", "squad", "cofitune", "ffn-bottom2-update", ROOT)
    assert "train" not in orig and cofi["train"]["lr"] == config["train"]["lr"]
    assert orig["template"] == cofi["template"] == cofi["train"]["template"] == "chat"  # shared; auto -> the sheet's
    edited = copy.deepcopy(config)
    edited["train"]["lr"] = 1e-5
    assert run_config(edited, "smollm2-135m", "squad", "original", "base", ROOT) == orig
    assert run_config(edited, "smollm2-135m", "squad", "cofitune", "ffn-bottom2-update", ROOT) != cofi


def test_seeds_repeat_training_rows_and_seed_their_sources(config):
    cfg = copy.deepcopy(config)
    cfg["methods"].append({"method": "wise_ft", "variant": "full", "params": {"source": ["full_sft", "all"]},
                           "sweep": {"alpha": [0.5]}})
    cfg["seeds"] = [1, 2]
    validate(cfg, SCHEMA)
    runs = {(r["method"], r["variant"]): r for r in configured_runs(cfg)}
    assert ("original", "base") in runs and runs["original", "base"]["seed"] is None  # no training: one run
    assert {k for k in runs if k[0] == "full_sft"} == {("full_sft", "all-seed1"), ("full_sft", "all-seed2")}
    assert runs["full_sft", "all-seed2"]["row"] == "all" and runs["full_sft", "all-seed2"]["seed"] == 2
    assert ("wise_ft", "full-alpha0.5-seed2") in runs
    assert run_sources(cfg, "wise_ft", "full-alpha0.5-seed2") == [("full_sft", "all-seed2")]
    rc = run_config(cfg, "smollm2-135m", "squad", "full_sft", "all-seed2", ROOT)
    assert rc["seed"] == rc["train"]["seed"] == 2 and rc["row"] == "all"
    check_config(cfg, ROOT)  # sources of seeded runs resolve


def test_the_config_seed_is_the_unseeded_rows_run(config):
    """Adding seeds to a finished run reuses it: the run of the config's own seed keeps its variant."""
    cfg = copy.deepcopy(config)
    cfg["methods"].append({"method": "wise_ft", "variant": "full", "params": {"source": ["full_sft", "all"]},
                           "sweep": {"alpha": [0.5]}})
    before = run_config(cfg, "smollm2-135m", "squad", "full_sft", "all", ROOT)
    cfg["seeds"] = [cfg["seed"], 7]
    runs = {(r["method"], r["variant"]): r for r in configured_runs(cfg)}
    assert {k for k in runs if k[0] == "full_sft"} == {("full_sft", "all"), ("full_sft", "all-seed7")}
    assert run_config(cfg, "smollm2-135m", "squad", "full_sft", "all", ROOT) == before  # nothing re-runs
    assert run_sources(cfg, "wise_ft", "full-alpha0.5") == [("full_sft", "all")]
    assert run_sources(cfg, "wise_ft", "full-alpha0.5-seed7") == [("full_sft", "all-seed7")]


def test_a_row_can_name_its_own_seed(config):
    cfg = copy.deepcopy(config)
    cfg["methods"].append({"method": "full_sft", "variant": "all-s7", "seed": 7})
    validate(cfg, SCHEMA)
    rc = run_config(cfg, "smollm2-135m", "squad", "full_sft", "all-s7", ROOT)
    assert rc["seed"] == rc["train"]["seed"] == 7
    cfg["seeds"] = [1, 2]  # a seeded row is not repeated
    assert [r["variant"] for r in configured_runs(cfg) if r["variant"].startswith("all-s7")] == ["all-s7"]


def test_a_row_can_name_its_own_seeds(config):
    """`seeds` on one row repeats that row only (3 seeds for the strongest rows of a leaderboard); the config's
    own seed keeps the plain variant, so the finished run is reused; the config-level `seeds` is overridden."""
    cfg = copy.deepcopy(config)
    before = run_config(cfg, "smollm2-135m", "squad", "cofitune", "ffn-bottom2-update", ROOT)
    row = next(m for m in cfg["methods"] if m["method"] == "cofitune")
    row["seeds"] = [cfg["seed"], 1, 2]
    validate(cfg, SCHEMA)
    variants = [(r["method"], r["variant"], r["row"]) for r in configured_runs(cfg)
                if r["method"] in ("cofitune", "full_sft")]
    assert variants == [("full_sft", "all", "all"), ("cofitune", "ffn-bottom2-update", "ffn-bottom2-update"),
                        ("cofitune", "ffn-bottom2-update-seed1", "ffn-bottom2-update"),
                        ("cofitune", "ffn-bottom2-update-seed2", "ffn-bottom2-update")]
    assert run_config(cfg, "smollm2-135m", "squad", "cofitune", "ffn-bottom2-update", ROOT) == before
    assert run_config(cfg, "smollm2-135m", "squad", "cofitune", "ffn-bottom2-update-seed2", ROOT)["seed"] == 2
    cfg["seeds"] = [5]  # the row's own list wins over the config's
    assert [r["variant"] for r in configured_runs(cfg) if r["method"] == "cofitune"] == [
        "ffn-bottom2-update", "ffn-bottom2-update-seed1", "ffn-bottom2-update-seed2"]


def test_a_row_cannot_name_both_seed_and_seeds(config):
    cfg = copy.deepcopy(config)
    cfg["methods"].append({"method": "full_sft", "variant": "x", "seed": 7, "seeds": [1, 2]})
    with pytest.raises(ValueError, match=r"methods\[\d+\].*seed.*seeds"):
        configured_runs(cfg)


def test_seeds_must_be_unique():
    cfg = {"models": ["m"], "tasks": ["t"], "methods": [{"method": "original", "variant": "b"}], "seeds": [1, 1]}
    with pytest.raises(WorkflowError):
        validate(cfg, SCHEMA)


def test_train_view_ignores_evaluation_settings(config):
    """Staleness: the train view (the train rule's config input) does not change when only evaluation settings do."""
    before = train_view(run_config(config, "smollm2-135m", "squad", "full_sft", "all", ROOT))
    edited = copy.deepcopy(config)
    edited["evaluation"]["versatility"]["max_gen_toks"] = 7
    edited["evaluation"]["speciality"]["batch_size"] = 3
    assert train_view(run_config(edited, "smollm2-135m", "squad", "full_sft", "all", ROOT)) == before
    assert "versatility" not in before and before["train"]["lr"] == config["train"]["lr"]


def _cli(entries: list[str]) -> dict:
    """What ``snakemake --config ENTRIES`` hands the Snakefile (Snakemake's own parser)."""
    from snakemake.cli import parse_config
    return parse_config(entries)


def test_nested_cli_overrides_are_typed_by_the_schema(config):
    from snakemake.utils import update_config

    from cofitune.pipeline.schema import coerce_cli_scalars
    schema = yaml.safe_load(Path(SCHEMA).read_text())
    over = _cli(['search={enabled: true, mode: exhaustive, min_vers_pct: 95}',
                 'train={lr: 1e-4, bf16: auto, clip: null}',
                 'evaluation={versatility: {limit: {mmlu: 10}}}'])
    assert over["search"]["enabled"] == "true"  # Snakemake leaves nested scalars as strings
    update_config(config, over)
    typed = coerce_cli_scalars(config, schema)
    assert sorted(typed) == ["evaluation.versatility.limit.mmlu", "search.enabled", "search.min_vers_pct",
                             "train.clip", "train.lr"]
    assert config["search"]["enabled"] is True and config["search"]["mode"] == "exhaustive"
    assert config["search"]["min_vers_pct"] == 95 and config["train"]["lr"] == 1e-4
    assert config["train"]["bf16"] == "auto" and config["train"]["clip"] is None
    assert config["evaluation"]["versatility"]["limit"]["mmlu"] == 10
    validate(config, SCHEMA)


def test_cli_strings_the_schema_cannot_read_still_fail_with_their_key(config):
    from cofitune.pipeline.schema import coerce_cli_scalars
    schema = yaml.safe_load(Path(SCHEMA).read_text())
    config["search"] = {"enabled": "treu"}
    config["methods"][0]["variant"] = "1234"  # a string where a string belongs stays a string
    assert coerce_cli_scalars(config, schema) == []
    assert config["methods"][0]["variant"] == "1234"
    with pytest.raises(WorkflowError, match="'treu' is not of type 'boolean'"):
        validate(config, SCHEMA)


def test_a_search_trial_reuses_a_configured_row_of_the_same_region(config):
    """The DAG trains a region once: a coarse_only row with exactly a trial's region is that trial."""
    from cofitune.core.region import Region
    from cofitune.pipeline.runs import trial_variant

    cfg = copy.deepcopy(config)
    cfg["methods"] = [{"method": "original", "variant": "base"},
                      {"method": "coarse_only", "variant": "ffn-b2", "params": {"layers": "bottom2", "modules": "ffn"}},
                      {"method": "coarse_only", "variant": "mha-b2-lr",
                       "params": {"layers": "bottom2", "modules": "mha"}, "train": {"lr": 1.0e-3}},
                      {"method": "cofitune", "variant": "ffn-top", "params": {"layers": "top", "modules": "ffn"}}]
    validate(cfg, SCHEMA)
    assert trial_variant(cfg, Region("bottom2", "ffn")) == "ffn-b2"
    assert trial_variant(cfg, Region("bottom2", "mha")) == "node.mha.bottom2"  # its own train settings: not the trial
    assert trial_variant(cfg, Region("top", "ffn")) == "node.ffn.top"  # another method (soft-masked) is not a trial
    assert trial_variant(cfg, Region("middle", "ffn")) == "node.ffn.middle"
    # the reused row trains exactly what the trial would: the run configs differ only in their names
    names = ("variant", "row")
    reused = run_config(cfg, "smollm2-135m", "squad", "coarse_only", "ffn-b2", ROOT)
    trial = run_config(cfg, "smollm2-135m", "squad", "coarse_only", "node.ffn.bottom2", ROOT)
    assert {k: v for k, v in reused.items() if k not in names} == {k: v for k, v in trial.items() if k not in names}
    cfg["seeds"] = [1, 2]  # seeded rows train under other seeds than the search's: no reuse
    validate(cfg, SCHEMA)
    assert trial_variant(cfg, Region("bottom2", "ffn")) == "node.ffn.bottom2"


# --------------------------------------------------------------------------- stage configs (staleness)

def test_each_stage_config_changes_exactly_with_what_its_jobs_depend_on(config):
    from cofitune.pipeline.config import STAGE_KEYS, stage_config

    keys = {"run": "smollm2-135m/squad/full_sft/all", "train": "smollm2-135m/squad/full_sft/all", "data": "squad",
            "importance": "smollm2-135m/squad", "probe": "smollm2-135m", "task_probe": "smollm2-135m/squad",
            "search": "smollm2-135m/squad", "tables": "all"}
    assert set(keys) | {"bench"} == set(STAGE_KEYS)  # bench: a bench suite's config only (below)
    before = {k: stage_config(config, k, key, ROOT) for k, key in keys.items()}
    edits = {  # edit -> the kinds whose jobs depend on it
        ("train", "lr"): {"run", "train"},
        ("importance", "dropout"): {"importance"},
        ("data", "n_test"): {"data"},
        ("uni", "spec"): {"search", "tables"},
    }
    for (section, key), kinds in edits.items():
        edited = copy.deepcopy(config)
        edited[section][key] = edited[section][key] * 2 + 1
        after = {k: stage_config(edited, k, kk, ROOT) for k, kk in keys.items()}
        assert {k for k in keys if after[k] != before[k]} == kinds, (section, key)
    edited = copy.deepcopy(config)
    edited["evaluation"]["drift"]["max_new_tokens"] = 3
    after = {k: stage_config(edited, k, kk, ROOT) for k, kk in keys.items()}
    assert {k for k in keys if after[k] != before[k]} == {"run", "probe", "task_probe"}
    edited["evaluation"]["drift"]["task_prompts"] = 7  # the task probe's size: its file and the rows scored on it
    again = {k: stage_config(edited, k, kk, ROOT) for k, kk in keys.items()}
    assert {k for k in keys if again[k] != after[k]} == {"run", "task_probe"}
    edited["train"]["template"] = "alpaca"  # the format: every stage that renders a prompt
    fmt = {k: stage_config(edited, k, kk, ROOT) for k, kk in keys.items()}
    assert {k for k in keys if fmt[k] != again[k]} == {"run", "train", "importance", "probe", "task_probe"}
    suite = yaml.safe_load((ROOT / "config/bench/tiny.yaml").read_text())
    bench = stage_config(suite, "bench", "all", ROOT)
    assert bench == {"models": suite["models"], "tasks": suite["tasks"], "bench": suite["bench"]}
    edited = copy.deepcopy(suite)
    edited["train"]["lr"] *= 2  # the verdict's inputs (the candidate's metrics) carry training
    assert stage_config(edited, "bench", "all", ROOT) == bench
    edited["bench"]["gates"]["spec"]["max_drop"] = 1.0
    assert stage_config(edited, "bench", "all", ROOT) != bench


def test_a_stage_config_is_rewritten_only_when_its_content_changes(tmp_path):
    """mtime tracks content: the same content keeps the file (and its time stamp); another one replaces it."""
    import os

    from cofitune.pipeline.config import stage_config_path, sync_stage_config
    from cofitune.pipeline.io import read_json

    path = tmp_path / stage_config_path("train", "m/t/full_sft/all")
    assert path.relative_to(tmp_path).as_posix() == "results/config/train/m/t/full_sft/all.json"
    assert sync_stage_config(path, {"lr": 1}) is True
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))  # an old file
    assert sync_stage_config(path, {"lr": 1}) is False and path.stat().st_mtime_ns == 1_000_000_000
    assert sync_stage_config(path, {"lr": 2}) is True and read_json(path) == {"lr": 2}
    assert path.stat().st_mtime_ns > 1_000_000_000
    path.write_text("{torn")
    assert sync_stage_config(path, {"lr": 2}) is True and read_json(path) == {"lr": 2}


def test_config_differences_name_every_changed_key():
    from cofitune.pipeline.io import config_differences

    old = {"train": {"lr": 1e-4, "epochs": 2}, "seed": 1, "params": {"r": 8}}
    new = {"train": {"lr": 3e-4, "epochs": 2}, "seed": 1, "params": {"r": 8, "alpha": 16}}
    assert config_differences(old, new) == ["params.alpha: '(absent)' -> 16", "train.lr: 0.0001 -> 0.0003"]
    assert config_differences(old, copy.deepcopy(old)) == []


# --------------------------------------------------------------------------- task overrides

def test_task_overrides_replace_the_sheet_sizes_and_budget_for_one_task(config):
    from cofitune.pipeline.config import stage_config
    from cofitune.pipeline.task_sheet import config_tasks

    plain = config_tasks(config, ROOT)["squad"]
    assert plain["max_new_tokens"] == 24 and "n_test" not in plain
    cfg = copy.deepcopy(config)
    cfg["task_overrides"] = {"squad": {"n_train": 5, "n_test": 3, "max_new_tokens": 2}}
    validate(cfg, SCHEMA)
    check_config(cfg, ROOT)
    spec = config_tasks(cfg, ROOT)["squad"]
    assert (spec["n_train"], spec["n_test"], spec["max_new_tokens"]) == (5, 3, 2)
    assert stage_config(cfg, "data", "squad", ROOT) == {"task": "squad", "spec": spec, "n_train": 5, "n_test": 3,
                                                        "seed": 1234}
    assert run_config(cfg, "smollm2-135m", "squad", "full_sft", "all", ROOT)["speciality"]["max_new_tokens"] == 2


def test_a_task_override_for_a_task_not_in_the_sheet_is_named(config):
    cfg = copy.deepcopy(config)
    cfg["task_overrides"] = {"chess": {"n_test": 3}}
    validate(cfg, SCHEMA)
    with pytest.raises(ValueError, match=r"config key task_overrides.chess: 'chess' is not in the task sheet"):
        check_config(cfg, ROOT)


def test_a_task_override_takes_only_sizes_and_budget(config):
    cfg = copy.deepcopy(config)
    cfg["task_overrides"] = {"squad": {"loader": "squad"}}
    with pytest.raises(WorkflowError, match="'loader' was unexpected"):
        validate(cfg, SCHEMA)


def _searched_row(config):
    config = copy.deepcopy(config)
    config["methods"] = [{"method": "original", "variant": "base"},
                         {"method": "cofitune", "variant": "searched", "params": {"from_search": True}}]
    return config


CHOSEN = {"chosen": {"node": "mha@bottom1", "layers": "bottom1", "modules": "mha"}}


@pytest.mark.parametrize("view", ["run", "train"])
def test_a_searched_row_is_resolved_to_the_chosen_region_in_both_views(config, view):
    """The searched row's run and train configs name the region it trains, read from chosen.json, and
    nothing else changes; the train view stays free of evaluation settings."""
    from cofitune.pipeline.config import resolve_region

    cfg = run_config(_searched_row(config), "smollm2-135m", "squad", "cofitune", "searched")
    cfg = cfg if view == "run" else train_view(cfg)
    resolved = resolve_region(cfg, CHOSEN, where="chosen.json")
    assert resolved["params"]["layers"] == "bottom1" and resolved["params"]["modules"] == "mha"
    assert resolved["region"] == "mha@bottom1"
    assert {k: v for k, v in resolved.items() if k not in ("params", "region")} == {
        k: v for k, v in cfg.items() if k != "params"}
    assert {k: v for k, v in resolved["params"].items() if k not in ("layers", "modules")} == {
        k: v for k, v in cfg["params"].items() if k not in ("layers", "modules")}
    assert cfg["params"]["layers"] == "bottom2" and "region" not in cfg  # the input is not modified


def test_only_a_from_search_row_is_resolved_and_a_bad_region_is_named(config):
    from cofitune.pipeline.config import resolve_region

    plain = run_config(config, "smollm2-135m", "squad", "full_sft", "all")
    with pytest.raises(ValueError, match="full_sft/all: not a from_search row"):
        resolve_region(plain, CHOSEN, where="chosen.json")
    cfg = run_config(_searched_row(config), "smollm2-135m", "squad", "cofitune", "searched")
    with pytest.raises(ValueError, match=r"chosen.json: unknown layer range 'sideways'"):
        resolve_region(cfg, {"chosen": {"node": "x", "layers": "sideways", "modules": "mha"}}, where="chosen.json")


# --------------------------------------------------------------------------- errors found at DAG parse
# Each of these used to parse, start its jobs and then fail inside them (an evaluate, search or aggregate job).


def test_a_limit_for_a_suite_no_aspect_runs_is_ignored_with_one_warning(config, caplog):
    """An overlay that swaps a suite cannot drop the base config's limit for it (Snakemake merges mappings): the
    limit is ignored, said once, and the rows' run configs carry only the limits of suites they run."""
    cfg = copy.deepcopy(config)
    cfg["evaluation"]["versatility"]["suites"] = {"knowledge": ["arc_easy"]}
    cfg["evaluation"]["versatility"]["limit"] = {"mmlu": 80, "arc_easy": 40}
    validate(cfg, SCHEMA)
    with caplog.at_level("WARNING"):
        check_config(cfg, ROOT)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == ["config key evaluation.versatility.limit.mmlu: no aspect runs suite 'mmlu'; its limit is "
                        "ignored"]
    assert run_config(cfg, "smollm2-135m", "squad", "original", "base", ROOT)["versatility"]["limit"] == {"arc_easy": 40}


def test_a_limit_that_names_no_suite_at_all_is_an_error_naming_the_key(config):
    cfg = copy.deepcopy(config)
    cfg["evaluation"]["versatility"]["limit"] = {"mmmlu": 80}
    with pytest.raises(ValueError, match="config key evaluation.versatility.limit.mmmlu: unknown versatility task"):
        check_config(cfg, ROOT)


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["search"].update(enabled=True, criterion="spec_at_vers", min_vers_pct=None),
     "config key search.min_vers_pct: criterion spec_at_vers needs it"),
    (lambda c: c.update(methods=[*c["methods"], {"method": "full_sft", "variant": "lr-tenth",
                                                 "train": {"lr": 1e-6}}],
                        references={**c["references"], "full_sft": "nope"}),
     r"config key references.full_sft: 'nope' is none of the 2 full_sft rows \['all', 'lr-tenth'\]"),
    (lambda c: c.update(task_overrides={"squad": {"evaluator": "bleu"}}),
     "task squad: evaluator 'bleu' is not a speciality evaluator"),
], ids=["spec_at_vers-without-min", "reference-row-unnamed", "unknown-evaluator"])
def test_errors_that_used_to_fail_inside_jobs_are_found_at_parse(config, edit, message):
    cfg = copy.deepcopy(config)
    edit(cfg)
    with pytest.raises(ValueError, match=message):
        check_config(cfg, ROOT)


def test_a_chat_model_trains_and_is_evaluated_in_its_own_format_by_default(config):
    """The sheet marks SmolLM2-135M-Instruct `chat: true`: `auto` resolves to its chat template in training, in
    speciality prompts and in lm-eval; a row or the config can still choose either format, and the run config
    says which (with the system-prompt policy)."""
    assert config["train"]["template"] == "auto" and config["evaluation"]["versatility"]["apply_chat_template"] == "auto"
    orig = run_config(config, "smollm2-135m", "squad", "original", "base", ROOT)
    assert orig["format"]["template"] == "chat" and orig["format"]["apply_chat_template"] is True
    assert orig["versatility"]["apply_chat_template"] is True and "system" in orig["format"]["system_prompt"]
    alpaca = copy.deepcopy(config)
    alpaca["train"]["template"] = "alpaca"
    cfg = run_config(alpaca, "smollm2-135m", "squad", "full_sft", "all", ROOT)
    assert cfg["template"] == cfg["train"]["template"] == "alpaca" and cfg["versatility"]["apply_chat_template"] is False
    assert cfg["format"]["system_prompt"] is None
    per_row = copy.deepcopy(config)
    per_row["methods"][1]["train"] = {"template": "alpaca"}  # full_sft/all alone in the Alpaca format
    assert run_config(per_row, "smollm2-135m", "squad", "full_sft", "all", ROOT)["template"] == "alpaca"
    assert run_config(per_row, "smollm2-135m", "squad", "original", "base", ROOT)["template"] == "chat"
    forced = copy.deepcopy(config)
    forced["evaluation"]["versatility"]["apply_chat_template"] = False
    assert run_config(forced, "smollm2-135m", "squad", "original", "base", ROOT)["versatility"][
        "apply_chat_template"] is False


def test_a_model_without_the_chat_flag_uses_alpaca(tmp_path, config):
    sheet = yaml.safe_load((ROOT / "config" / "models.yaml").read_text())
    sheet["smollm2-135m"].pop("chat")
    (tmp_path / "models.yaml").write_text(yaml.safe_dump(sheet))
    base = {**copy.deepcopy(config), "models_sheet": str(tmp_path / "models.yaml")}
    cfg = run_config(base, "smollm2-135m", "squad", "original", "base", ROOT)
    assert cfg["template"] == "alpaca" and cfg["versatility"]["apply_chat_template"] is False
    bad = tmp_path / "bad.yaml"
    bad.write_text("m:\n  source: hub\n  location: x/y\n  chat: yes please\n")
    with pytest.raises(ValueError, match=r"m\.chat = 'yes please'"):
        read_sheet(bad)
