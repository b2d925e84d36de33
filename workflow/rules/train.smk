# Training (Hydra app, run directory pinned to the rule's output) and evaluation on the test split.


rule train:
    input:
        dataset=f"{RESULTS}/datasets/{{task}}",
    output:
        checkpoint=f"{RESULTS}/runs/{{task}}/checkpoints/best.ckpt",
        # declared so that Snakemake removes it before a re-run: training refuses to start
        # beside an earlier run's checkpoints
        last=f"{RESULTS}/runs/{{task}}/checkpoints/last.ckpt",
        metrics=f"{RESULTS}/runs/{{task}}/metrics.json",
        loss=report(
            f"{RESULTS}/runs/{{task}}/plots/loss.png",
            caption="../report/loss.rst",
            category="Training",
            subcategory="{task}",
            labels={"task": "{task}", "figure": "loss curves"},
        ),
        layout=report(
            f"{RESULTS}/runs/{{task}}/plots/attention_layout.png",
            caption="../report/attention_layout.rst",
            category="Training",
            subcategory="{task}",
            labels={"task": "{task}", "figure": "attention layout"},
        ),
    params:
        run_dir=subpath(output.metrics, parent=True),
        hydra_task=lambda wildcards: TASKS[wildcards.task].get("hydra_task", wildcards.task),
        overrides=lambda wildcards: hydra_overrides(wildcards.task),
    log:
        f"{RESULTS}/logs/train/{{task}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{task}}.tsv"
    threads: COMPUTE["train_threads"]
    resources:
        mem_mb=COMPUTE["train_mem_mb"],
        gpu=COMPUTE["train_gpus"],
        runtime=COMPUTE["train_runtime_min"],
    conda:
        "../envs/bigbird.yaml"
    shell:
        "bigbird-genomics-train task={params.hydra_task} data.dataset={input.dataset}"
        " hydra.run.dir={params.run_dir} {params.overrides} > {log} 2>&1"


# A task's further seeds (`seeds: [0, 1, 2]`): the same training with another seed, in
# runs/<task>.seed<N>; evaluate and predict then score the seeds' ensemble.
use rule train as train_seed with:
    output:
        checkpoint=f"{RESULTS}/runs/{{task}}.seed{{seed}}/checkpoints/best.ckpt",
        last=f"{RESULTS}/runs/{{task}}.seed{{seed}}/checkpoints/last.ckpt",
        metrics=f"{RESULTS}/runs/{{task}}.seed{{seed}}/metrics.json",
    wildcard_constraints:
        seed=r"\d+",
    params:
        run_dir=subpath(output.metrics, parent=True),
        hydra_task=lambda wildcards: TASKS[wildcards.task].get("hydra_task", wildcards.task),
        overrides=lambda wildcards: hydra_overrides(wildcards.task, wildcards.seed),
    log:
        f"{RESULTS}/logs/train/{{task}}.seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{task}}.seed{{seed}}.tsv"


rule evaluate:
    input:
        checkpoint=lambda wildcards: task_checkpoints(wildcards.task),
        dataset=f"{RESULTS}/datasets/{{task}}",
    output:
        metrics=f"{RESULTS}/evaluate/{{task}}/metrics.json",
        roc=report(
            f"{RESULTS}/evaluate/{{task}}/roc.png",
            caption="../report/roc_pr.rst",
            category="Evaluation",
            subcategory="{task}",
            labels={"task": "{task}", "figure": "ROC"},
        ),
        pr=report(
            f"{RESULTS}/evaluate/{{task}}/pr.png",
            caption="../report/roc_pr.rst",
            category="Evaluation",
            subcategory="{task}",
            labels={"task": "{task}", "figure": "precision-recall"},
        ),
    params:
        plots=subpath(output.roc, parent=True),
        split=config["evaluate"]["split"],
        device=COMPUTE["device"],
        checkpoints=lambda wildcards, input: checkpoint_flags(input.checkpoint),
    log:
        f"{RESULTS}/logs/evaluate/{{task}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate/{{task}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
    conda:
        "../envs/bigbird.yaml"
    shell:
        "bigbird-genomics evaluate {params.checkpoints} --data {input.dataset}"
        " --split {params.split} --device {params.device} --out {output.metrics}"
        " --plots {params.plots} > {log} 2>&1"
