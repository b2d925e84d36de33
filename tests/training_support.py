"""Helpers for the model/training tests: a small motif data set and composed configs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from bigbird_genomics.io.writers import format_header, write_fasta
from bigbird_genomics.tokens.build import tokenize_fasta
from bigbird_genomics.tokens.kmers import KmerTokenizer
from bigbird_genomics.training.app import CONF_DIR

MOTIF = "TATAAT"
# Overrides that make any composed config train in seconds on a CPU.
FAST = [
    "tokenizer=kmer3",
    "model.hidden_size=16",
    "model.num_layers=1",
    "model.num_heads=2",
    "model.intermediate_size=32",
    "model.max_tokens=64",
    "attention.block_size=16",
    "attention.num_random_blocks=1",
    "data.batch_size=16",
    "logger=csv",
    "callbacks.progress_bar=null",
    "trainer.log_every_n_steps=1",
    "trainer.num_sanity_val_steps=0",
]


def write_motif_fasta(path: Path, count: int = 160, length: int = 60, seed: int = 0) -> Path:
    """Binary task: label 1 iff MOTIF is planted; splits 70/15/15 in the headers."""
    rng = np.random.default_rng(seed)
    records = []
    for index in range(count):
        bases = rng.choice(list("ACGT"), size=length)
        sequence = "".join(bases).replace(MOTIF, "TTTTTT")
        label = index % 2
        if label:
            start = int(rng.integers(0, length - len(MOTIF)))
            sequence = sequence[:start] + MOTIF + sequence[start + len(MOTIF):]
        split = "train" if index < 0.7 * count else ("val" if index < 0.85 * count else "test")
        records.append((format_header(f"r{index:04d}", {"label": label, "split": split}), sequence))
    return write_fasta(path, records)


def motif_dataset(root: Path, k: int = 3) -> Path:
    fasta = write_motif_fasta(root / "motif.fa")
    return tokenize_fasta(fasta, root / f"motif_k{k}", KmerTokenizer(k=k), max_tokens=63)


def compose_config(overrides: list[str]) -> Any:
    """The composed training config (DictConfig) with `overrides`."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


def training_config(run_dir: Path, dataset: Path | None, extra: list[str] = ()) -> dict:
    """A plain, resolved config dict for `train.train`, writing into `run_dir`."""
    cache = run_dir.parent / "cache"
    overrides = [*FAST, f"paths.output_dir={run_dir}", f"paths.cache_dir={cache}"]
    if dataset is not None:
        overrides.append(f"data.dataset={dataset}")
    config = compose_config([*overrides, *extra])
    return OmegaConf.to_container(config, resolve=True)


def tiny_trained_run(root: Path, extra: list[str] = ()) -> tuple[Path, Path]:
    """(data set, run directory) of a real two-batch training run of the smallest model: a
    checkpoint the checkpoint and bad-input tests load, resume and damage."""
    from bigbird_genomics.training.run import train

    dataset = motif_dataset(root)
    run = root / "run"
    config = training_config(
        run,
        dataset,
        ["trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
         *extra],
    )
    train(config, run)
    return dataset, run
