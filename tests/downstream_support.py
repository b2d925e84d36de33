"""Helpers for the variant-effect and ISM tests: a demo promoter model trained by the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bigbird_genomics.tokens.build import tokenize_fasta
from bigbird_genomics.tokens.kmers import KmerTokenizer


def train_demo_promoter(root: Path, demo: dict[str, Path], extra: list[str]) -> Path:
    """Train the demo promoter experiment (1 epoch, plus `extra` overrides); its best.ckpt."""
    dataset = tokenize_fasta(demo["promoter"], root / "data", KmerTokenizer(6, 1), max_tokens=319)
    command = [
        str(Path(sys.executable).parent / "bigbird-genomics-train"),
        "experiment=promoter_demo",
        f"data.dataset={dataset}",
        f"hydra.run.dir={root / 'run'}",
        "trainer.max_epochs=1",
        "trainer.limit_val_batches=1",
        "trainer.num_sanity_val_steps=0",
        "logger=csv",
        "callbacks.progress_bar=null",
        *extra,
    ]
    env = dict(os.environ, WANDB_MODE="disabled")
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return root / "run" / "checkpoints" / "best.ckpt"


def read_tsv(path: Path) -> list[dict[str, str]]:
    header, *rows = [line.split("\t") for line in path.read_text("utf-8").splitlines()]
    return [dict(zip(header, row, strict=True)) for row in rows]
