# Masked-LM pretraining on genome FASTA(s), then fine-tuning of every task with
# `pretrained: true` from that encoder (model.init_from). The model settings live once, in
# `pretrain.model`: pretraining uses them and every fine-tune appends them after its own
# overrides, so the encoder shapes always match. The corpus uses the workflow's `tokenize:`
# tokenizer option and max_tokens, which pretrained tasks must keep (checked below).

PRETRAIN = config.get("pretrain") or {}
PRETRAINED_TASKS = [name for name, entry in TASKS.items() if entry.get("pretrained")]
PRETRAIN_DIR = f"{RESULTS}/pretrain"


# Pretrained tasks need a `pretrain:` section and the corpus's tokenizer.
PRETRAIN_PROBLEMS = (
    [
        f"tasks {', '.join(PRETRAINED_TASKS)} have pretrained: true but pretrain.fasta lists "
        "no genome FASTA"
    ]
    if PRETRAINED_TASKS and not PRETRAIN.get("fasta")
    else [
        f"tasks.{name}.tokenize.{key} is {TASKS[name]['tokenize'][key]!r} but the pretraining "
        f"corpus uses tokenize.{key}={config['tokenize'][key]!r}; a pretrained task keeps the "
        "workflow's tokenizer and max_tokens"
        for name in PRETRAINED_TASKS
        for key in ("tokenizer", "max_tokens")
        if key in (TASKS[name].get("tokenize") or {})
        and TASKS[name]["tokenize"][key] != config["tokenize"][key]
    ]
)
if PRETRAIN_PROBLEMS:
    raise WorkflowError(
        "invalid workflow config: " + "; ".join(PRETRAIN_PROBLEMS)
        + " (fix config/config.yaml or your --configfile; see docs/pretraining.md)"
    )

# The one copy of the model settings, shared by pretraining and its fine-tunes.
PRETRAIN_MODEL = quoted(PRETRAIN.get("model", []))


if PRETRAINED_TASKS:

    # A pretrained task's run directory is made by `finetune`, every other task's by `train`.
    ruleorder: finetune > train
    ruleorder: finetune_seed > train_seed

    rule pretrain_corpus:
        input:
            [path for fasta in PRETRAIN["fasta"] for path in user_input(fasta)],
        output:
            corpus=directory(f"{PRETRAIN_DIR}/corpus"),
        params:
            fasta=lambda wildcards: quoted(PRETRAIN["fasta"]),
            tokenizer=config["tokenize"]["tokenizer"],
            max_tokens=config["tokenize"]["max_tokens"],
            strands="--both-strands" if PRETRAIN.get("both_strands", True) else "--forward-only",
            min_n_run=PRETRAIN.get("min_n_run", 1),
            val_fraction=PRETRAIN.get("val_fraction", 0.01),
        log:
            f"{RESULTS}/logs/pretrain/corpus.log",
        benchmark:
            f"{RESULTS}/benchmarks/pretrain/corpus.tsv"
        threads: 1
        resources:
            mem_mb=4000,
        conda:
            "../envs/bigbird.yaml"
        shell:
            "bigbird-genomics pretrain-corpus --fasta {params.fasta} --tokenizer {params.tokenizer}"
            " --max-tokens {params.max_tokens} {params.strands}"
            " --min-n-run {params.min_n_run} --val-fraction {params.val_fraction}"
            " --out {output.corpus} > {log} 2>&1"

    rule pretrain:
        input:
            corpus=f"{PRETRAIN_DIR}/corpus",
        output:
            checkpoint=f"{PRETRAIN_DIR}/run/checkpoints/best.ckpt",
            last=f"{PRETRAIN_DIR}/run/checkpoints/last.ckpt",
            metrics=f"{PRETRAIN_DIR}/run/metrics.json",
            loss=report(
                f"{PRETRAIN_DIR}/run/plots/loss.png",
                caption="../report/loss.rst",
                category="Pretraining",
                labels={"figure": "masked-LM loss curves"},
            ),
        params:
            run_dir=subpath(output.metrics, parent=True),
            tokenizer=config["tokenize"]["tokenizer"],
            steps=PRETRAIN.get("steps", 1000),
            val_every=min(PRETRAIN.get("steps", 1000), PRETRAIN.get("val_every_steps", 500)),
            model=PRETRAIN_MODEL,
            overrides=quoted([*PRETRAIN.get("overrides", []), *config.get("train_overrides", [])]),
        log:
            f"{RESULTS}/logs/pretrain/train.log",
        benchmark:
            f"{RESULTS}/benchmarks/pretrain/train.tsv"
        threads: COMPUTE["train_threads"]
        resources:
            mem_mb=COMPUTE["train_mem_mb"],
            gpu=COMPUTE["train_gpus"],
            runtime=COMPUTE["train_runtime_min"],
        conda:
            "../envs/bigbird.yaml"
        shell:
            # validation (which writes best.ckpt and last.ckpt) every val_every_steps steps,
            # whatever the corpus's epoch length, so a killed run resumes from there
            "bigbird-genomics-train task=mlm data.dataset={input.corpus}"
            " tokenizer={params.tokenizer} {params.model}"
            " trainer.max_steps={params.steps} trainer.max_epochs=-1"
            " trainer.val_check_interval={params.val_every} trainer.check_val_every_n_epoch=null"
            " hydra.run.dir={params.run_dir} {params.overrides} > {log} 2>&1"

    rule finetune:
        input:
            dataset=f"{RESULTS}/datasets/{{task}}",
            pretrained=f"{PRETRAIN_DIR}/run/checkpoints/best.ckpt",
        output:
            checkpoint=f"{RESULTS}/runs/{{task}}/checkpoints/best.ckpt",
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
        wildcard_constraints:
            task="|".join(PRETRAINED_TASKS),
        params:
            run_dir=subpath(output.metrics, parent=True),
            hydra_task=lambda wildcards: TASKS[wildcards.task].get("hydra_task", wildcards.task),
            overrides=lambda wildcards: hydra_overrides(wildcards.task),
            model=PRETRAIN_MODEL,
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
            # the pretraining model settings come after the task's overrides, so they win
            "bigbird-genomics-train task={params.hydra_task} data.dataset={input.dataset}"
            " hydra.run.dir={params.run_dir} {params.overrides} {params.model}"
            " model.init_from={input.pretrained} > {log} 2>&1"

    # A pretrained task's further seeds fine-tune from the same encoder (see train_seed).
    use rule finetune as finetune_seed with:
        output:
            checkpoint=f"{RESULTS}/runs/{{task}}.seed{{seed}}/checkpoints/best.ckpt",
            last=f"{RESULTS}/runs/{{task}}.seed{{seed}}/checkpoints/last.ckpt",
            metrics=f"{RESULTS}/runs/{{task}}.seed{{seed}}/metrics.json",
        wildcard_constraints:
            task="|".join(PRETRAINED_TASKS),
            seed=r"\d+",
        params:
            run_dir=subpath(output.metrics, parent=True),
            hydra_task=lambda wildcards: TASKS[wildcards.task].get("hydra_task", wildcards.task),
            overrides=lambda wildcards: hydra_overrides(wildcards.task, wildcards.seed),
            model=PRETRAIN_MODEL,
        log:
            f"{RESULTS}/logs/train/{{task}}.seed{{seed}}.log",
        benchmark:
            f"{RESULTS}/benchmarks/train/{{task}}.seed{{seed}}.tsv"
