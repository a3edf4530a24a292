rule prepare_data:
    input:
        sheet=TASKS_SHEET,
        cfg=config_input("data"),
    output:
        train=f"{P.DATA}/train.jsonl",
        test=f"{P.DATA}/test.jsonl",
        meta=f"{P.DATA}/meta.json",
    log:
        "logs/prepare_data/{task}.log",
    shell:
        "COFITUNE_THREADS={threads} {PY} prepare-data --config {input.cfg} --out $(dirname {output.meta}) > {log} 2>&1"
