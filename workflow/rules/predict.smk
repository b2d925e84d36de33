# Prediction on new FASTA files: per-record TSV and per-window bedGraph (one track per label).


rule predict:
    input:
        summary=f"{RESULTS}/validate/predict/{{name}}.json",
        fasta=lambda wildcards: user_input(PREDICTIONS[wildcards.name]["fasta"]),
        checkpoint=lambda wildcards: f"{run_dir(PREDICTIONS[wildcards.name]['model'])}/checkpoints/best.ckpt",
    output:
        tsv=f"{RESULTS}/predict/{{name}}.tsv",
        bedgraph=f"{RESULTS}/predict/{{name}}.bedGraph",
    params:
        fasta=lambda wildcards: PREDICTIONS[wildcards.name]["fasta"],
        batch_size=config["predict_settings"]["batch_size"],
        window=lambda wildcards: optional_flag(
            "--window-bp", PREDICTIONS[wildcards.name].get("window_bp")
        ),
        overlap=lambda wildcards: optional_flag(
            "--overlap-bp", PREDICTIONS[wildcards.name].get("overlap_bp")
        ),
        max_n=lambda wildcards: optional_flag(
            "--max-n-fraction", PREDICTIONS[wildcards.name].get("max_n_fraction")
        ),
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
        "bigbird-genomics predict --checkpoint {input.checkpoint} --fasta {params.fasta:q}"
        " --out {output.tsv} --bedgraph {output.bedgraph} {params.window} {params.overlap} {params.max_n}"
        " --batch-size {params.batch_size} --device {params.device} > {log} 2>&1"
