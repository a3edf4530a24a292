# Figures for the report: Pareto (per task x model), tree search, importance heatmaps.


def plot_targets():
    out = expand(f"{P.PLOTS}/pareto.png", model=config["models"], task=config["tasks"])
    if config["search"]["enabled"]:
        out += expand(f"{P.PLOTS}/search.png", model=config["models"], task=config["tasks"])
    if any(get_method(r["method"]).needs_importance for r in configured_runs(config)):
        out += expand(f"{P.PLOTS}/importance.png", model=config["models"], task=config["tasks"])
    return out


def search_records(w):
    if config["search"]["mode"] == "exhaustive":
        return [P.fill(P.SEARCH_GRID, model=w.model, task=w.task)]
    return [P.fill(P.SEARCH_LEVEL, model=w.model, task=w.task, level=k) for k in (1, 2, 3)]


def row_metrics(w):
    """Every configured row's metrics.json of one (model, task): the plot reads each row's run parameters."""
    return [P.fill(P.METRICS, model=w.model, task=w.task, method=r["method"], variant=r["variant"])
            for r in configured_runs(config)]


rule plot_pareto:
    input:
        table=rules.aggregate_results.output.csv,
        metrics=row_metrics,
    output:
        png=report(f"{P.PLOTS}/pareto.png", caption="../workflow/report/pareto.rst",
                   category="{task}", subcategory="{model}", labels={"figure": "Spec vs Vers (Pareto)"}),
        svg=f"{P.PLOTS}/pareto.svg",
    log:
        "logs/plot_pareto/{task}/{model}.log",
    shell:
        "{PY} plot-pareto --table {input.table} --metrics {input.metrics} --model {wildcards.model} "
        "--task {wildcards.task} --png {output.png} --svg {output.svg} > {log} 2>&1"


rule plot_search:
    input:
        search_records,
    output:
        png=report(f"{P.PLOTS}/search.png", caption="../workflow/report/search.rst",
                   category="{task}", subcategory="{model}", labels={"figure": "coarse tree search"}),
        svg=f"{P.PLOTS}/search.svg",
    log:
        "logs/plot_search/{task}/{model}.log",
    shell:
        "{PY} plot-search --levels {input} --title 'tree search: {wildcards.task} · {wildcards.model}' "
        "--png {output.png} --svg {output.svg} > {log} 2>&1"


rule plot_importance:
    input:
        rules.compute_importance.output,
    output:
        png=report(f"{P.PLOTS}/importance.png", caption="../workflow/report/importance.rst",
                   category="{task}", subcategory="{model}", labels={"figure": "unit importance"}),
        svg=f"{P.PLOTS}/importance.svg",
    log:
        "logs/plot_importance/{task}/{model}.log",
    shell:
        "{PY} plot-importance --importance {input} --title 'importance: {wildcards.task} · {wildcards.model}' "
        "--png {output.png} --svg {output.svg} > {log} 2>&1"
