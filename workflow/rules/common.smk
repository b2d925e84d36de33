# Shared helpers: config validation, output layout, and how rule inputs are named.
# Only plumbing lives here; every piece of work is a `bigbird-genomics` command in a rule.

import os
import shlex
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate


validate(config, "../schemas/config.schema.yaml")

RESULTS = config["results"].rstrip("/")
DEMO_DIR = f"{RESULTS}/demo"
# What `bigbird-genomics demo-data` writes (demo.write_demo_data).
DEMO_FILES = {
    "promoter": "promoter.fa",
    "chromatin": "chromatin.fa",
    "chromatin_labels": "chromatin_labels.tsv",
    "chromatin_profiles": "chromatin_profiles.tsv",
    "heldout": "heldout.fa",
    "heldout_truth": "heldout_truth.tsv",
    "chromosome": "chromosome.fa",
    "chromosome_motifs": "chromosome_motifs.bed",
    "heldout_motifs": "heldout_motifs.bed",
    "chromosome_elements": "chromosome_elements.bed",
    "variants": "variants.vcf",
}
BUILD = config.get("build") or {}
TASKS = config["tasks"]
PREDICTIONS = config["predict"]
SWEEP = config.get("sweep") or {}
SWEEP_SETTINGS = (SWEEP.get("settings") or {}) if SWEEP.get("enabled", True) else {}
COMPUTE = config["compute"]


def config_reference_problems():
    """Cross-references the JSON schema cannot express: names that must be keys elsewhere."""
    problems = [
        f"predict.{name}.model is {entry['model']!r}, not one of tasks: {', '.join(TASKS)}"
        for name, entry in PREDICTIONS.items()
        if entry["model"] not in TASKS
    ]
    if SWEEP_SETTINGS and SWEEP.get("task") not in TASKS:
        problems.append(f"sweep.task is {SWEEP.get('task')!r}, not one of tasks: {', '.join(TASKS)}")
    if config["report"]["track"] not in PREDICTIONS:
        problems.append(
            f"report.track is {config['report']['track']!r}, not one of predict: "
            f"{', '.join(PREDICTIONS)}"
        )
    return problems


if config_reference_problems():
    raise WorkflowError(
        "invalid workflow config: " + "; ".join(config_reference_problems())
        + " (fix config/config.yaml or your --configfile; see docs/workflow.md)"
    )


wildcard_constraints:
    task="|".join(TASKS) or "NO_TASKS",
    name="|".join(PREDICTIONS) or "NO_PREDICTIONS",
    setting="|".join(SWEEP_SETTINGS) or "NO_SETTINGS",
    kind="tasks|predict",
    dataset="|".join([*TASKS, *PREDICTIONS]),


def build_outputs(entry):
    """What a `build:` entry's rule declares: the FASTA it writes, or for build-chromatin the
    folder it fills (which files depend on the builder's arguments, and only its CLI reads
    those; the workflow knows the package through its CLI alone)."""
    out = os.path.normpath(entry["out"])
    return directory(out) if entry["command"] == "build-chromatin" else out


BUILT = {os.path.normpath(entry["out"]): entry["command"] for entry in BUILD.values()}


def built_by_rule(path):
    """The build rule output that makes `path` (a FASTA, or a folder holding it), else None."""
    path = os.path.normpath(path)
    for out, command in BUILT.items():
        if path == out or (command == "build-chromatin" and path.startswith(out + os.sep)):
            return out
    return None


def user_input(path):
    """`path` as a rule input if it exists or a rule makes it (demo, builders), else nothing.

    A missing file of the user's is deliberately left out of `input:`: the rule that reads it
    still runs, and the package CLI fails with its ingestion message (file, what to do) rather
    than Snakemake's generic "missing input files".
    """
    if not path:
        return []
    if built_by_rule(path):
        return [built_by_rule(path)]  # spelled as the build rule's output
    if path.startswith(f"{DEMO_DIR}/") or Path(path).exists():
        return [path]
    return []


def fasta_of(kind, name):
    return (TASKS if kind == "tasks" else PREDICTIONS)[name]["fasta"]


def quoted(values):
    """Shell-safe command-line words (Hydra overrides, paths)."""
    return " ".join(shlex.quote(str(value)) for value in values)


def optional_flag(flag, value):
    """`--flag 'value'` when a config value is set (0 included: `overlap_bp: 0`), else nothing."""
    if value is None or (not isinstance(value, (int, float)) and not value):
        return ""  # unset, "" or an empty input list (Snakemake's Namedlist)
    return f"{flag} {shlex.quote(str(value))}"


def tokenize_setting(task, key):
    """A tokenizer setting: the task's own `tokenize:` entry, else the workflow default."""
    return (TASKS[task].get("tokenize") or {}).get(key, config["tokenize"][key])


def hydra_overrides(task):
    """The Hydra overrides of one training run: the task's own list, then the global extras."""
    return quoted([*TASKS[task].get("overrides", []), *config.get("train_overrides", [])])


def run_dir(task):
    return f"{RESULTS}/runs/{task}"


def sweep_run_dir(setting):
    return f"{RESULTS}/sweep/runs/{setting}"


def report_inputs(wildcards):
    inputs = {
        "runs": expand(f"{RESULTS}/runs/{{task}}/metrics.json", task=TASKS),
        "evaluations": expand(f"{RESULTS}/evaluate/{{task}}/metrics.json", task=TASKS),
        "predictions": expand(f"{RESULTS}/predict/{{name}}.tsv", name=PREDICTIONS),
        "track": f"{RESULTS}/predict/{config['report']['track']}.bedGraph",
        "motifs": user_input(PREDICTIONS[config["report"]["track"]].get("motifs")),
    }
    if SWEEP_SETTINGS:
        inputs["sweep"] = f"{RESULTS}/sweep/summary.tsv"
    # variant_effect / ism come from downstream.smk, included after this file
    for key, section, path in (
        ("variant_effects", "variant_effect", f"{RESULTS}/variant_effect/{{}}.tsv"),
        ("ism", "ism", f"{RESULTS}/ism/{{}}"),
    ):
        if config.get(section):  # the report shows the first entry
            inputs[key] = path.format(next(iter(config[section])))
    return inputs


def all_targets():
    targets = [f"{RESULTS}/report/summary.html"]
    targets += expand(f"{RESULTS}/evaluate/{{task}}/metrics.json", task=TASKS)
    targets += expand(f"{RESULTS}/predict/{{name}}.tsv", name=PREDICTIONS)
    if SWEEP_SETTINGS:
        targets.append(f"{RESULTS}/sweep/summary.tsv")
    targets += [f"{RESULTS}/variant_effect/{entry}.tsv" for entry in config.get("variant_effect") or {}]
    targets += [f"{RESULTS}/ism/{entry}" for entry in config.get("ism") or {}]
    return targets
