rule prepare_nltk:
    output:
        directory(P.NLTK),
    log:
        "logs/prepare_nltk.log",
    shell:
        "COFITUNE_THREADS={threads} {PY} prepare-nltk --out {output} > {log} 2>&1"


PROBE_DATA = os.path.join(ROOT, "resources", "data", "versatility")


rule prepare_probe:
    """The drift probe's prompts with the base model's own greedy continuations, once per model."""
    input:
        cfg=config_input("probe"),
        model=rules.prepare_model.output.folder,
        data_dir=PROBE_DATA,
        data=[os.path.join(PROBE_DATA, f"{s}.jsonl") for s in PROBE_SOURCES],
    output:
        P.PROBE,
    threads: workflow.cores
    log:
        "logs/prepare_probe/{model}.log",
    benchmark:
        "benchmarks/rules/prepare_probe/{model}.tsv"
    shell:
        "COFITUNE_THREADS={threads} {PY} prepare-probe --config {input.cfg} --model-dir {input.model} "
        "--data-dir {input.data_dir} --out {output} > {log} 2>&1"


rule prepare_task_probe:
    """The task drift probe: the task's own training prompts with the base model's greedy continuations."""
    input:
        cfg=config_input("task_probe"),
        model=rules.prepare_model.output.folder,
        train=rules.prepare_data.output.train,
    output:
        P.TASK_PROBE,
    threads: workflow.cores
    log:
        "logs/prepare_task_probe/{model}/{task}.log",
    benchmark:
        "benchmarks/rules/prepare_task_probe/{model}/{task}.tsv"
    shell:
        "COFITUNE_THREADS={threads} {PY} prepare-task-probe --config {input.cfg} --model-dir {input.model} "
        "--train {input.train} --out {output} > {log} 2>&1"


rule evaluate:
    input:
        unpack(checkpoint_input),
        unpack(probe_input),
        nltk=rules.prepare_nltk.output,
        cfg=row_config("run"),
        model=rules.prepare_model.output.folder,
        model_meta=rules.prepare_model.output.meta,
        test=rules.prepare_data.output.test,
        data_meta=rules.prepare_data.output.meta,
    output:
        metrics=P.METRICS,
        predictions=P.PREDICTIONS,
    threads: workflow.cores
    log:
        f"logs/evaluate/{RUN_ID}.log",
    benchmark:
        f"benchmarks/rules/evaluate/{RUN_ID}.tsv"
    shell:
        "COFITUNE_THREADS={threads} {PY} evaluate --run-config {input.cfg} --model-dir {input.model} "
        "--checkpoint {input.ckpt} --probe {input.probe} --task-probe {input.task_probe} --test {input.test} --out {output.metrics} "
        "--predictions {output.predictions} --nltk-dir {input.nltk} --model-meta {input.model_meta} "
        "--data-meta {input.data_meta} > {log} 2>&1"
