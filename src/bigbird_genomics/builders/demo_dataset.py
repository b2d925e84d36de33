"""The embedded demo as a tokenized data set: generated (seeded) and tokenized once per settings
into a cache folder, so `bigbird-genomics-train` works on a fresh install with no data."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from bigbird_genomics.builders.demo import write_demo_data
from bigbird_genomics.io.atomic import remove_stale, temp_prefix
from bigbird_genomics.tokens.build import tokenize_fasta
from bigbird_genomics.tokens.kmers import KmerTokenizer


def _atomic_dir(target: Path, build: Callable[[Path], object]) -> Path:
    """Build a directory under a temporary name and rename it into place (first one wins)."""
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(target)
    temporary = Path(tempfile.mkdtemp(dir=target.parent, prefix=temp_prefix(target)))
    try:
        build(temporary)
        os.replace(temporary, target)
    except OSError:
        if not target.exists():
            raise
    finally:
        if temporary.exists():
            shutil.rmtree(temporary, ignore_errors=True)
    return target


def demo_dataset(
    cache_dir: str | Path,
    *,
    seed: int,
    fasta: str,
    labels: str | None,
    label_groups: str | None,
    tokenizer: KmerTokenizer,
    max_tokens: int,
) -> Path:
    """The demo data set `fasta` (e.g. "promoter") tokenized with `tokenizer` into windows of
    `max_tokens` k-mers; built once under `cache_dir`, reused while the settings match."""
    cache = Path(cache_dir) / f"demo-seed{seed}"
    fasta_dir = _atomic_dir(cache / "fasta", lambda out: write_demo_data(out, seed=seed))
    # The vocabulary hash in the name: a new vocabulary never reuses stale token ids.
    kmers = f"k{tokenizer.k}-s{tokenizer.stride}-{tokenizer.vocab_hash}"
    name = f"{fasta}-{kmers}-t{max_tokens}"

    def build(out: Path) -> None:
        tokenize_fasta(
            fasta_dir / f"{fasta}.fa",
            out,
            tokenizer,
            labels_table=fasta_dir / f"{labels}.tsv" if labels else None,
            label_groups_table=fasta_dir / f"{label_groups}.tsv" if label_groups else None,
            max_tokens=max_tokens,
            seed=seed,
        )

    return _atomic_dir(cache / "tokenized" / name, build)
