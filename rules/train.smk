rule train:
    input:
        cfg=row_config("train"),
        model=rules.prepare_model.output.folder,
        data=rules.prepare_data.output.train,
        importance=importance_inputs,
        sources=source_inputs,
    output:
        ckpt=directory(P.CHECKPOINT),
    params:
        launch=lambda w, resources: launch_command(resources.gpu),
    resources:
        gpu=0,  # GPUs per job (SLURM profile); > 1 launches torchrun with one worker per GPU
    threads: workflow.cores
    log:
        f"logs/train/{RUN_ID}.log",
    benchmark:
        f"benchmarks/rules/train/{RUN_ID}.tsv"
    shell:
        "COFITUNE_THREADS={threads} {params.launch} train --run-config {input.cfg} --model-dir {input.model} --data {input.data} "
        "--importance {input.importance} --sources {input.sources} "
        "--out {output.ckpt} > {log} 2>&1"
