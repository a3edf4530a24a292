rule aggregate_results:
    input:
        metrics=[f"{RUN}/metrics.json".format(**r) for r in all_runs()],
        run_configs=[config_input("run")(r) for r in all_runs()],
        cfg=config_input("tables"),
    output:
        csv=report("results/tables/main.csv", caption="../workflow/report/main_table.rst", category="Tables",
                   labels={"table": "every number (CSV)"}),
        html=report("results/tables/main.html", caption="../workflow/report/main_table.rst", category="Tables",
                    labels={"table": "main table"}),
        md="results/tables/main.md",
        tex="results/tables/main.tex",
        claims_csv="results/tables/claims.csv",
        claims_md=report("results/tables/claims.md", caption="../workflow/report/claims.rst", category="Tables",
                         labels={"table": "claims"}),
    params:
        uni=UNI,
    log:
        "logs/aggregate_results.log",
    shell:
        "COFITUNE_THREADS={threads} {PY} aggregate --metrics {input.metrics} --csv {output.csv} --md {output.md} "
        "--run-configs {input.run_configs} --tex {output.tex} --html {output.html} --claims-csv {output.claims_csv} --claims-md {output.claims_md} "
        "{params.uni} > {log} 2>&1"
