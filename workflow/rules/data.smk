# Data: the embedded demo set, FASTA validation (the first rule to read any input), tokenization.


rule demo_data:
    output:
        **{key: f"{DEMO_DIR}/{filename}" for key, filename in DEMO_FILES.items()},
    params:
        out_dir=subpath(output.promoter, parent=True),
        seed=config["demo"]["seed"],
    log:
        f"{RESULTS}/logs/demo_data.log",
    benchmark:
        f"{RESULTS}/benchmarks/demo_data.tsv"
    threads: 1
    resources:
        mem_mb=1000,
    conda:
        "../envs/bigbird.yaml"
    shell:
        "bigbird-genomics demo-data --out {params.out_dir} --seed {params.seed} > {log} 2>&1"


# One rule per `build:` entry (their outputs differ in shape, so no single wildcard rule fits).
for _name, _entry in BUILD.items():

    rule:
        name:
            f"build_{_name}"
        input:
            [path for path in _entry.get("inputs", []) for path in user_input(path)],
        output:
            build_outputs(_entry),
        params:
            command=_entry["command"],
            args=shlex.join(_entry["args"]),
            out=_entry["out"],
        log:
            f"{RESULTS}/logs/build/{_name}.log",
        benchmark:
            f"{RESULTS}/benchmarks/build/{_name}.tsv"
        threads: 1
        resources:
            mem_mb=4000,
        conda:
            "../envs/bigbird.yaml"
        shell:
            "bigbird-genomics {params.command} {params.args} --out {params.out:q} > {log} 2>&1"


rule validate:
    # Reads each FASTA first, so a missing or malformed file fails here with the ingestion message.
    input:
        lambda wildcards: user_input(fasta_of(wildcards.kind, wildcards.dataset)),
    output:
        summary=f"{RESULTS}/validate/{{kind}}/{{dataset}}.json",
    params:
        fasta=lambda wildcards: fasta_of(wildcards.kind, wildcards.dataset),
    log:
        f"{RESULTS}/logs/validate/{{kind}}/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/validate/{{kind}}/{{dataset}}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        "../envs/bigbird.yaml"
    shell:
        "bigbird-genomics validate {params.fasta:q} --json {output.summary} > {log} 2>&1"


rule tokenize:
    input:
        summary=f"{RESULTS}/validate/tasks/{{task}}.json",
        fasta=lambda wildcards: user_input(TASKS[wildcards.task]["fasta"]),
        labels=lambda wildcards: user_input(TASKS[wildcards.task].get("labels")),
        label_groups=lambda wildcards: user_input(TASKS[wildcards.task].get("label_groups")),
    output:
        dataset=directory(f"{RESULTS}/datasets/{{task}}"),
    params:
        fasta=lambda wildcards: TASKS[wildcards.task]["fasta"],
        labels=lambda wildcards: optional_flag("--labels", TASKS[wildcards.task].get("labels")),
        label_groups=lambda wildcards: optional_flag(
            "--label-groups", TASKS[wildcards.task].get("label_groups")
        ),
        tokenizer=lambda wildcards: tokenize_setting(wildcards.task, "tokenizer"),
        max_tokens=lambda wildcards: tokenize_setting(wildcards.task, "max_tokens"),
        overlap_bp=lambda wildcards: tokenize_setting(wildcards.task, "overlap_bp"),
    log:
        f"{RESULTS}/logs/tokenize/{{task}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/tokenize/{{task}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
    conda:
        "../envs/bigbird.yaml"
    shell:
        "bigbird-genomics tokenize --fasta {params.fasta:q} {params.labels} {params.label_groups}"
        " --tokenizer {params.tokenizer} --max-tokens {params.max_tokens}"
        " --overlap-bp {params.overlap_bp} --out {output.dataset} > {log} 2>&1"
