# bigbird-genomics workflow: demo data (or your data) -> validate -> tokenize -> train -> evaluate
# -> predict -> report, plus a sparsity sweep. Every rule calls the package's own CLI.
# Run: `snakemake --cores all`; your data: see docs/workflow.md; cluster: workflow/profiles/slurm.

from snakemake.utils import min_version

min_version("8.10")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/predict.smk"
include: "workflow/rules/sweep.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        all_targets(),
    default_target: True
