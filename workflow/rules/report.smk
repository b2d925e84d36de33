# The run's summary: metrics of every model (per profile group too), the training plots, the
# prediction track along the long record, the sweep. summary.html embeds its pictures.


rule report:
    input:
        unpack(report_inputs),
    output:
        html=report(
            f"{RESULTS}/report/summary.html",
            caption="../report/summary.rst",
            category="Summary",
            labels={"figure": "metrics summary"},
        ),
        markdown=f"{RESULTS}/report/summary.md",
        track=report(
            f"{RESULTS}/report/track.png",
            caption="../report/track.rst",
            category="Prediction",
            labels={"figure": "prediction track"},
        ),
    params:
        out_dir=subpath(output.markdown, parent=True),
        runs=lambda wildcards, input: quoted(Path(path).parent for path in input.runs),
        motifs=lambda wildcards, input: optional_flag("--motifs", input.get("motifs")),
        sweep=lambda wildcards, input: optional_flag("--sweep", input.get("sweep")),
        sweep_plot=lambda wildcards, input: optional_flag("--sweep-plot", input.get("sweep_plot")),
        record=optional_flag("--record", config["report"].get("record")),
        downstream=lambda wildcards, input: " ".join(
            [optional_flag("--ism-png", input.get("ism")),
             optional_flag("--variant-effects", input.get("variant_effects"))]
        ),
    log:
        f"{RESULTS}/logs/report.log",
    benchmark:
        f"{RESULTS}/benchmarks/report.tsv"
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        "../envs/bigbird.yaml"
    shell:
        "bigbird-genomics report --runs {params.runs} --evaluations {input.evaluations}"
        " --predictions {input.predictions} --track {input.track} {params.motifs} {params.record}"
        " {params.sweep} {params.sweep_plot} {params.downstream} --out-dir {params.out_dir} > {log} 2>&1"
