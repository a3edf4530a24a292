# Figures for the report: Pareto (per task x model), tree search, importance heatmaps.


def plot_targets():
    out = expand("results/plots/{task}/{model}/pareto.png", model=config["models"], task=config["tasks"])
    if config["search"]["enabled"]:
        out += expand("results/plots/{task}/{model}/search.png", model=config["models"], task=config["tasks"])
    if any(get_method(r["method"]).needs_importance for r in configured_runs(config)):
        out += expand("results/plots/{task}/{model}/importance.png", model=config["models"], task=config["tasks"])
    return out


def search_records(w):
    if config["search"]["mode"] == "exhaustive":
        return [f"results/search/{w.model}/{w.task}/grid.json"]
    return [f"results/search/{w.model}/{w.task}/level{k}.json" for k in (1, 2, 3)]


rule plot_pareto:
    input:
        rules.aggregate_results.output.csv,
    output:
        png=report("results/plots/{task}/{model}/pareto.png", caption="../workflow/report/pareto.rst",
                   category="{task}", subcategory="{model}", labels={"figure": "Spec vs Vers (Pareto)"}),
        svg="results/plots/{task}/{model}/pareto.svg",
    log:
        "logs/plot_pareto/{task}/{model}.log",
    shell:
        "{PY} plot-pareto --table {input} --model {wildcards.model} --task {wildcards.task} "
        "--png {output.png} --svg {output.svg} > {log} 2>&1"


rule plot_search:
    input:
        search_records,
    output:
        png=report("results/plots/{task}/{model}/search.png", caption="../workflow/report/search.rst",
                   category="{task}", subcategory="{model}", labels={"figure": "coarse tree search"}),
        svg="results/plots/{task}/{model}/search.svg",
    log:
        "logs/plot_search/{task}/{model}.log",
    shell:
        "{PY} plot-search --levels {input} --title 'tree search: {wildcards.task} · {wildcards.model}' "
        "--png {output.png} --svg {output.svg} > {log} 2>&1"


rule plot_importance:
    input:
        rules.compute_importance.output,
    output:
        png=report("results/plots/{task}/{model}/importance.png", caption="../workflow/report/importance.rst",
                   category="{task}", subcategory="{model}", labels={"figure": "unit importance"}),
        svg="results/plots/{task}/{model}/importance.svg",
    log:
        "logs/plot_importance/{task}/{model}.log",
    shell:
        "{PY} plot-importance --importance {input} --title 'importance: {wildcards.task} · {wildcards.model}' "
        "--png {output.png} --svg {output.svg} > {log} 2>&1"
