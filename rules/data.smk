rule prepare_data:
    input:
        sheet=TASKS_SHEET,
        cfg=config_input("data"),
    output:
        train=f"{P.DATA}/train.jsonl",
        test=f"{P.DATA}/test.jsonl",
        meta=f"{P.DATA}/meta.json",
    params:
        n_train=lambda w: task_size(config, TASK_SPECS[w.task], "n_train"),
        n_test=lambda w: task_size(config, TASK_SPECS[w.task], "n_test"),
        seed=config["seed"],
        out=lambda w: P.fill(P.DATA, task=w.task),
    log:
        "logs/prepare_data/{task}.log",
    shell:
        "COFITUNE_THREADS={threads} {PY} prepare-data --sheet {input.sheet} --root {ROOT} --task {wildcards.task} "
        "--n-train {params.n_train} --n-test {params.n_test} --seed {params.seed} "
        "--out {params.out} > {log} 2>&1"
