# bigbird-genomics workflow: demo data (or your data) -> validate -> tokenize -> train -> evaluate
# -> predict -> report, plus a sparsity sweep. Every rule calls the package's own CLI.
# Run: `snakemake --cores all`; your data: see docs/workflow.md; cluster: profiles/slurm.

from snakemake.utils import min_version

min_version("8.10")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/predict.smk"
include: "workflow/rules/downstream.smk"
include: "workflow/rules/sweep.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        all_targets(),
    default_target: True


onsuccess:
    # the last line a user sees: where to look (only when the report exists, e.g. not for a
    # run that asked for one file)
    if Path(f"{RESULTS}/report/summary.html").is_file():
        print(
            f"Report: {RESULTS}/report/summary.html (pictures embedded; markdown beside it: "
            f"summary.md). The Snakemake report of every rule: snakemake --report report.html"
        )
