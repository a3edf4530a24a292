"""Tree search: children per level and order; selection on hand-made score tables."""

import pytest

from cofitune.core.region import Region
from cofitune.core.search import ROOT, all_nodes, children, select


def test_range_first_tree():
    assert children(ROOT, 1) == [Region("bottom-plus", "mha+ffn"), Region("middle-plus", "mha+ffn"),
                                 Region("top-plus", "mha+ffn")]
    assert children(Region("bottom-plus", "mha+ffn"), 2) == [Region("bottom1", "mha+ffn"), Region("bottom2", "mha+ffn")]
    assert children(Region("middle-plus", "mha+ffn"), 2) == [Region("bottom2", "mha+ffn"), Region("middle", "mha+ffn")]
    assert children(Region("bottom2", "mha+ffn"), 3) == [Region("bottom2", "mha"), Region("bottom2", "ffn"),
                                                       Region("bottom2", "mha+ffn")]


def test_module_first_tree():
    assert [n.modules for n in children(ROOT, 1, "module-first")] == ["mha", "ffn", "mha+ffn"]
    assert children(Region("all", "ffn"), 2, "module-first")[0] == Region("bottom-plus", "ffn")
    assert [n.layers for n in children(Region("top-plus", "ffn"), 3, "module-first")] == ["middle", "top"]


def test_grid_is_8_by_3():
    grid = all_nodes()
    assert len(grid) == 24 and len(set(grid)) == 24


def _table(rows):
    return [{"node": Region(r, "ffn"), "spec": s, "vers": v, "uni": (s + v) / 2} for r, s, v in rows]


def test_select_uni():
    table = _table([("bottom1", 50, 40), ("bottom2", 60, 45), ("middle", 70, 20)])
    assert select(table)["node"] == Region("bottom2", "ffn")


def test_select_tie_goes_to_first():
    table = _table([("bottom1", 50, 50), ("bottom2", 60, 40)])
    assert select(table)["node"] == Region("bottom1", "ffn")


def test_select_spec_at_vers():
    table = _table([("bottom1", 50, 48), ("bottom2", 70, 44), ("middle", 90, 30)])
    chosen = select(table, "spec_at_vers", vers_ref=50.0, min_vers_pct=85)  # vers >= 42.5
    assert chosen["node"] == Region("bottom2", "ffn")


def test_select_rejects_every_child():
    table = _table([("bottom1", 50, 30), ("bottom2", 70, 20)])
    assert select(table, "spec_at_vers", vers_ref=50.0, min_vers_pct=95) is None


@pytest.mark.parametrize("kwargs,match", [
    ({"criterion": "best"}, "criterion"),
    ({"criterion": "spec_at_vers"}, "needs vers_ref"),
])
def test_select_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        select(_table([("bottom1", 1, 1)]), **kwargs)


def test_bad_level_or_order():
    with pytest.raises(ValueError, match="level"):
        children(ROOT, 4)
    with pytest.raises(ValueError, match="order"):
        children(ROOT, 1, "depth-first")


def test_a_region_variant_parses_back_to_its_region():
    for node in all_nodes():
        assert Region.from_variant(node.variant) == node
    assert Region("bottom2", "ffn").variant == "node.ffn.bottom2"  # the trials' run folders: never renamed
    assert Region.from_variant("ffn-bottom2") is None
    with pytest.raises(ValueError, match="names no region"):
        Region.from_variant("node.ffn.bottom9")


def _m(spec, vers, n=4):
    """A trial's metrics with constant per-item scores (so every bootstrap draw gives the same means)."""
    return {"metrics": {"spec": spec, "vers": vers, "spec_items": [spec] * n,
                        "suites": {"s": {"items": [vers / 100.0] * n}}, "aspects_tasks": {"a": ["s"]}}}


def _items(spec_items, suite_items):
    """Metrics from per-item scores (Spec items in points, suite items 0/1), means derived from them."""
    vers = 100.0 * sum(suite_items) / len(suite_items)
    return {"metrics": {"spec": sum(spec_items) / len(spec_items), "vers": vers, "spec_items": spec_items,
                        "suites": {"s": {"items": suite_items}}, "aspects_tasks": {"a": ["s"]}}}


def test_decide_level_records_every_node_and_the_choice():
    from cofitune.pipeline.search import decide_level

    kids = children(ROOT, 1)
    trials = dict(zip(kids, [_m(50, 40), _m(60, 42), _m(70, 20)]))
    rec = decide_level(1, ROOT, trials, _m(5, 45), criterion="uni", min_vers_pct=None, order="range-first")
    assert [v["node"] for v in rec["visited"]] == [n.id for n in kids]
    assert rec["chosen"] == {"node": "mha+ffn@middle-plus", "layers": "middle-plus", "modules": "mha+ffn"}
    assert not rec["stopped"]


def test_decide_level_keeps_parent_when_every_child_is_rejected():
    from cofitune.pipeline.search import decide_level

    parent = Region("bottom2", "mha+ffn")
    trials = {n: _m(80, 10) for n in children(parent, 3)}
    rec = decide_level(3, parent, trials, _m(5, 45), criterion="spec_at_vers", min_vers_pct=90, order="range-first")
    assert rec["stopped"] and rec["chosen"]["node"] == parent.id


def test_decide_level_rejects_wrong_trial_set():
    from cofitune.pipeline.search import decide_level

    with pytest.raises(ValueError, match="expected"):
        decide_level(1, ROOT, {Region("top", "ffn"): _m(1, 1)}, _m(1, 1), criterion="uni", min_vers_pct=None,
                     order="range-first")


def test_decision_margin_names_the_runner_up_and_an_exact_delta():
    from cofitune.pipeline.search import decide_level

    kids = children(ROOT, 1)
    trials = dict(zip(kids, [_m(50, 40), _m(60, 42), _m(70, 20)]))  # Uni 45, 51, 45
    rec = decide_level(1, ROOT, trials, _m(5, 45), criterion="uni", min_vers_pct=None, order="range-first")
    # runner-up tie between bottom-plus and top-plus (Uni 45): the earlier node is named
    assert rec["margin"]["runner_up"] == "mha+ffn@bottom-plus" and rec["margin"]["key"] == "uni"
    assert rec["margin"]["delta"] == pytest.approx(6.0)
    assert rec["margin"]["ci95"] == pytest.approx([6.0, 6.0])  # constant items: every draw gives the same delta
    assert rec["margin"]["within_noise"] is False


def test_decision_within_noise_is_flagged():
    """Two trials that differ on a handful of items out of 40: the chosen one leads, the paired CI spans 0."""
    from cofitune.pipeline.search import decide_level

    parent = Region("bottom-plus", "mha+ffn")
    kids = children(parent, 2)
    base = [1.0, 0.0] * 20
    better = list(base)
    better[1] = 1.0  # one more correct versatility item
    trials = {kids[0]: _items([30.0, 10.0] * 20, base), kids[1]: _items([30.0, 10.0] * 20, better)}
    rec = decide_level(2, parent, trials, _m(5, 45, n=40), criterion="uni", min_vers_pct=None, order="range-first")
    margin = rec["margin"]
    assert rec["chosen"]["node"] == kids[1].id and margin["runner_up"] == kids[0].id
    assert margin["delta"] == pytest.approx(0.5 * 2.5)  # Uni = (Spec + Vers) / 2; Vers +2.5 points
    lo, hi = margin["ci95"]
    assert lo == pytest.approx(0.0) and hi > 0 and margin["within_noise"] is True


def test_decision_margin_under_spec_at_vers_uses_spec_and_only_eligible_children():
    from cofitune.pipeline.search import decide_level

    parent = Region("bottom2", "mha+ffn")
    kids = children(parent, 3)  # mha, ffn, mha+ffn
    trials = dict(zip(kids, [_m(50, 44), _m(40, 46), _m(90, 10)]))  # mha+ffn is rejected (vers < 90% of 45)
    rec = decide_level(3, parent, trials, _m(5, 45), criterion="spec_at_vers", min_vers_pct=90, order="range-first")
    assert rec["chosen"]["node"] == kids[0].id
    assert rec["margin"]["runner_up"] == kids[1].id and rec["margin"]["key"] == "spec"
    assert rec["margin"]["delta"] == pytest.approx(10.0) and rec["margin"]["ci95"] == pytest.approx([10.0, 10.0])


def test_decision_margin_is_null_without_a_runner_up():
    from cofitune.pipeline.search import decide_level

    parent = Region("bottom2", "mha+ffn")
    kids = children(parent, 3)
    trials = dict(zip(kids, [_m(50, 44), _m(40, 10), _m(90, 10)]))  # only mha passes the constraint
    rec = decide_level(3, parent, trials, _m(5, 45), criterion="spec_at_vers", min_vers_pct=90, order="range-first")
    assert rec["chosen"]["node"] == kids[0].id and rec["margin"] is None


def test_decide_grid_over_the_full_table():
    from cofitune.pipeline.search import decide_grid

    grid = all_nodes()
    trials = {n: _m(10 + i, 30) for i, n in enumerate(grid)}  # the last grid node has the best Spec and Uni
    rec = decide_grid(trials, _m(5, 45), criterion="uni", min_vers_pct=None)
    assert rec["mode"] == "exhaustive" and len(rec["visited"]) == 24
    assert rec["chosen"]["node"] == grid[-1].id and rec["margin"]["runner_up"] == grid[-2].id
    assert rec["margin"]["delta"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="rejects every grid node"):
        decide_grid(trials, _m(5, 45), criterion="spec_at_vers", min_vers_pct=90)
    with pytest.raises(ValueError, match="24"):
        decide_grid(dict(list(trials.items())[:5]), _m(5, 45), criterion="uni", min_vers_pct=None)


def test_trial_node_reads_the_region_from_the_run():
    from cofitune.pipeline.search import trial_node

    run = {"method": "coarse_only", "variant": "ffn-b2", "params": {"layers": "bottom2", "modules": "ffn"}}
    assert trial_node({"run": run}, "x.json") == Region("bottom2", "ffn")
    with pytest.raises(ValueError, match="x.json.*not a coarse_only"):
        trial_node({"run": {**run, "method": "cofitune"}}, "x.json")
    with pytest.raises(ValueError, match="x.json.*no grid node"):
        trial_node({"run": {**run, "params": {"layers": "bottom9", "modules": "ffn"}}}, "x.json")


def test_a_searched_row_trains_only_from_a_resolved_config(tmp_path):
    """The region a searched row trains is in its own (resolved) config, which metrics.json records as is;
    a config the search's choice was never written into is refused before any model is loaded."""
    import json

    from cofitune.pipeline.artifacts import run_record
    from cofitune.pipeline.stages import train

    cfg = {"model": "m", "task": "t", "method": "cofitune", "variant": "searched", "row": "searched", "seed": 1,
           "kind": "trained", "params": {"from_search": True, "layers": "bottom2", "modules": "ffn"},
           "train": {}, "plugins": []}
    path = tmp_path / "searched.json"
    path.write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"searched.json: a from_search row's config has no region.*resolve-region"):
        train.run(path, tmp_path / "no-model", tmp_path / "no-data.jsonl", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    resolved = {**cfg, "params": {**cfg["params"], "layers": "middle", "modules": "mha"}, "region": "mha@middle"}
    assert run_record(resolved) == {k: resolved[k] for k in ("model", "task", "method", "variant", "row", "params",
                                                             "seed")}


def test_a_node_id_parses_back_to_its_node_and_nothing_else_parses():
    for node in all_nodes():
        assert Region.parse(node.id) == node
    for bad in ("ffn", "ffn@", "@bottom2", "ffn@bottom9", "attn@all", "bottom2@ffn"):
        with pytest.raises(ValueError, match="names no region"):
            Region.parse(bad)


@pytest.mark.parametrize("region, text, variant", [
    (Region("bottom2", "ffn"), "ffn@bottom2", "node.ffn.bottom2"),
    (Region("8-16", ["up_proj", "down_proj"]), "up_proj+down_proj@8-16", "node.up_proj+down_proj.8-16"),
    (Region("all", "q_proj"), "q_proj@all", "node.q_proj.all"),
])
def test_every_form_of_a_region_reads_back(region, text, variant):
    """Each encoding of a region is written and read in one place (core/region.py): id, variant, params,
    record."""
    assert region.id == str(region) == text and Region.parse(text) == region
    assert region.variant == variant and Region.from_variant(variant) == region
    assert Region.from_params(region.params) == region
    assert Region.from_record(region.record()) == region and region.record()["node"] == text
    assert Region.from_params({"layers": None, "modules": "ffn"}) is None  # LoRA on every layer: no region


def test_a_bad_region_is_named_where_it_is_read():
    with pytest.raises(ValueError, match="unknown layer range 'bottom9'"):
        Region("bottom9", "ffn")
    with pytest.raises(ValueError, match="unknown module"):
        Region("bottom2", "attn")
    with pytest.raises(ValueError, match="chosen.json: node 'mha@bottom2' is not its layers and modules"):
        Region.from_record({"node": "mha@bottom2", "layers": "bottom2", "modules": "ffn"}, where="chosen.json")
    with pytest.raises(ValueError, match="chosen.json: not a region record"):
        Region.from_record({"node": "ffn@bottom2"}, where="chosen.json")
