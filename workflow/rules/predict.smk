# Prediction on new FASTA files: per-record TSV, per-window bedGraph (one track per label) and one
# bigWig per label (in <name>.bigwig/). An entry with `scatter: N` (N > 1) is scored by N
# `predict --shard I/N` jobs (every N-th record each, so a genome's chromosomes spread over
# cluster nodes) and joined by `gather-predictions` into the same files one job would write.


rule predict:
    input:
        summary=f"{RESULTS}/validate/predict/{{name}}.json",
        fasta=lambda wildcards: user_input(PREDICTIONS[wildcards.name]["fasta"]),
        checkpoint=predict_checkpoint,
    output:
        tsv=f"{RESULTS}/predict/{{name}}.tsv",
        bedgraph=f"{RESULTS}/predict/{{name}}.bedGraph",
        bigwig=directory(f"{RESULTS}/predict/{{name}}.bigwig"),
    wildcard_constraints:
        name="|".join(UNSCATTERED) or "NO_PREDICTIONS",
    params:
        fasta=lambda wildcards: PREDICTIONS[wildcards.name]["fasta"],
        batch_size=config["predict_settings"]["batch_size"],
        options=lambda wildcards: predict_params(wildcards.name),
        checkpoints=lambda wildcards, input: checkpoint_flags(input.checkpoint),
        bigwig_prefix=lambda wildcards, output: f"{output.bigwig}/{wildcards.name}",
        device=COMPUTE["device"],
    log:
        f"{RESULTS}/logs/predict/{{name}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/predict/{{name}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
    conda:
        "../envs/bigbird.yaml"
    shell:
        "bigbird-genomics predict {params.checkpoints} --fasta {params.fasta:q}"
        " --out {output.tsv} --bedgraph {output.bedgraph} --bigwig {params.bigwig_prefix}"
        " {params.options} --batch-size {params.batch_size} --device {params.device} > {log} 2>&1"


rule predict_shard:
    input:
        summary=f"{RESULTS}/validate/predict/{{name}}.json",
        fasta=lambda wildcards: user_input(PREDICTIONS[wildcards.name]["fasta"]),
        checkpoint=predict_checkpoint,
    output:
        tsv=temp(f"{RESULTS}/predict/shards/{{name}}/{{shard}}.tsv"),
        bedgraph=temp(f"{RESULTS}/predict/shards/{{name}}/{{shard}}.bedGraph"),
    wildcard_constraints:
        name="|".join(SCATTERED) or "NO_SCATTERED",
    params:
        fasta=lambda wildcards: PREDICTIONS[wildcards.name]["fasta"],
        shard=lambda wildcards: f"{wildcards.shard}/{scatter_of(wildcards.name)}",
        batch_size=config["predict_settings"]["batch_size"],
        options=lambda wildcards: predict_params(wildcards.name),
        checkpoints=lambda wildcards, input: checkpoint_flags(input.checkpoint),
        device=COMPUTE["device"],
    log:
        f"{RESULTS}/logs/predict/{{name}}/shard{{shard}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/predict/{{name}}/shard{{shard}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
    conda:
        "../envs/bigbird.yaml"
    shell:
        "bigbird-genomics predict {params.checkpoints} --fasta {params.fasta:q}"
        " --shard {params.shard} --out {output.tsv} --bedgraph {output.bedgraph}"
        " {params.options} --batch-size {params.batch_size} --device {params.device} > {log} 2>&1"


rule gather_predictions:
    input:
        tsvs=lambda wildcards: prediction_shards(wildcards.name)["tsvs"],
        bedgraphs=lambda wildcards: prediction_shards(wildcards.name)["bedgraphs"],
    output:
        tsv=f"{RESULTS}/predict/{{name}}.tsv",
        bedgraph=f"{RESULTS}/predict/{{name}}.bedGraph",
        bigwig=directory(f"{RESULTS}/predict/{{name}}.bigwig"),
    wildcard_constraints:
        name="|".join(SCATTERED) or "NO_SCATTERED",
    params:
        bigwig_prefix=lambda wildcards, output: f"{output.bigwig}/{wildcards.name}",
    log:
        f"{RESULTS}/logs/gather_predictions/{{name}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/gather_predictions/{{name}}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        "../envs/bigbird.yaml"
    shell:
        "bigbird-genomics gather-predictions --tsv {input.tsvs} --bedgraphs {input.bedgraphs}"
        " --out {output.tsv} --bedgraph {output.bedgraph} --bigwig {params.bigwig_prefix}"
        " > {log} 2>&1"
