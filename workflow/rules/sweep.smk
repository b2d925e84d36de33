# Sparsity sweep: one training run per configured attention setting, then a comparison.


rule train_sweep:
    input:
        dataset=f"{RESULTS}/datasets/{SWEEP.get('task', 'NO_TASK')}",
    output:
        checkpoint=f"{RESULTS}/sweep/runs/{{setting}}/checkpoints/best.ckpt",
        last=f"{RESULTS}/sweep/runs/{{setting}}/checkpoints/last.ckpt",  # see rule train
        metrics=f"{RESULTS}/sweep/runs/{{setting}}/metrics.json",
    params:
        run_dir=subpath(output.metrics, parent=True),
        hydra_task=TASKS.get(SWEEP.get("task"), {}).get("hydra_task", SWEEP.get("task")),
        overrides=lambda wildcards: quoted(
            [*SWEEP.get("overrides", []), *SWEEP_SETTINGS[wildcards.setting]]
        ),
        base_overrides=hydra_overrides(SWEEP["task"]) if SWEEP_SETTINGS else "",
    log:
        f"{RESULTS}/logs/train_sweep/{{setting}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_sweep/{{setting}}.tsv"
    threads: COMPUTE["train_threads"]
    resources:
        mem_mb=COMPUTE["train_mem_mb"],
        gpu=COMPUTE["train_gpus"],
        runtime=COMPUTE["train_runtime_min"],
    conda:
        "../envs/bigbird.yaml"
    shell:
        "bigbird-genomics-train task={params.hydra_task} data.dataset={input.dataset}"
        " hydra.run.dir={params.run_dir} {params.base_overrides} {params.overrides} > {log} 2>&1"


rule sweep_summary:
    input:
        metrics=expand(f"{RESULTS}/sweep/runs/{{setting}}/metrics.json", setting=SWEEP_SETTINGS),
    output:
        table=report(
            f"{RESULTS}/sweep/summary.tsv",
            caption="../report/sweep.rst",
            category="Sparsity sweep",
            labels={"figure": "table"},
        ),
        plot=report(
            f"{RESULTS}/sweep/summary.png",
            caption="../report/sweep.rst",
            category="Sparsity sweep",
            labels={"figure": "metric vs setting"},
        ),
    params:
        runs=lambda wildcards, input: quoted(Path(path).parent for path in input.metrics),
    log:
        f"{RESULTS}/logs/sweep_summary.log",
    benchmark:
        f"{RESULTS}/benchmarks/sweep_summary.tsv"
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        "../envs/bigbird.yaml"
    shell:
        "bigbird-genomics sweep-summary --runs {params.runs} --out-tsv {output.table}"
        " --out-png {output.plot} > {log} 2>&1"
