"""Unlabelled pretraining corpus: genome FASTA(s) -> long windows of k-mer tokens, both strands.

The result is an ordinary tokenized data set (`tokens.store.TokenizedDataset` reads it, masked-LM
training takes it as `data.dataset`) with no labels and two extra pieces:

- `strands.npy`: uint8 [examples], 0 = forward, 1 = reverse complement of the window's bases;
  `windows.npy` keeps forward-strand coordinates for both.
- meta["corpus"]: strands, the N-run rule, and the bases kept and skipped.

Why not `tokenize_fasta`: it encodes a whole record at once (its tokens, and for long records a
second copy gathered into windows, live in memory together), and it turns N runs into windows
of [UNK]. Here each record is cut at N runs into segments, and the windows of a segment are
encoded a batch at a time (`BATCH_WINDOWS` windows of both strands), written to `tokens.bin`
as they come; only the record's bases (1 byte/bp, from the FASTA reader) and per-window
coordinates stay in memory. A window and its reverse complement always share a split, so the
validation loss never scores a window whose other strand was trained on.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from bigbird_genomics.errors import UserError
from bigbird_genomics.io.atomic import DIRECTORY_MODE
from bigbird_genomics.io.fasta import DEFAULT_POLICY, FastaPolicy, read_fasta, reverse_complement
from bigbird_genomics.io.labels import SPLITS
from bigbird_genomics.tokens.build import (
    check_replaceable,
    format_meta,
    replace_directory,
    source_entry,
    write_index,
)
from bigbird_genomics.tokens.kmers import KmerTokenizer, TokenizerConfigError, plan_windows

BATCH_WINDOWS = 256  # windows encoded together: one span of ~256 windows per strand
N_CODE = ord("N")


def n_free_segments(sequence: np.ndarray, min_n_run: int) -> list[tuple[int, int]]:
    """Half-open spans of `sequence` between runs of at least `min_n_run` N bases.

    Shorter N runs stay inside a segment (their k-mers become [UNK]), so a single ambiguous
    base does not cut a contig in two.
    """
    is_n = sequence == N_CODE
    if not is_n.any():
        return [(0, len(sequence))] if len(sequence) else []
    edges = np.flatnonzero(np.diff(np.concatenate([[0], is_n.view(np.int8), [0]])))
    run_starts, run_ends = edges[::2], edges[1::2]
    long_runs = (run_ends - run_starts) >= min_n_run
    cuts = [0]
    for start, end in zip(run_starts[long_runs], run_ends[long_runs], strict=True):
        cuts += [int(start), int(end)]
    cuts.append(len(sequence))
    return [(a, b) for a, b in zip(cuts[::2], cuts[1::2], strict=True) if b > a]


def _batch_tokens(
    tokenizer: KmerTokenizer, bases: np.ndarray, span_start: int, windows: np.ndarray
) -> list[np.ndarray]:
    """Tokens of each window (absolute (start, end) rows) of `bases`, which start at span_start.

    The span is encoded once; windows on its stride grid are slices of that, others (the last
    window of a segment, moved back to end at the segment's end) are encoded alone.
    """
    full = tokenizer.encode_compact(bases)
    pieces = []
    for start, end in windows:
        offset = int(start) - span_start
        count = tokenizer.num_tokens(int(end - start))
        if offset % tokenizer.stride == 0:
            first = offset // tokenizer.stride
            pieces.append(full[first : first + count])
        else:
            pieces.append(tokenizer.encode_compact(bases[offset : offset + int(end - start)]))
    return pieces


def _window_batches(
    sequence: np.ndarray, window_bp: int, min_n_run: int, min_window_bp: int
) -> Iterator[np.ndarray]:
    """Non-overlapping windows of each N-free segment, BATCH_WINDOWS (start, end) rows at a time."""
    for seg_start, seg_end in n_free_segments(sequence, min_n_run):
        if seg_end - seg_start < min_window_bp:
            continue
        spans = np.array(plan_windows(seg_end - seg_start, window_bp), dtype=np.int64) + seg_start
        for first in range(0, len(spans), BATCH_WINDOWS):
            yield spans[first : first + BATCH_WINDOWS]


def build_corpus(
    fastas: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    tokenizer: KmerTokenizer,
    *,
    max_tokens: int = 511,
    both_strands: bool = True,
    min_n_run: int = 1,
    min_window_bp: int | None = None,
    val_fraction: float = 0.01,
    test_fraction: float = 0.0,
    seed: int = 0,
    policy: FastaPolicy = DEFAULT_POLICY,
) -> Path:
    """Write an unlabelled masked-LM corpus of `fastas` into `out_dir`; returns its path.

    Windows hold `max_tokens` tokens (the model's context minus [CLS]); segments between runs
    of >= `min_n_run` N are tiled without overlap (the last window moved back to the segment
    end); segments shorter than `min_window_bp` (default: half a window) are skipped. Each
    window draws its split (val / test with the given fractions, else train) from a generator
    seeded by `seed`, in genome order, so the same input and seed give the same corpus.
    """
    paths = [Path(f) for f in fastas]
    out_dir = Path(out_dir)
    if not paths:
        raise UserError("pretraining corpus: give at least one FASTA")
    if max_tokens < 1:
        raise TokenizerConfigError(f"max_tokens={max_tokens} must be at least 1")
    if min_n_run < 1:
        raise UserError(f"--min-n-run {min_n_run}: must be at least 1 (N bases in a row)")
    if min(val_fraction, test_fraction) < 0 or val_fraction + test_fraction >= 1:
        raise UserError(
            f"val fraction {val_fraction} and test fraction {test_fraction} must be >= 0 and "
            "sum to less than 1 (the rest trains)"
        )
    window_bp = tokenizer.max_bases(max_tokens)
    min_window_bp = max(tokenizer.k, window_bp // 2 if min_window_bp is None else min_window_bp)
    check_replaceable(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    temp.chmod(DIRECTORY_MODE)  # mkdtemp makes it private (0700); a data set is shared
    try:
        meta = _write_corpus(
            paths, temp, tokenizer, window_bp, max_tokens, both_strands, min_n_run,
            min_window_bp, (val_fraction, test_fraction), seed, policy,
        )
        (temp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        replace_directory(temp, out_dir)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return out_dir


def _write_corpus(
    paths: list[Path],
    temp: Path,
    tokenizer: KmerTokenizer,
    window_bp: int,
    max_tokens: int,
    both_strands: bool,
    min_n_run: int,
    min_window_bp: int,
    fractions: tuple[float, float],
    seed: int,
    policy: FastaPolicy,
) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    windows: list[np.ndarray] = [np.zeros((0, 3), dtype=np.int64)]
    counts: list[np.ndarray] = [np.zeros(0, dtype=np.int64)]
    strands: list[np.ndarray] = [np.zeros(0, dtype=np.uint8)]
    splits: list[np.ndarray] = [np.zeros(0, dtype=np.uint8)]
    record_ids: list[str] = []
    num_bases = num_n = num_ambiguous = kept_bp = 0
    thresholds = np.cumsum([fractions[0], fractions[1]])  # draw < val -> val, < val+test -> test
    progress = tqdm(desc="corpus", unit="bp", unit_scale=True, file=sys.stderr,
                    disable=not sys.stderr.isatty())
    with open(temp / "tokens.bin", "wb") as tokens_out, progress:
        for path in paths:
            for record in read_fasta(path, policy):
                record_index = len(record_ids)
                record_ids.append(record.id)
                num_bases += len(record)
                num_n += record.count_n()
                num_ambiguous += record.num_ambiguous
                covered_to = 0  # windows of a batch tile its span; batches may share a window
                for batch in _window_batches(record.sequence, window_bp, min_n_run, min_window_bp):
                    span_start, span_end = int(batch[0, 0]), int(batch[-1, 1])
                    bases = record.sequence[span_start:span_end]
                    draws = rng.random(len(batch))
                    batch_split = np.select(
                        [draws < thresholds[0], draws < thresholds[1]],
                        [SPLITS.index("val"), SPLITS.index("test")],
                        SPLITS.index("train"),
                    ).astype(np.uint8)
                    lengths = batch[:, 1] - batch[:, 0]
                    token_counts = (lengths - tokenizer.k) // tokenizer.stride + 1
                    rows = np.column_stack([np.full(len(batch), record_index), batch])
                    forward = _batch_tokens(tokenizer, bases, span_start, batch)
                    tokens_out.write(np.concatenate(forward).tobytes())
                    windows.append(rows)
                    counts.append(token_counts)
                    strands.append(np.zeros(len(batch), dtype=np.uint8))
                    splits.append(batch_split)
                    if both_strands:
                        # window [s, e) is [span_end - e, span_end - s) of the span's reverse
                        # complement, counted from that's start
                        mirrored = span_end - batch[:, ::-1]
                        reverse = _batch_tokens(tokenizer, reverse_complement(bases), 0, mirrored)
                        tokens_out.write(np.concatenate(reverse).tobytes())
                        windows.append(rows)
                        counts.append(token_counts)
                        strands.append(np.ones(len(batch), dtype=np.uint8))
                        splits.append(batch_split)
                    kept_bp += span_end - max(span_start, covered_to)
                    covered_to = span_end
                progress.update(len(record))
    example_windows = np.concatenate(windows)
    if len(example_windows) == 0:
        raise UserError(
            f"{', '.join(map(str, paths))}: no N-free stretch of at least {min_window_bp} bp, so "
            "the corpus would be empty; lower --min-window-bp or --max-tokens, or raise "
            "--min-n-run"
        )
    offsets = write_index(temp, counts, example_windows, record_ids)
    example_splits = np.concatenate(splits)
    np.save(temp / "strands.npy", np.concatenate(strands))
    np.save(temp / "split.npy", example_splits)
    sources = [source_entry(path) for path in paths]
    return {
        **format_meta(tokenizer),
        "max_tokens": max_tokens,
        "window_bp": window_bp,
        "overlap_bp": 0,
        "num_examples": len(example_windows),
        "num_tokens": int(offsets[-1]),
        "num_records": len(record_ids),
        "num_bases": num_bases,
        "num_n": num_n,
        "num_ambiguous_to_n": num_ambiguous,
        "skipped_records": [],
        "label_names": [],
        "label_source": None,
        "label_groups": {},
        "policy": asdict(policy),
        "split_counts": {s: int(np.sum(example_splits == i)) for i, s in enumerate(SPLITS)},
        "split_fractions": [1 - sum(fractions), fractions[0], fractions[1]],
        "seed": seed,
        "corpus": {
            "strands": "both" if both_strands else "forward",
            "min_n_run": min_n_run,
            "min_window_bp": min_window_bp,
            "kept_bp": kept_bp,
            "skipped_bp": num_bases - kept_bp,
        },
        "sources": {"fasta": sources[0], "fastas": sources},
    }
