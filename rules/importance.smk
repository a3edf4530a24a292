rule compute_importance:
    input:
        model=rules.prepare_model.output.folder,
        data=rules.prepare_data.output.train,
        cfg=config_input("importance"),
    output:
        P.IMPORTANCE,
    params:
        n=lambda w: config["importance"]["n_examples"] or 10**9,
        bs=config["importance"]["batch_size"],
        p=config["importance"]["dropout"],
        kl=config["importance"]["kl_weight"],
        abs_flag="--abs-grad" if config["importance"]["abs_grad"] else "",
        max_length=config["train"]["max_length"],
        template=config["train"]["template"],
        seed=config["seed"],
        launch=lambda w, resources: launch_command(resources.gpu),
    resources:
        gpu=0,  # GPUs per job (SLURM profile); > 1 shards the importance pass over torchrun workers
    threads: workflow.cores
    log:
        "logs/compute_importance/{model}/{task}.log",
    benchmark:
        "benchmarks/rules/compute_importance/{model}/{task}.tsv"
    shell:
        "COFITUNE_THREADS={threads} {params.launch} importance --model-dir {input.model} --data {input.data} --out {output} "
        "--n-examples {params.n} --batch-size {params.bs} --dropout {params.p} --kl-weight {params.kl} "
        "{params.abs_flag} --max-length {params.max_length} --template {params.template} "
        "--seed {params.seed} > {log} 2>&1"
