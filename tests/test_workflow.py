"""The Snakemake workflow (lint, dry run, config errors, ingestion errors, the demo end to end)
and the report it ends with. Workflow runs happen in a temporary copy of the repository."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from bigbird_genomics.reporting.report import (
    Site,
    Track,
    read_sites,
    read_track,
    site_enrichment,
    write_report,
)

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
WORKFLOW_FILES = ("Snakefile", "workflow", "config", "conf", "profiles")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A copy of the workflow part of the repository (the package itself is installed)."""
    for name in WORKFLOW_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name)
        else:
            shutil.copy2(source, tmp_path / name)
    return tmp_path


def snakemake(workdir: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, WANDB_MODE="offline", BIGBIRD_GENOMICS_CONF=str(workdir / "conf"))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(
        [*SNAKEMAKE, *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write_config(workdir: Path, change) -> Path:
    config = yaml.safe_load((workdir / "config" / "config.yaml").read_text())
    change(config)
    path = workdir / "config" / "changed.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


# --- the workflow -----------------------------------------------------------------------------


def test_dry_run_plans_the_whole_demo_dag(workdir: Path) -> None:
    result = snakemake(workdir, "-n", "--cores", "1")
    assert result.returncode == 0, result.stderr
    out = result.stdout + result.stderr
    for rule in (
        "demo_data",
        "validate",
        "tokenize",
        "train",
        "evaluate",
        "predict",
        "train_sweep",
        "sweep_summary",
        "report",
    ):
        assert f"rule {rule}:" in out, f"rule {rule} missing from the demo DAG"


def test_zero_valued_predict_settings_reach_the_command(workdir: Path) -> None:
    """`overlap_bp: 0` and `max_n_fraction: 0` are settings, not "unset"."""

    def change(config: dict) -> None:
        config["predict"]["chromosome"].update(overlap_bp=0, max_n_fraction=0)
        config["report"]["track"] = "heldout_promoter"  # a track without motifs: no flag

    config = write_config(workdir, change)
    result = snakemake(workdir, "-n", "-p", "--cores", "1", "--configfile", str(config))
    assert result.returncode == 0, result.stderr
    out = result.stdout + result.stderr
    assert "--overlap-bp 0 --max-n-fraction 0" in out
    assert "bigbird-genomics report" in out and "--motifs" not in out


def test_build_entries_run_the_builders_before_validation(workdir: Path) -> None:
    """`build:` runs bigbird-genomics builders; tasks that name their outputs depend on them."""
    rng = np.random.default_rng(0)
    for name in ("tata", "oct4", "mafk"):
        records = ("".join(rng.choice(list("ACGT"), 300)) for _ in range(30))
        text = "".join(f">{name}{i}\n{seq}\n" for i, seq in enumerate(records))
        (workdir / f"{name}.fa").write_text(text)

    def use_builders(config: dict) -> None:
        config["build"] = {
            "tata": {
                "command": "build-promoters",
                "args": ["--positives", "tata.fa", "--negatives", "dinucleotide"],
                "out": "built/tata.fa",
                "inputs": ["tata.fa"],
            },
            "oct4_vs_mafk": {
                "command": "build-chromatin",
                "args": ["--positive-fasta=oct4.fa", "--negative-fasta", "mafk.fa"],
                "out": "./built/oct4_vs_mafk/",
                "inputs": ["oct4.fa", "mafk.fa"],
            },
        }
        config["tasks"]["promoter"]["fasta"] = "built/tata.fa"
        config["tasks"]["chromatin"] = {
            "fasta": "built/oct4_vs_mafk/chromatin.fa",
            "hydra_task": "promoter",
        }

    config = str(write_config(workdir, use_builders))
    targets = [f"results/validate/tasks/{task}.json" for task in ("promoter", "chromatin")]
    result = snakemake(workdir, *targets, "--cores", "1", "--configfile", config)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout + result.stderr
    assert "rule build_tata:" in out and "rule build_oct4_vs_mafk:" in out
    promoter = json.loads((workdir / targets[0]).read_text())
    chromatin = json.loads((workdir / targets[1]).read_text())
    assert promoter and chromatin  # validate read what the builders wrote
    assert (workdir / "built/tata.fa").read_text().count(">") == 60  # one negative per positive


def test_lint_is_clean(workdir: Path) -> None:
    result = snakemake(workdir, "--lint")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations" in result.stdout + result.stderr


def test_slurm_profile_gives_training_a_gpu(workdir: Path) -> None:
    result = snakemake(workdir, "-n", "--profile", "profiles/slurm")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout + result.stderr
    train_jobs = [block for block in out.split("rule ")[1:] if block.startswith("train:")]
    assert train_jobs and all("slurm_partition=gpu" in b and "gpu=1" in b for b in train_jobs)
    assert "trainer=gpu" in out and "--device cuda" in out


def test_slurm_profile_scatters_a_genome_over_predict_jobs(workdir: Path) -> None:
    """`scatter: 3`: three `predict --shard I/3` jobs (GPU nodes under SLURM), one gather."""

    def scatter(config: dict) -> None:
        config["predict"]["chromosome"]["scatter"] = 3

    config = str(write_config(workdir, scatter))
    result = snakemake(workdir, "-n", "-p", "--profile", "profiles/slurm", "--configfile", config)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout + result.stderr
    shard_jobs = [block for block in out.split("rule ")[1:] if block.startswith("predict_shard:")]
    assert len(shard_jobs) == 3
    assert all("slurm_partition=gpu" in job and "gpu=1" in job for job in shard_jobs)
    for index in range(3):
        assert f"--shard {index}/3" in out
    gather = [block for block in out.split("rule ")[1:] if block.startswith("gather_predictions:")]
    assert len(gather) == 1 and "slurm_partition=cpu" in gather[0]
    assert "gather-predictions --tsv results/predict/shards/chromosome/0.tsv" in out
    assert "--bigwig results/predict/chromosome.bigwig/chromosome" in out
    # the entries without scatter keep one predict job each
    assert sum(block.startswith("predict:") for block in out.split("rule ")[1:]) == 2


def test_tokenizer_comes_from_one_hydra_option(workdir: Path) -> None:
    """tokenize gets --tokenizer NAME and training tokenizer=NAME: one setting, no k/stride."""

    def kmer3(config: dict) -> None:
        config["tasks"]["chromatin"]["tokenize"] = {"tokenizer": "kmer3"}

    result = snakemake(
        workdir, "-n", "-p", "--cores", "1", "--configfile", str(write_config(workdir, kmer3))
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout + result.stderr
    assert "--tokenizer kmer6 --max-tokens 319" in out and "--tokenizer kmer3" in out
    assert "task=promoter data.dataset=results/datasets/promoter" in out
    assert "tokenizer=kmer6 experiment=promoter_demo" in out
    assert "tokenizer=kmer3 experiment=chromatin_demo" in out
    assert "--k " not in out and "--stride" not in out


def test_seeds_train_each_seed_and_score_their_ensemble(workdir: Path) -> None:
    """`seeds: [3, 4, 5]`: the first seed in runs/<task>, the others in runs/<task>.seed<N>
    (fine-tuned from the same encoder for a pretrained task, from scratch otherwise); evaluate
    and predict get every checkpoint, the downstream verbs the first."""

    def seeds(config: dict) -> None:
        config["tasks"]["promoter"]["seeds"] = [3, 4, 5]  # pretrained: true in the demo
        config["tasks"]["chromatin"]["seeds"] = [0, 1]

    config = write_config(workdir, seeds)
    result = snakemake(workdir, "-n", "-p", "--cores", "1", "--configfile", str(config))
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout + result.stderr
    runs = "results/runs"
    promoter = [f"{runs}/promoter/checkpoints/best.ckpt"] + [
        f"{runs}/promoter.seed{seed}/checkpoints/best.ckpt" for seed in (4, 5)
    ]
    flags = " ".join(f"--checkpoint {path}" for path in promoter)
    assert f"bigbird-genomics evaluate {flags} --data results/datasets/promoter" in out
    assert f"bigbird-genomics predict {flags} --fasta" in out
    assert f"variant-effect --checkpoint {promoter[0]} " in out
    for seed in (3, 4, 5):
        hydra_dir = f"{runs}/promoter" + (f".seed{seed}" if seed != 3 else "")
        assert f"seed={seed} model=tiny model.init_from=" in out  # fine-tuned, seed last
        assert f"hydra.run.dir={hydra_dir} " in out
    assert out.count("rule finetune_seed:") == 2 and out.count("rule train_seed:") == 1
    assert f"--checkpoint {runs}/chromatin.seed1/checkpoints/best.ckpt" in out


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda c: c["tasks"]["promoter"].update(fasta="data/missing.fa"),
            "tasks.promoter.fasta: data/missing.fa: no such file",
        ),
        (
            lambda c: c["tasks"]["chromatin"].update(labels="data/labels.tsv"),
            "tasks.chromatin.labels: data/labels.tsv: no such file",
        ),
        (
            lambda c: c["predict"]["chromosome"].update(fasta="genome.fa.gz"),
            "predict.chromosome.fasta: genome.fa.gz: no such file",
        ),
        (
            lambda c: c["tasks"]["promoter"].update(hydra_task="enhancer"),
            "tasks.promoter.hydra_task is 'enhancer', not one of chromatin, mlm, promoter",
        ),
        (
            lambda c: c["tokenize"].update(tokenizer="kmer5"),
            "tokenizer 'kmer5' is not one of kmer1, kmer3, kmer6, kmer6_nonoverlap",
        ),
        (
            lambda c: c["tasks"]["promoter"]["overrides"].append("tokenizer=kmer3"),
            "tasks.promoter.overrides sets the tokenizer",
        ),
    ],
)
def test_dry_run_refuses_missing_inputs_and_unknown_options(
    workdir: Path, change, message: str
) -> None:
    result = snakemake(workdir, "-n", "--configfile", str(write_config(workdir, change)))
    assert result.returncode != 0
    out = result.stdout + result.stderr
    assert "invalid workflow config" in out and message in out, out[-2000:]


def test_dry_run_accepts_files_that_rules_make(workdir: Path) -> None:
    """Demo data and build outputs do not exist before the run: they are not missing inputs."""
    assert not (workdir / "results").exists()

    def built(config: dict) -> None:
        (workdir / "tata.fa").write_text(">a\nACGT\n")
        config["build"] = {
            "tata": {"command": "build-promoters", "args": ["--positives", "tata.fa"],
                     "out": "built/tata.fa", "inputs": ["tata.fa"]},
        }  # fmt: skip
        config["tasks"]["promoter"]["fasta"] = "built/tata.fa"

    result = snakemake(workdir, "-n", "--configfile", str(write_config(workdir, built)))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


@pytest.mark.parametrize(
    "change",
    [
        lambda c: c.update(reslts="out"),
        lambda c: c["predict"]["chromosome"].update(scater=3),
        lambda c: c["compute"].update(gpus=1),
        lambda c: c["report"].update(trak="x"),
        lambda c: c["tokenize"].update(k=6),
    ],
)
def test_schema_rejects_unknown_keys_everywhere(workdir: Path, change) -> None:
    result = snakemake(workdir, "-n", "--configfile", str(write_config(workdir, change)))
    assert result.returncode != 0
    assert "Additional properties are not allowed" in result.stdout + result.stderr


def test_config_cross_references_are_checked(workdir: Path) -> None:
    def break_reference(config: dict) -> None:
        config["predict"]["chromosome"]["model"] = "enhancer"

    result = snakemake(workdir, "-n", "--configfile", str(write_config(workdir, break_reference)))
    assert result.returncode != 0
    assert "predict.chromosome.model is 'enhancer'" in result.stdout + result.stderr


def test_schema_rejects_unknown_keys(workdir: Path) -> None:
    def typo(config: dict) -> None:
        config["tasks"]["promoter"]["fastq"] = "reads.fq"

    result = snakemake(workdir, "-n", "--configfile", str(write_config(workdir, typo)))
    assert result.returncode != 0
    assert "fastq" in result.stdout + result.stderr


@pytest.mark.slow
def test_missing_or_malformed_input_fails_with_the_package_message(workdir: Path) -> None:
    """A missing file stops the plan; a malformed one fails in validate, the first rule that
    reads it, with the ingestion message (file, record, line), not in tokenize."""
    (workdir / "bad.fa").write_text(">rec1\nACGT\nACGT\n>rec2\nACGT!!\n")

    def missing(config: dict) -> None:
        config["tasks"]["promoter"]["fasta"] = "missing.fa"

    result = snakemake(workdir, "--cores", "1", "--configfile", str(write_config(workdir, missing)))
    assert result.returncode != 0
    assert "tasks.promoter.fasta: missing.fa: no such file" in result.stdout + result.stderr
    assert not (workdir / "results").exists()  # refused before any job ran

    def malformed(config: dict) -> None:
        config["tasks"]["chromatin"].update(fasta="bad.fa", labels="", label_groups="")

    configfile = str(write_config(workdir, malformed))
    result = snakemake(
        workdir, "results/datasets/chromatin", "--cores", "1", "--configfile", configfile
    )
    assert result.returncode != 0
    out = result.stdout + result.stderr
    assert "Error in rule validate" in out and "Error in rule tokenize" not in out
    assert "bad.fa" in out and "line 5" in out  # the failed log is shown (default profile)
    malformed_log = (workdir / "results/logs/validate/tasks/chromatin.log").read_text()
    assert "bad.fa" in malformed_log and "line 5" in malformed_log
    assert not (workdir / "results/demo").exists()  # user data: the demo is never generated


@pytest.mark.slow
def test_demo_workflow_end_to_end(workdir: Path) -> None:
    started = time.perf_counter()
    result = snakemake(workdir, "--cores", "2", timeout=1500)
    elapsed = time.perf_counter() - started
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    results = workdir / "results"
    for path in (
        "report/summary.html",
        "report/summary.md",
        "report/track.png",
        "sweep/summary.tsv",
        "sweep/summary.png",
        "runs/promoter/plots/loss.png",
        "runs/chromatin/plots/attention_layout.png",
        "evaluate/chromatin/roc.png",
        "predict/chromosome.bedGraph",
    ):
        assert (results / path).is_file(), path
    evaluation = json.loads((results / "evaluate/promoter/metrics.json").read_text())
    assert evaluation["test"]["num_examples"] > 0
    heldout = (results / "predict/heldout_promoter.tsv").read_text().splitlines()
    assert len(heldout) == 1 + 200 and heldout[0].startswith("id\tlength\tnum_windows")
    chromosome = (results / "predict/chromosome.tsv").read_text().splitlines()
    assert chromosome[1].split("\t")[0] == "chrDemo" and int(chromosome[1].split("\t")[2]) > 100
    summary = (results / "report/summary.md").read_text()
    assert "Prediction track along chrDemo" in summary and "Sparsity sweep" in summary
    # Everything is tracked: nothing left to do, and the Snakemake report builds.
    again = snakemake(workdir, "-n", "--cores", "1")
    assert "Nothing to be done" in again.stdout + again.stderr
    built = snakemake(workdir, "--report", "report.html", timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]
    assert (workdir / "report.html").stat().st_size > 10_000
    print(f"demo workflow on 2 cores: {elapsed:.0f} s")


# --- the report command -----------------------------------------------------------------------


@pytest.fixture
def scan(tmp_path: Path) -> tuple[Path, Path]:
    """A two-record bedGraph (two label tracks) and a BED of known sites on the longer one."""
    lines = ['track type=bedGraph name="promoter"']
    lines += [
        f"chrL\t{s}\t{s + 100}\t{0.9 if s in (300, 700) else 0.1}" for s in range(0, 1000, 100)
    ]
    lines += ["chrS\t0\t50\t0.7", 'track type=bedGraph name="other"']
    lines += [f"chrL\t{s}\t{s + 100}\t0.2" for s in range(0, 1000, 100)]
    lines += ["chrS\t0\t50\t0.3"]
    bedgraph = tmp_path / "scan.bedGraph"
    bedgraph.write_text("\n".join(lines) + "\n")
    bed = tmp_path / "sites.bed"
    bed.write_text(
        "chrL\t320\t360\tsite_a\t0\t+\nchrL\t550\t580\tsite_b\t0\t-\nchrS\t1\t9\tx\t0\t+\n"
    )
    return bedgraph, bed


def test_read_track_picks_the_longest_record(scan: tuple[Path, Path]) -> None:
    track = read_track(scan[0])
    assert track.record_id == "chrL" and track.length == 1000
    assert list(track.values) == ["promoter", "other"]
    assert track.values["promoter"][3] == pytest.approx(0.9)
    assert read_track(scan[0], record="chrS").length == 50


def test_site_enrichment_counts_found_sites(scan: tuple[Path, Path]) -> None:
    track = read_track(scan[0])
    sites = read_sites(scan[1], "chrL")
    assert [site.name for site in sites] == ["site_a", "site_b"]
    stats = site_enrichment(track, sites, "promoter")
    assert stats["sites_found"] == 1  # site_a lies in the 0.9 window, site_b in a 0.1 one
    assert stats["mean_at_sites"] == pytest.approx((0.9 + 0.1) / 2)
    assert stats["mean_elsewhere"] == pytest.approx((0.9 + 0.1 * 7) / 8)
    assert stats["fraction_of_record_above_threshold"] == pytest.approx(0.2)


def test_site_enrichment_without_sites() -> None:
    track = Track("r", np.array([0]), np.array([10]), {"a": np.array([0.6])})
    stats = site_enrichment(track, [], "a")
    assert stats["sites_found"] == 0 and np.isnan(stats["mean_at_sites"])
    assert site_enrichment(track, [Site(2, 4, "s")], "a")["sites_found"] == 1


def test_write_report(tmp_path: Path, scan: tuple[Path, Path]) -> None:
    run = tmp_path / "runs" / "promoter"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(
        json.dumps(
            {
                "task": "promoter",
                "epochs": 3,
                "test": {"auroc": 0.975, "per_label": {"x": 1}},
                "val": {"loss": 0.2},
            }
        )
    )
    evaluation = tmp_path / "evaluate" / "promoter" / "metrics.json"
    evaluation.parent.mkdir(parents=True)
    evaluation.write_text(json.dumps({"test": {"auroc": 0.97, "num_examples": 200}}))
    predictions = tmp_path / "heldout.tsv"
    predictions.write_text(
        "id\tlength\tnum_windows\tlabel_max\tlabel_mean\n"
        "a\t300\t1\t0.9\t0.9\nb\t300\t1\t0.2\t0.2\nc\t300\t1\tnan\tnan\n"
    )
    sweep = tmp_path / "sweep.tsv"
    sweep.write_text("run\ttest/auroc\nbigbird\t0.97\nfull\t0.98\n")
    written = write_report(
        tmp_path / "report",
        runs=[run],
        evaluations=[evaluation],
        predictions=[predictions],
        track=scan[0],
        motifs=scan[1],
        sweep=sweep,
    )
    assert written["track"].stat().st_size > 5000
    markdown = written["markdown"].read_text()
    assert "| promoter | test | 0.975 | 0.2 | 3 |" in markdown  # split, AUROC, val loss, epochs
    assert "| heldout | 3 | label | 1 | a (0.900), b (0.200), c (nan) |" in markdown
    assert "| promoter | 1/2 |" in markdown
    assert "| full | 0.98 |" in markdown
    html = written["html"].read_text()
    assert "<img src='data:image/png;base64," in html and "<td>0.975</td>" in html


def test_report_errors_name_the_file(tmp_path: Path) -> None:
    from bigbird_genomics.errors import UserError

    bad = tmp_path / "bad.bedGraph"
    bad.write_text("chr1\t0\t10\n")
    with pytest.raises(UserError, match="bad.bedGraph: line 1"):
        read_track(bad)
    sites = tmp_path / "sites.bed"
    sites.write_text("chr1\tten\t20\n")
    with pytest.raises(UserError, match=r"sites.bed: line 1: start .ten. and end .20. must be"):
        read_sites(sites, "chr1")
    with pytest.raises(UserError, match="nothing to report"):
        write_report(tmp_path / "out")
