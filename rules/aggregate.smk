rule aggregate_results:
    input:
        metrics=[P.METRICS.format(**r) for r in all_runs()],
        run_configs=[row_config("run")(r) for r in all_runs()],
        cfg=config_input("tables"),
    output:
        csv=report(f"{P.TABLES}/main.csv", caption="../workflow/report/main_table.rst", category="Tables",
                   labels={"table": "every number (CSV)"}),
        html=report(f"{P.TABLES}/main.html", caption="../workflow/report/main_table.rst", category="Tables",
                    labels={"table": "main table"}),
        md=f"{P.TABLES}/main.md",
        tex=f"{P.TABLES}/main.tex",
        claims_csv=f"{P.TABLES}/claims.csv",
        claims_md=report(f"{P.TABLES}/claims.md", caption="../workflow/report/claims.rst", category="Tables",
                         labels={"table": "claims"}),
        leaderboard_csv=f"{P.TABLES}/leaderboard.csv",
        leaderboard_md=report(f"{P.TABLES}/leaderboard.md", caption="../workflow/report/leaderboard.rst",
                              category="Tables", labels={"table": "leaderboard"}),
    log:
        "logs/aggregate_results.log",
    shell:
        "COFITUNE_THREADS={threads} {PY} aggregate --config {input.cfg} --metrics {input.metrics} "
        "--run-configs {input.run_configs} --csv {output.csv} --md {output.md} --tex {output.tex} "
        "--html {output.html} --claims-csv {output.claims_csv} --claims-md {output.claims_md} "
        "--leaderboard-csv {output.leaderboard_csv} --leaderboard-md {output.leaderboard_md} > {log} 2>&1"
