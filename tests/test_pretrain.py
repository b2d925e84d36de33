"""Pretraining: the genome corpus (tokens/corpus.py), masked-LM metrics, resume, the CLI."""

from __future__ import annotations

import gzip
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
from training_support import training_config

from bigbird_genomics import cli
from bigbird_genomics.errors import UserError
from bigbird_genomics.io.fasta import reverse_complement
from bigbird_genomics.tokens import corpus as corpus_module
from bigbird_genomics.tokens.corpus import build_corpus, n_free_segments
from bigbird_genomics.tokens.kmers import KmerTokenizer
from bigbird_genomics.tokens.store import TokenizedDataset

K3 = KmerTokenizer(k=3)


def _genome(path: Path, seed: int = 0) -> tuple[Path, dict[str, str]]:
    """Two records: one with a long and a short N run, one too short for a window."""
    rng = np.random.default_rng(seed)

    def bases(n: int) -> str:
        return "".join(rng.choice(list("ACGT"), size=n))

    records = {
        "chr1": bases(700) + "N" * 50 + bases(300) + "N" + bases(333),
        "chr2": bases(20),
    }
    with gzip.open(path, "wt") as handle:  # the genome input is gzip, like real ones
        for name, sequence in records.items():
            handle.write(f">{name} test genome\n")
            for start in range(0, len(sequence), 60):
                handle.write(sequence[start : start + 60] + "\n")
    return path, records


def test_n_free_segments_cut_only_at_long_runs() -> None:
    sequence = np.frombuffer(b"ACGTNNNACGNACGT", dtype=np.uint8)
    assert n_free_segments(sequence, 1) == [(0, 4), (7, 10), (11, 15)]
    assert n_free_segments(sequence, 2) == [(0, 4), (7, 15)]  # the lone N stays inside
    assert n_free_segments(np.frombuffer(b"NNNN", dtype=np.uint8), 1) == []


@pytest.mark.parametrize("batch_windows", [2, 256])
def test_corpus_windows_are_the_genome_on_both_strands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch_windows: int
) -> None:
    # small batches: the windows of one segment are encoded over several spans
    monkeypatch.setattr(corpus_module, "BATCH_WINDOWS", batch_windows)
    fasta, records = _genome(tmp_path / "g.fa.gz")
    out = build_corpus([fasta], tmp_path / "corpus", K3, max_tokens=62, val_fraction=0.2, seed=3)
    data = TokenizedDataset(out)
    strands = np.load(out / "strands.npy")
    assert data.label_array is None and data.label_names == []
    assert data.meta["window_bp"] == 64 and data.meta["corpus"]["strands"] == "both"
    seen = set()
    for index in range(len(data)):
        record, start, end = data.record(index)
        window = np.frombuffer(records[record][start:end].encode(), dtype=np.uint8)
        assert b"N" not in window.tobytes()
        if strands[index]:
            window = reverse_complement(window)
        np.testing.assert_array_equal(data.tokens(index), K3.encode(window))
        seen.add((record, start, end, int(strands[index])))
    assert len(seen) == len(data)  # no window twice
    forward = {(r, s, e) for r, s, e, strand in seen if strand == 0}
    assert forward == {(r, s, e) for r, s, e, strand in seen if strand == 1}
    # chr1's three segments are tiled (last window moved back to the segment end); the
    # 20 bp chr2 is shorter than half a window and skipped
    covered = {(s, e) for r, s, e in forward}
    assert {r for r, *_ in forward} == {"chr1"}
    assert max(e for s, e in covered if e <= 700) == 700 and min(s for s, e in covered) == 0
    assert data.meta["corpus"]["kept_bp"] == 700 + 300 + 333
    assert data.meta["corpus"]["skipped_bp"] == data.meta["num_bases"] - (700 + 300 + 333)
    # a window and its reverse complement share a split
    splits = {}
    for index in range(len(data)):
        key = data.record(index)
        splits.setdefault(key, set()).add(int(data._split[index]))
    assert all(len(s) == 1 for s in splits.values())
    assert len(data.split_indices("val")) > 0 and len(data.split_indices("test")) == 0


def test_corpus_is_deterministic_and_forward_only_halves_it(tmp_path: Path) -> None:
    fasta, _ = _genome(tmp_path / "g.fa.gz")
    first = build_corpus([fasta], tmp_path / "a", K3, max_tokens=62, seed=1)
    second = build_corpus([fasta], tmp_path / "b", K3, max_tokens=62, seed=1)
    for name in ("tokens.bin", "offsets.npy", "windows.npy", "split.npy", "strands.npy"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    forward = build_corpus([fasta], tmp_path / "f", K3, max_tokens=62, both_strands=False)
    assert 2 * len(TokenizedDataset(forward)) == len(TokenizedDataset(first))
    assert not np.load(forward / "strands.npy").any()


def test_corpus_errors_name_the_problem(tmp_path: Path) -> None:
    empty = tmp_path / "n.fa"
    empty.write_text(">gap\n" + "N" * 500 + "\n")
    with pytest.raises(UserError, match=r"n\.fa: no N-free stretch of at least 32 bp"):
        build_corpus([empty], tmp_path / "c", K3, max_tokens=62)
    fasta, _ = _genome(tmp_path / "g.fa.gz")
    with pytest.raises(UserError, match="sum to less than 1"):
        build_corpus([fasta], tmp_path / "c", K3, val_fraction=0.6, test_fraction=0.5)
    assert not (tmp_path / "c").exists()


def test_cli_pretrain_corpus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fasta, _ = _genome(tmp_path / "g.fa.gz")
    out = tmp_path / "corpus"
    assert cli.main(["pretrain-corpus", "--fasta", str(fasta), "--out", str(out), "--k", "3",
                     "--max-tokens", "62", "--forward-only"]) == 0  # fmt: skip
    assert "(forward strands)" in capsys.readouterr().out
    assert TokenizedDataset(out).meta["corpus"]["strands"] == "forward"
    assert cli.main(["pretrain-corpus", "--fasta", str(tmp_path / "missing.fa"),
                     "--out", str(out)]) == 2  # fmt: skip
    assert "missing.fa: no such file" in capsys.readouterr().err


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(7)
    # a repeated 40 bp unit with mutations: learnable, so accuracy can move
    unit = "".join(rng.choice(list("ACGT"), size=40))
    sequence = "".join(
        "".join(b if rng.random() > 0.05 else rng.choice(list("ACGT")) for b in unit)
        for _ in range(150)
    )
    fasta = root / "genome.fa"
    fasta.write_text(">chrA\n" + sequence + "\n")
    return build_corpus([fasta], root / "corpus", K3, max_tokens=63, val_fraction=0.1)


def test_masked_lm_logs_bits_per_base(corpus: Path, tmp_path: Path) -> None:
    from bigbird_genomics.training.run import train

    run = tmp_path / "mlm"
    metrics = train(training_config(run, corpus, ["task=mlm", "trainer.max_epochs=1"]), run)
    val = metrics["val"]
    assert 0 <= val["accuracy"] <= 1
    assert val["bits_per_base"] == pytest.approx(val["bits_per_token"] / 3, rel=1e-5)
    # a token-weighted mean of cross-entropies near a uniform guess of 64 3-mers (6 bits)
    assert 0 < val["bits_per_token"] < 2 * math.log2(64)
    header = (run / "csv" / "metrics.csv").read_text().splitlines()[0].split(",")
    for column in ("train/bits_per_base_step", "train/accuracy_step", "val/bits_per_base"):
        assert column in header


KILLED_RUN = textwrap.dedent("""
    import json, os, signal, sys
    import pytorch_lightning as pl
    from bigbird_genomics.training.run import train

    class KillAt(pl.Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if trainer.global_step == int(sys.argv[3]):
                os.kill(os.getpid(), signal.SIGKILL)

    config = json.loads(open(sys.argv[1]).read())
    train(config, __import__("pathlib").Path(sys.argv[2]), extra_callbacks=[KillAt()])
""")


class FirstSteps(pl.Callback):
    """Records the global step of every training batch a run sees."""

    def __init__(self) -> None:
        self.steps: list[int] = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        self.steps.append(trainer.global_step)


@pytest.mark.slow
def test_pretraining_killed_between_checkpoints_resumes_from_last_ckpt(
    corpus: Path, tmp_path: Path
) -> None:
    """A step-counted run (the workflow's pretraining: max_steps, validation and last.ckpt
    every few steps) killed between checkpoints goes on from the last one to max_steps.

    Mid-epoch, the batch order restarts at the epoch's beginning and dropout draws differ, so
    the numbers are close to an uninterrupted run's, not equal (see docs/pretraining.md).
    """
    from bigbird_genomics.training.run import train

    extra = ["task=mlm", "trainer.max_steps=6", "trainer.max_epochs=-1", "data.batch_size=8",
             "trainer.val_check_interval=2", "trainer.check_val_every_n_epoch=null",
             "callbacks.early_stopping=null"]  # fmt: skip
    reference_dir, resumed_dir = tmp_path / "reference", tmp_path / "resumed"
    reference = train(training_config(reference_dir, corpus, extra), reference_dir)
    assert reference["global_step"] == 6
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(training_config(resumed_dir, corpus, extra)))
    script = tmp_path / "killed.py"
    script.write_text(KILLED_RUN)
    env = {**os.environ, "WANDB_MODE": "disabled"}
    killed = subprocess.run(
        [sys.executable, str(script), str(config_file), str(resumed_dir), "5"],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert (resumed_dir / "checkpoints" / "last.ckpt").is_file()
    assert not (resumed_dir / "metrics.json").exists()
    recorder = FirstSteps()
    config = training_config(resumed_dir, corpus, [*extra, "ckpt_path=last"])
    resumed = train(config, resumed_dir, [recorder])
    assert recorder.steps == [4, 5]  # from the step-4 checkpoint, not from scratch
    assert resumed["global_step"] == 6
    assert (resumed_dir / "csv" / "metrics.part0.csv").is_file()  # history before the kill
    for key in ("loss", "bits_per_base"):
        assert resumed["val"][key] == pytest.approx(reference["val"][key], rel=0.01), key


def test_benchmark_label_subset_and_steps_to(tmp_path: Path) -> None:
    """benchmarks/pretraining.py: a stratified share of the train labels; steps to a score."""
    from benchmarks.pretraining import label_subset, steps_to
    from bigbird_genomics.io.fasta import read_fasta
    from bigbird_genomics.io.labels import header_fields
    from bigbird_genomics.io.writers import format_header, write_fasta

    records = [
        (format_header(f"r{i}", {"label": i % 2, "split": "train" if i < 80 else "test"}),
         "ACGT" * 10)
        for i in range(100)
    ]
    fasta = write_fasta(tmp_path / "d.fa", records)
    subset = label_subset(fasta, tmp_path / "s.fa", 0.25, seed=0)
    fields = [header_fields(r.description) for r in read_fasta(subset)]
    train = [f for f in fields if f["split"] == "train"]
    assert len(train) == 20 and sum(int(f["label"]) for f in train) == 10
    assert sum(f["split"] == "test" for f in fields) == 20  # test stays whole
    again = label_subset(fasta, tmp_path / "t.fa", 0.25, seed=0)
    assert again.read_bytes() == subset.read_bytes()
    history = tmp_path / "csv"
    history.mkdir()
    (history / "metrics.part0.csv").write_text("step,val/accuracy\n10,0.5\n20,0.9\n")
    (history / "metrics.csv").write_text("step,val/accuracy\n30,\n40,0.96\n50,0.97\n")
    assert steps_to(history / "metrics.csv", "val/accuracy", 0.95) == 40
    assert steps_to(history / "metrics.csv", "val/accuracy", 0.99) is None
