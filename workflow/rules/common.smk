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
# The training configs, where the workflow looks up the names it passes to the package
# (`hydra_task`, `tokenizer`): BIGBIRD_GENOMICS_CONF as bigbird-genomics-train reads it, else the
# repository's conf/ (a link to the packaged configs).
CONF_DIR = Path(os.environ.get("BIGBIRD_GENOMICS_CONF", Path(workflow.basedir) / "conf"))


def scatter_of(name):
    """How many `predict --shard I/N` jobs score prediction `name` (1: one predict job)."""
    return int(PREDICTIONS[name].get("scatter", 1))


SCATTERED = [name for name in PREDICTIONS if scatter_of(name) > 1]
UNSCATTERED = [name for name in PREDICTIONS if scatter_of(name) == 1]


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
    for task, entry in TASKS.items():
        hydra_task = entry.get("hydra_task", task)
        if not (CONF_DIR / "task" / f"{hydra_task}.yaml").is_file():
            problems.append(
                f"tasks.{task}.hydra_task is {hydra_task!r}, not one of "
                f"{conf_options('task')} ({CONF_DIR}/task/<name>.yaml)"
            )
        tokenizer = tokenize_setting(task, "tokenizer")
        if not (CONF_DIR / "tokenizer" / f"{tokenizer}.yaml").is_file():
            problems.append(
                f"tasks.{task}: tokenizer {tokenizer!r} is not one of {conf_options('tokenizer')}"
                f" ({CONF_DIR}/tokenizer/<name>.yaml)"
            )
        overridden = {item.split("=", 1)[0].lstrip("+~") for item in entry.get("overrides", [])}
        if "tokenizer" in overridden:
            problems.append(
                f"tasks.{task}.overrides sets the tokenizer; set tasks.{task}.tokenize.tokenizer "
                "instead, which both tokenize and train use"
            )
    return problems


def conf_options(group):
    return ", ".join(sorted(path.stem for path in (CONF_DIR / group).glob("*.yaml"))) or "none"


def missing_input_problems():
    """The user's input files that do not exist. Files that rules make (the demo data, build
    outputs) are not there at planning time and are not reported."""
    named = [
        *(
            (f"tasks.{task}.{key}", entry.get(key))
            for task, entry in TASKS.items()
            for key in ("fasta", "labels", "label_groups")
        ),
        *(
            (f"predict.{name}.{key}", entry.get(key))
            for name, entry in PREDICTIONS.items()
            for key in ("fasta", "motifs")
        ),
        *(
            (f"build.{name}.inputs", path)
            for name, entry in BUILD.items()
            for path in entry.get("inputs", [])
        ),
    ]
    return [
        f"{key}: {path}: no such file"
        for key, path in named
        if path and not user_input(path)
    ]


def check_config():
    problems = config_reference_problems() + missing_input_problems()
    if problems:
        raise WorkflowError(
            "invalid workflow config: " + "; ".join(problems)
            + " (fix config/config.yaml or your --configfile; see docs/workflow.md)"
        )


wildcard_constraints:
    task="|".join(TASKS) or "NO_TASKS",
    name="|".join(PREDICTIONS) or "NO_PREDICTIONS",
    shard=r"\d+",
    setting="|".join(SWEEP_SETTINGS) or "NO_SETTINGS",
    kind="tasks|predict",
    dataset="|".join([*TASKS, *PREDICTIONS]),


def build_outputs(entry):
    """The output a `build:` entry declares (the FASTA it writes, or for build-chromatin the
    folder it fills (which files depend on the builder's arguments, and only its CLI reads
    those; the workflow knows the package through its CLI alone))."""
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
    """A tokenizer setting: the task's own `tokenize:` entry, else the workflow default.
    `tokenizer` names a Hydra tokenizer option (conf/tokenizer/<name>.yaml): tokenize reads k and
    stride from it, and train selects it, so the data set and the model agree by construction."""
    return (TASKS[task].get("tokenize") or {}).get(key, config["tokenize"][key])


def task_seeds(task):
    """The task's training seeds (`seeds:`); empty: one run with the training config's seed."""
    return list(TASKS[task].get("seeds") or [])


def hydra_overrides(task, seed=None):
    """The Hydra overrides of one training run: the task's tokenizer, the task's own list, the
    global extras, then its seed (`seed`, else the task's first seed, if it lists any)."""
    seeds = task_seeds(task)
    seed = seeds[0] if seed is None and seeds else seed
    return quoted(
        [
            f"tokenizer={tokenize_setting(task, 'tokenizer')}",
            *TASKS[task].get("overrides", []),
            *config.get("train_overrides", []),
            *([f"seed={seed}"] if seed is not None else []),
        ]
    )


def run_dir(task):
    return f"{RESULTS}/runs/{task}"


def seed_run_dir(task, seed):
    """The run of a task's further seed (its first seed trains in run_dir(task))."""
    return f"{RESULTS}/runs/{task}.seed{seed}"


def task_checkpoints(task):
    """The checkpoints that score for `task`: its run's best, then each further seed's. With
    several, evaluate and predict score their ensemble (probabilities averaged)."""
    return [f"{run_dir(task)}/checkpoints/best.ckpt"] + [
        f"{seed_run_dir(task, seed)}/checkpoints/best.ckpt" for seed in task_seeds(task)[1:]
    ]


def checkpoint_flags(paths):
    """`--checkpoint P` once per checkpoint (the scoring commands take it repeated)."""
    return " ".join(f"--checkpoint {shlex.quote(str(path))}" for path in paths)


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
        inputs["sweep_plot"] = f"{RESULTS}/sweep/summary.png"
    # variant_effect / ism come from downstream.smk, included after this file
    for key, section, path in (
        ("variant_effects", "variant_effect", f"{RESULTS}/variant_effect/{{}}.tsv"),
        ("ism", "ism", f"{RESULTS}/ism/{{}}"),
    ):
        if config.get(section):  # the report shows the first entry
            inputs[key] = path.format(next(iter(config[section])))
    return inputs


def prediction_shards(name):
    """The `predict --shard I/N` outputs that `gather_predictions` joins for `name`."""
    shards = range(scatter_of(name))
    return {
        "tsvs": [f"{RESULTS}/predict/shards/{name}/{index}.tsv" for index in shards],
        "bedgraphs": [f"{RESULTS}/predict/shards/{name}/{index}.bedGraph" for index in shards],
    }


def predict_params(name):
    """The predict options an entry sets (0 included: `overlap_bp: 0` is a setting)."""
    entry = PREDICTIONS[name]
    return " ".join(
        flag
        for flag in (
            optional_flag("--window-bp", entry.get("window_bp")),
            optional_flag("--overlap-bp", entry.get("overlap_bp")),
            optional_flag("--max-n-fraction", entry.get("max_n_fraction")),
        )
        if flag
    )


def predict_checkpoint(wildcards):
    return task_checkpoints(PREDICTIONS[wildcards.name]["model"])


def all_targets():
    targets = [f"{RESULTS}/report/summary.html"]
    targets += expand(f"{RESULTS}/evaluate/{{task}}/metrics.json", task=TASKS)
    targets += expand(f"{RESULTS}/predict/{{name}}.tsv", name=PREDICTIONS)
    targets += expand(f"{RESULTS}/predict/{{name}}.bigwig", name=PREDICTIONS)
    if SWEEP_SETTINGS:
        targets.append(f"{RESULTS}/sweep/summary.tsv")
    targets += [f"{RESULTS}/variant_effect/{entry}.tsv" for entry in config.get("variant_effect") or {}]
    targets += [f"{RESULTS}/ism/{entry}" for entry in config.get("ism") or {}]
    return targets


check_config()
