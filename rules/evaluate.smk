rule prepare_nltk:
    output:
        directory("results/nltk_data"),
    log:
        "logs/prepare_nltk.log",
    shell:
        "COFITUNE_THREADS={threads} {PY} prepare-nltk --out {output} > {log} 2>&1"


rule evaluate:
    input:
        unpack(checkpoint_input),
        nltk=rules.prepare_nltk.output,
        cfg=rules.write_run_config.output,
        model=rules.prepare_model.output.folder,
        model_meta=rules.prepare_model.output.meta,
        test=rules.prepare_data.output.test,
        data_meta=rules.prepare_data.output.meta,
    output:
        metrics=f"{RUN}/metrics.json",
        predictions=f"{RUN}/predictions.jsonl",
    params:
        ckpt=lambda w, input: f"--checkpoint {input.ckpt}" if "ckpt" in input.keys() else "",
    threads: workflow.cores
    log:
        f"logs/evaluate/{RUN_ID}.log",
    benchmark:
        f"benchmarks/rules/evaluate/{RUN_ID}.tsv"
    shell:
        "COFITUNE_THREADS={threads} {PY} evaluate --run-config {input.cfg} --model-dir {input.model} {params.ckpt} "
        "--test {input.test} --out {output.metrics} --predictions {output.predictions} "
        "--nltk-dir {input.nltk} --model-meta {input.model_meta} --data-meta {input.data_meta} "
        "> {log} 2>&1"
