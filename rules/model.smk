rule prepare_model:
    input:
        sheet=MODELS_SHEET,
    output:
        folder=directory(P.MODEL),
        meta=P.MODEL_META,
    threads: workflow.cores
    log:
        "logs/prepare_model/{model}.log",
    benchmark:
        "benchmarks/rules/prepare_model/{model}.tsv"
    shell:
        "COFITUNE_THREADS={threads} {PY} prepare-model --sheet {input.sheet} --name {wildcards.model} "
        "--out {output.folder} --meta {output.meta} > {log} 2>&1"
