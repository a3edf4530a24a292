# The bench gate: the candidate row (config bench.candidate, added by tools/bench.py) against the suite's
# stored baselines. A failing verdict is a result, not a job failure: verdict.json says passed: false.
if config.get("bench", {}).get("candidate"):
    from cofitune.reporting.bench import reference_files, stored_files

    rule bench_verdict:
        input:
            metrics=expand(P.METRICS, model=config["models"], task=config["tasks"],
                           method=config["bench"]["candidate"]["method"],
                           variant=config["bench"]["candidate"]["variant"]),
            baselines=[str(p) for p in reference_files(config["bench"], config["models"], config["tasks"])],
            stored=[str(p) for m in config["models"] for t in config["tasks"]
                    for p in stored_files(config["bench"], m, t)],
            cfg=config_input("bench"),
        output:
            json=f"{P.BENCH_VERDICT}.json",
            md=f"{P.BENCH_VERDICT}.md",
        log:
            "logs/bench_verdict.log",
        shell:
            "{PY} bench-gate --config {input.cfg} --metrics {input.metrics} --json {output.json} --md {output.md} "
            "> {log} 2>&1"
