rule aggregate_results:
    input:
        metrics=[f"{RUN}/metrics.json".format(**r) for r in all_runs()],
    output:
        csv="results/tables/main.csv",
        md="results/tables/main.md",
    log:
        "logs/aggregate_results.log",
    shell:
        "COFITUNE_THREADS={threads} {PY} aggregate --metrics {input.metrics} --csv {output.csv} --md {output.md} > {log} 2>&1"
