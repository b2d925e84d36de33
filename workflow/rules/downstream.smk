# After training: variant effects of a VCF and in-silico mutagenesis of FASTA records.

VARIANT_EFFECTS = config.get("variant_effect") or {}
ISM = config.get("ism") or {}


# `model` of every entry must name a task (as predict's do).
_downstream_problems = [
    f"{section}.{name}.model is {entry['model']!r}, not one of tasks: {', '.join(TASKS)}"
    for section, entries in (("variant_effect", VARIANT_EFFECTS), ("ism", ISM))
    for name, entry in entries.items()
    if entry["model"] not in TASKS
]
if _downstream_problems:
    raise WorkflowError(
        "invalid workflow config: " + "; ".join(_downstream_problems)
        + " (fix config/config.yaml or your --configfile; see docs/downstream.md)"
    )


rule variant_effect:
    input:
        vcf=lambda wildcards: user_input(VARIANT_EFFECTS[wildcards.entry]["vcf"]),
        genome=lambda wildcards: user_input(VARIANT_EFFECTS[wildcards.entry]["genome"]),
        checkpoint=lambda wildcards: (
            f"{run_dir(VARIANT_EFFECTS[wildcards.entry]['model'])}/checkpoints/best.ckpt"
        ),
    output:
        tsv=f"{RESULTS}/variant_effect/{{entry}}.tsv",
        vcf=f"{RESULTS}/variant_effect/{{entry}}.vcf.gz",
        tbi=f"{RESULTS}/variant_effect/{{entry}}.vcf.gz.tbi",
    wildcard_constraints:
        entry="|".join(VARIANT_EFFECTS) or "NO_VARIANT_EFFECTS",
    params:
        vcf=lambda wildcards: VARIANT_EFFECTS[wildcards.entry]["vcf"],
        genome=lambda wildcards: VARIANT_EFFECTS[wildcards.entry]["genome"],
        window=lambda wildcards: optional_flag(
            "--window-bp", VARIANT_EFFECTS[wildcards.entry].get("window_bp")
        ),
        batch_size=config["predict_settings"]["batch_size"],
        device=COMPUTE["device"],
    log:
        f"{RESULTS}/logs/variant_effect/{{entry}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/variant_effect/{{entry}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
    conda:
        "../envs/bigbird.yaml"
    shell:
        "bigbird-genomics variant-effect --checkpoint {input.checkpoint} --genome {params.genome:q}"
        " --vcf {params.vcf:q} --out {output.tsv} --vcf-out {output.vcf} {params.window}"
        " --batch-size {params.batch_size} --device {params.device} > {log} 2>&1"


rule ism:
    input:
        fasta=lambda wildcards: user_input(ISM[wildcards.entry]["fasta"]),
        checkpoint=lambda wildcards: (
            f"{run_dir(ISM[wildcards.entry]['model'])}/checkpoints/best.ckpt"
        ),
    output:
        directory(f"{RESULTS}/ism/{{entry}}"),
    wildcard_constraints:
        entry="|".join(ISM) or "NO_ISM",
    params:
        fasta=lambda wildcards: ISM[wildcards.entry]["fasta"],
        max_records=lambda wildcards: optional_flag(
            "--max-records", ISM[wildcards.entry].get("max_records")
        ),
        records=lambda wildcards: optional_flag(
            "--records", ",".join(ISM[wildcards.entry].get("records") or [])
        ),
        max_bases=lambda wildcards: optional_flag(
            "--max-bases", ISM[wildcards.entry].get("max_bases")
        ),
        method=lambda wildcards: ISM[wildcards.entry].get("method", "ism"),
        batch_size=config["predict_settings"]["batch_size"],
        device=COMPUTE["device"],
    log:
        f"{RESULTS}/logs/ism/{{entry}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/ism/{{entry}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
    conda:
        "../envs/bigbird.yaml"
    shell:
        "bigbird-genomics ism --checkpoint {input.checkpoint} --fasta {params.fasta:q}"
        " --out {output} --method {params.method} {params.max_records} {params.records}"
        " {params.max_bases}"
        " --batch-size {params.batch_size} --device {params.device} > {log} 2>&1"
