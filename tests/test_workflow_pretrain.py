"""The workflow's pretraining stage (workflow/rules/pretrain.smk), planned with dry runs."""

from __future__ import annotations

from pathlib import Path

from test_workflow import snakemake, workdir, write_config  # noqa: F401 (workdir: a fixture)


def _pretrained_promoter(config: dict) -> None:
    config["tasks"]["promoter"]["pretrained"] = True
    config["pretrain"]["model"] = ["model=tiny", "model.hidden_size=48"]


def test_pretrained_task_fine_tunes_from_the_pretraining_run(workdir: Path) -> None:  # noqa: F811
    """The demo config pretrains for its promoter task; the chromatin task starts fresh."""
    config = write_config(workdir, _pretrained_promoter)
    result = snakemake(workdir, "-n", "-p", "--cores", "1", "--configfile", str(config))
    assert result.returncode == 0, result.stderr
    out = result.stdout + result.stderr
    assert "rule pretrain_corpus:" in out and "rule pretrain:" in out
    assert "pretrain-corpus --fasta results/demo/chromosome.fa --tokenizer kmer6" in out
    assert "--max-tokens 319 --both-strands" in out
    assert "task=mlm data.dataset=results/pretrain/corpus" in out
    # the one copy of the model settings reaches both runs, after the task's own overrides
    assert out.count("model=tiny model.hidden_size=48") == 2
    assert "experiment=promoter_demo model=tiny model.hidden_size=48 " \
        "model.init_from=results/pretrain/run/checkpoints/best.ckpt" in out
    # the other task trains from scratch
    assert "rule finetune:" in out and "task=chromatin" in out
    chromatin = [line for line in out.splitlines() if "task=chromatin" in line]
    assert chromatin and all("init_from" not in line for line in chromatin)


def test_without_pretrained_tasks_nothing_is_pretrained(workdir: Path) -> None:  # noqa: F811
    def no_pretraining(config: dict) -> None:
        for entry in config["tasks"].values():
            entry["pretrained"] = False

    config = write_config(workdir, no_pretraining)
    result = snakemake(workdir, "-n", "--cores", "1", "--configfile", str(config))
    assert result.returncode == 0, result.stderr
    out = result.stdout + result.stderr
    assert "rule pretrain" not in out and "rule finetune" not in out


def test_a_pretrained_task_with_another_tokenizer_is_refused(workdir: Path) -> None:  # noqa: F811
    def other_tokenizer(config: dict) -> None:
        _pretrained_promoter(config)
        config["tasks"]["promoter"]["tokenize"] = {"tokenizer": "kmer3"}

    result = snakemake(workdir, "-n", "--configfile", str(write_config(workdir, other_tokenizer)))
    assert result.returncode != 0
    assert (
        "tasks.promoter.tokenize.tokenizer is 'kmer3' but the pretraining corpus uses "
        "tokenize.tokenizer='kmer6'"
    ) in (result.stdout + result.stderr)
