"""Building a tokenized data set from FASTA (the layout is described in `tokens/store.py`,
which reads it): k-mer windows per record, labels from headers or a sidecar table, splits per
record, all written into a temporary folder that replaces the output only when complete."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from bigbird_genomics import __version__
from bigbird_genomics.errors import UserError
from bigbird_genomics.io.atomic import DIRECTORY_MODE, remove_stale, temp_prefix
from bigbird_genomics.io.fasta import DEFAULT_POLICY, FastaPolicy, read_fasta
from bigbird_genomics.io.labels import (
    SPLITS,
    LabelError,
    LabelTable,
    check_ids,
    header_label_names,
    header_labels,
    header_split,
    read_label_groups,
    read_label_table,
)
from bigbird_genomics.tokens.kmers import KmerTokenizer, TokenizerConfigError, plan_windows
from bigbird_genomics.tokens.store import (
    FORMAT,
    FORMAT_VERSION,
    MAX_LISTED,
    own_files,
    sha256_file,
)


def source_entry(path: Path) -> dict[str, Any]:
    return {"path": str(path.resolve()), "bytes": path.stat().st_size, "sha256": sha256_file(path)}


def _assign_splits(
    header_splits: Sequence[str | None],
    fractions: Sequence[float],
    seed: int,
    has_examples: np.ndarray,
) -> np.ndarray:
    """Split index per record: the header's if given, else a seeded shuffle cut 80/10/10.

    Exact counts (not a coin per record) so small data sets get the fractions asked for; with
    at least three records every split with a positive fraction gets one. The split with the
    largest fraction takes the rounding remainder, so a split asked to be empty stays empty.
    """
    result = np.array([SPLITS.index(s) if s else -1 for s in header_splits], dtype=np.int64)
    free = np.flatnonzero((result < 0) & has_examples)  # records without windows take no slot
    if free.size:
        order = np.random.default_rng(seed).permutation(free)
        counts = [int(round(f * free.size)) for f in fractions]
        if free.size >= len(SPLITS):
            counts = [max(c, 1) if f > 0 else c for c, f in zip(counts, fractions, strict=True)]
        largest = int(np.argmax(fractions))
        counts[largest] = free.size - (sum(counts) - counts[largest])
        bounds = np.cumsum([0, *counts])
        for split, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
            result[order[lo:hi]] = split
    result[result < 0] = 0
    return result.astype(np.uint8)


def check_replaceable(out_dir: Path) -> None:
    """`out_dir` may be replaced: absent, empty, or a complete data set this project wrote.

    Anything else (a folder that merely holds a meta.json, a data set with the user's own files
    added) is refused, naming what is in the way: replacing it would delete those files.
    """
    if not out_dir.exists() and not out_dir.is_symlink():
        return
    if out_dir.is_symlink() or not out_dir.is_dir():
        raise UserError(
            f"{out_dir}: exists and is not a tokenized data set folder; choose another --out"
        )
    entries = {entry.name: entry for entry in out_dir.iterdir()}
    if not entries:
        return
    meta: dict[str, Any] = {}
    try:
        loaded = json.loads((out_dir / "meta.json").read_text(encoding="utf-8"))
        meta = loaded if isinstance(loaded, dict) else {}
    except (OSError, ValueError):
        meta = {}  # unreadable or not JSON: not a data set this package wrote
    if meta.get("format") != FORMAT:
        listed = ", ".join(sorted(entries)[:MAX_LISTED]) + (
            ", ..." if len(entries) > MAX_LISTED else ""
        )
        raise UserError(
            f"{out_dir}: exists and is not a tokenized data set (it holds {listed}); "
            "tokenize would delete it: choose another --out, or empty the folder yourself"
        )
    own = own_files(meta)
    unexpected = sorted(
        name
        for name, entry in entries.items()
        if name not in own or entry.is_symlink() or not entry.is_file()
    )
    missing = sorted(own - set(entries))
    if unexpected or missing:
        problems = []
        if unexpected:
            problems.append(f"files that are not part of a data set: {', '.join(unexpected)}")
        if missing:
            problems.append(f"data set files missing: {', '.join(missing)}")
        raise UserError(
            f"{out_dir}: is not exactly a tokenized data set ({'; '.join(problems)}); "
            "tokenize would delete them: move them away, or choose another --out"
        )


def replace_directory(temp: Path, out_dir: Path) -> None:
    """Rename the finished temp directory over `out_dir`, refusing to clobber non-data sets."""
    if out_dir.exists():
        check_replaceable(out_dir)  # again: it may have changed while we tokenized
        # named as a temporary of out_dir, so a kill between the renames leaves nothing kept
        old = out_dir.with_name(f"{temp_prefix(out_dir)}old")
        os.replace(out_dir, old)
        os.replace(temp, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(temp, out_dir)


def tokenize_fasta(
    fasta: str | os.PathLike,
    out_dir: str | os.PathLike,
    tokenizer: KmerTokenizer,
    *,
    labels_table: str | os.PathLike | None = None,
    label_groups_table: str | os.PathLike | None = None,
    max_tokens: int = 512,
    overlap_bp: int = 0,
    split_fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    policy: FastaPolicy = DEFAULT_POLICY,
) -> Path:
    """Tokenize a (labelled) FASTA into a data set directory; returns its path.

    Records are cut into windows of at most `max_tokens` k-mer tokens (no [CLS]) overlapping
    by `overlap_bp`; a record's windows all go to one split. Records shorter than k give no
    tokens and are listed in meta["skipped_records"]. A label table, when given, is the source
    of labels: header `label=`/`labels=`/`class=` with as many labels may repeat its values but
    not contradict them (a LabelError names both); `split=` still applies.
    """
    fasta, out_dir = Path(fasta), Path(out_dir)
    if max_tokens < 1:
        raise TokenizerConfigError(f"max_tokens={max_tokens} must be at least 1")
    if (
        len(split_fractions) != 3
        or min(split_fractions) < 0
        or abs(sum(split_fractions) - 1) > 1e-6
    ):
        raise TokenizerConfigError(
            f"split fractions {tuple(split_fractions)} must be three non-negative numbers "
            "(train, val, test) summing to 1"
        )
    window_bp = tokenizer.max_bases(max_tokens)
    plan_windows(window_bp + 1, window_bp, overlap_bp)  # validates overlap before any work
    remove_stale(out_dir)
    check_replaceable(out_dir)
    table = read_label_table(labels_table) if labels_table is not None else None
    groups = read_label_groups(label_groups_table) if label_groups_table is not None else {}

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=temp_prefix(out_dir), dir=out_dir.parent))
    temp.chmod(DIRECTORY_MODE)  # mkdtemp makes it private (0700); a data set is shared
    try:
        meta = _write_examples(
            fasta, temp, tokenizer, table, window_bp, max_tokens, overlap_bp, policy
        )
        header_splits = meta.pop("_header_splits")
        tokens_sha256 = meta.pop("_tokens_sha256")
        example_records = np.asarray(np.load(temp / "windows.npy")[:, 0], dtype=np.int64)
        has_examples = np.zeros(len(header_splits), dtype=bool)
        has_examples[example_records] = True
        record_splits = _assign_splits(header_splits, split_fractions, seed, has_examples)
        example_splits = record_splits[example_records]
        np.save(temp / "split.npy", example_splits)
        label_names = meta["label_names"]
        if groups:
            if (
                table is None
                and meta["label_source"] == "header"
                and len(groups) == len(label_names)
            ):
                label_names = meta["label_names"] = list(groups)  # groups table names them
            unknown = [n for n in label_names if n not in groups]
            if unknown:
                raise LabelError(
                    f"{label_groups_table}: no group for label(s) {', '.join(unknown)}; list "
                    f"every label ({', '.join(label_names)}) with its group"
                )
        meta["label_groups"] = {name: groups[name] for name in label_names if name in groups}
        meta["split_counts"] = {s: int(np.sum(example_splits == i)) for i, s in enumerate(SPLITS)}
        meta["record_split_counts"] = {
            s: int(np.sum(record_splits[has_examples] == i)) for i, s in enumerate(SPLITS)
        }
        meta.update(split_fractions=list(split_fractions), seed=seed)
        sources = {"fasta": source_entry(fasta)}
        if labels_table is not None:
            sources["labels"] = source_entry(Path(labels_table))
        if label_groups_table is not None:
            sources["label_groups"] = source_entry(Path(label_groups_table))
        meta["sources"] = sources
        meta["files"] = {
            name: {
                "bytes": (temp / name).stat().st_size,
                "sha256": tokens_sha256 if name == "tokens.bin" else sha256_file(temp / name),
            }
            for name in sorted(own_files(meta) - {"meta.json"})
        }
        (temp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        replace_directory(temp, out_dir)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return out_dir


def _window_tokens(
    tokenizer: KmerTokenizer, sequence: np.ndarray, window_bp: int, overlap_bp: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Tokens of all windows of one record back to back, and each window's start, end, count.

    The record is encoded once. Windows on the stride grid with equal token counts (all
    windows of a long record) are rows of a sliding-window view of its tokens, gathered in one
    copy; others are sliced or encoded one by one (a Python loop per window, or big index
    arrays, were the bottleneck on genomes).
    """
    spans = np.array(plan_windows(len(sequence), window_bp, overlap_bp), dtype=np.int64)
    starts, ends = spans[:, 0], spans[:, 1]
    counts = (ends - starts - tokenizer.k) // tokenizer.stride + 1
    full = tokenizer.encode_compact(sequence)
    on_grid = starts % tokenizer.stride == 0
    if len(spans) == 1:  # a short record: one window of all its tokens
        return full, starts, ends, counts
    if on_grid.all() and (counts == counts[0]).all():
        rows = np.lib.stride_tricks.sliding_window_view(full, int(counts[0]))
        return rows[starts // tokenizer.stride].reshape(-1), starts, ends, counts
    pieces = []
    for start, end, count, grid in zip(starts, ends, counts, on_grid, strict=True):
        first = start // tokenizer.stride
        pieces.append(
            full[first : first + count] if grid else tokenizer.encode_compact(sequence[start:end])
        )
    return np.concatenate(pieces), starts, ends, counts


def _write_examples(
    fasta: Path,
    temp: Path,
    tokenizer: KmerTokenizer,
    table: LabelTable | None,
    window_bp: int,
    max_tokens: int,
    overlap_bp: int,
    policy: FastaPolicy,
) -> dict[str, Any]:
    """Stream records -> windows -> tokens.bin; write the per-example arrays; return meta."""
    windows: list[np.ndarray] = [np.zeros((0, 3), dtype=np.int64)]
    token_counts: list[np.ndarray] = [np.zeros(0, dtype=np.int64)]
    record_labels: dict[int, np.ndarray] = {}
    record_ids: list[str] = []
    header_splits: list[str | None] = []
    skipped: list[str] = []
    missing: list[str] = []
    contradictions: list[str] = []  # header labels that disagree with the table
    label_names: list[str] = list(table.names) if table is not None else []
    label_source = "sidecar" if table is not None else None
    first_where, first_count = "", 0
    num_bases = num_n = num_ambiguous = 0
    tokens_digest = hashlib.sha256()
    with open(temp / "tokens.bin", "wb") as tokens_out:
        for record in read_fasta(fasta, policy):
            where = record.where()
            record_ids.append(record.id)
            header_splits.append(header_split(record.description, where))
            num_bases += len(record)
            num_n += record.count_n()
            num_ambiguous += record.num_ambiguous
            if table is not None:
                labels = table.values.get(record.id)
                if labels is None:
                    missing.append(record.id)
                    continue
                conflict = table.contradiction(record.id, record.description, where)
                if conflict is not None:
                    contradictions.append(conflict)
            else:
                labels = header_labels(record.description, where)
                count = 0 if labels is None else len(labels)
                if len(record_ids) == 1:
                    first_where, first_count = where, count
                    if labels is not None:
                        label_names = header_label_names(record.description, count)
                        label_source = "header"
                names = header_label_names(record.description, count) if count else []
                if count != first_count or (count and names != label_names):
                    raise LabelError(
                        f"{where}: has {count} header label(s) {names} but the first record "
                        f"({first_where}) has {first_count} {label_names[:first_count]}; give "
                        "every record the same kind of labels (label=0/1, labels=0,1,... or "
                        "class=K), or none"
                    )
            if len(record) < tokenizer.k:
                skipped.append(record.id)
                continue
            tokens, starts, ends, counts = _window_tokens(
                tokenizer, record.sequence, window_bp, overlap_bp
            )
            data = tokens.tobytes()
            tokens_digest.update(data)  # hashed as written: no second pass over a large file
            tokens_out.write(data)
            record_index = len(record_ids) - 1
            spans = np.empty((len(starts), 3), dtype=np.int64)
            spans[:, 0], spans[:, 1], spans[:, 2] = record_index, starts, ends
            windows.append(spans)
            token_counts.append(counts)
            if labels is not None:
                record_labels[record_index] = labels
    if table is not None and (missing or set(table.values) - set(record_ids)):
        check_ids(table, record_ids, fasta)
    if table is not None:
        table.check_contradictions(contradictions)
    example_windows = np.concatenate(windows)
    if len(example_windows) == 0:
        shown = ", ".join(skipped[:5]) + (", ..." if len(skipped) > 5 else "")
        raise UserError(
            f"{fasta}: no record is at least k={tokenizer.k} bases long ({len(skipped)} "
            f"skipped: {shown}), so the data set would have no examples; use a smaller k or "
            "longer records"
        )
    offsets = write_index(temp, token_counts, example_windows, record_ids)
    if label_source is not None:
        per_record = np.zeros((len(record_ids), len(label_names)), dtype=np.uint8)
        for record_index, labels in record_labels.items():
            per_record[record_index] = labels
        np.save(temp / "labels.npy", per_record[example_windows[:, 0]])
    return {
        **format_meta(tokenizer),
        "max_tokens": max_tokens,
        "window_bp": window_bp,
        "overlap_bp": overlap_bp,
        "num_examples": len(example_windows),
        "num_tokens": int(offsets[-1]),
        "num_records": len(record_ids),
        "num_bases": num_bases,
        "num_n": num_n,
        "num_ambiguous_to_n": num_ambiguous,
        "skipped_records": skipped,
        "label_names": label_names,
        "label_source": label_source,
        "policy": asdict(policy),
        "_header_splits": header_splits,
        "_tokens_sha256": tokens_digest.hexdigest(),
    }


def format_meta(tokenizer: KmerTokenizer) -> dict[str, Any]:
    """The meta.json keys every data set starts with: its format and its tokenizer."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_by": f"bigbird-genomics {__version__}",
        "tokenizer": tokenizer.to_dict(),
        "k": tokenizer.k,
        "stride": tokenizer.stride,
        "vocab_hash": tokenizer.vocab_hash,
        "vocab_size": tokenizer.vocab_size,
        "token_dtype": tokenizer.token_dtype.name,
    }


def write_index(
    temp: Path,
    token_counts: Sequence[np.ndarray],
    example_windows: np.ndarray,
    record_ids: Sequence[str],
) -> np.ndarray:
    """Write offsets.npy, windows.npy and records.txt of a data set being built; returns the
    offsets (int64 [examples + 1] into tokens.bin)."""
    offsets = np.concatenate([[0], np.cumsum(np.concatenate(token_counts))]).astype(np.int64)
    np.save(temp / "offsets.npy", offsets)
    np.save(temp / "windows.npy", example_windows)
    (temp / "records.txt").write_text("".join(f"{r}\n" for r in record_ids))
    return offsets
