rule compute_importance:
    input:
        model=rules.prepare_model.output.folder,
        data=rules.prepare_data.output.train,
        cfg=config_input("importance"),
    output:
        P.IMPORTANCE,
    params:
        launch=lambda w, resources: launch_command(resources.gpu),
    resources:
        gpu=0,  # GPUs per job (SLURM profile); > 1 shards the importance pass over torchrun workers
    threads: workflow.cores
    log:
        "logs/compute_importance/{model}/{task}.log",
    benchmark:
        "benchmarks/rules/compute_importance/{model}/{task}.tsv"
    shell:
        "COFITUNE_THREADS={threads} {params.launch} importance --config {input.cfg} --model-dir {input.model} "
        "--data {input.data} --out {output} > {log} 2>&1"
