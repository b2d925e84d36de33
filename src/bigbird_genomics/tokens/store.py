"""A tokenized data set on disk: memory-mapped tokens, windows, labels, splits and metadata.

Layout of a data set directory (written atomically: built in a temp directory, then renamed):

- `meta.json`: format, tokenizer (k, stride, vocab hash), window settings, sources + sha256,
  label names/groups, split counts, FASTA policy and counts of N / ambiguity codes, and
  `files`: bytes + sha256 of every other file (sizes checked on open, checksums by `verify`).
- `tokens.bin`: every example's k-mer ids back to back, raw `meta["token_dtype"]` (uint16
  while the vocabulary fits, i.e. k <= 7); `offsets.npy`: int64 [examples + 1] into it.
- `windows.npy`: int64 [examples, 3] = (record index, start bp, end bp), 0-based half-open
  on the record; `records.txt`: record ids, one per line.
- `split.npy`: uint8 [examples], index into `SPLITS`; `labels.npy`: uint8 [examples, labels]
  (absent for unlabelled data).

`TokenizedDataset.tokens(i)` returns int64 (what embedding layers take), copying one example.
"""

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
    CLASS_LABEL,
    MAX_CLASS,
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

FORMAT = "bigbird-genomics-tokenized"
FORMAT_VERSION = 1
# Every data set has these beside meta.json; labelled ones also labels.npy.
ARRAY_FILES = ("tokens.bin", "offsets.npy", "windows.npy", "split.npy", "records.txt")
_MAX_LISTED = 10


class TokenizerMismatchError(UserError):
    """A data set tokenized differently from the model or tokenizer that wants to use it."""


class DatasetFormatError(UserError):
    """A directory that is not (or no longer) a readable tokenized data set."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _source(path: Path) -> dict[str, Any]:
    return {"path": str(path.resolve()), "bytes": path.stat().st_size, "sha256": sha256_file(path)}


class TokenizedDataset:
    """Read side of a tokenized data set; arrays are memory-mapped, not loaded."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        meta_path = self.path / "meta.json"
        if not meta_path.is_file():
            raise DatasetFormatError(
                f"{self.path}: not a tokenized data set (no meta.json); build one with "
                "`bigbird-genomics tokenize --fasta F --out DIR`"
            )
        try:
            self.meta: dict[str, Any] = json.loads(meta_path.read_text())
        except json.JSONDecodeError as error:
            raise DatasetFormatError(f"{meta_path}: unreadable ({error}); rebuild it") from None
        if self.meta.get("format") != FORMAT or self.meta.get("format_version") != FORMAT_VERSION:
            raise DatasetFormatError(
                f"{meta_path}: format {self.meta.get('format')!r} version "
                f"{self.meta.get('format_version')!r} is not {FORMAT!r} version {FORMAT_VERSION}; "
                "re-run `bigbird-genomics tokenize` with this version"
            )
        self.tokenizer = KmerTokenizer.from_dict(self.meta["tokenizer"])
        self._open()

    def _open(self) -> None:
        """Map the arrays and check each one's size and shape against meta.json.

        Only sizes, shapes and the small per-example arrays are read, so opening stays cheap; a
        truncated or swapped file is refused here rather than trained on. Checksums and token
        ids are checked by `verify` (`bigbird-genomics validate --data`), which reads it all.
        """
        meta = self.meta
        rebuild = "rebuild it with `bigbird-genomics tokenize`"
        for name in sorted(_own_files(meta) - {"meta.json"}):
            if not (self.path / name).is_file():
                what = (
                    f"meta.json says the data set is labelled ({meta.get('label_source')})"
                    if name == "labels.npy"
                    else "every data set has one"
                )
                raise DatasetFormatError(f"{self.path / name}: missing ({what}); {rebuild}")
        try:
            for name, entry in (meta.get("files") or {}).items():
                size = (self.path / name).stat().st_size
                if size != entry["bytes"]:
                    raise DatasetFormatError(
                        f"{self.path / name}: {size} bytes but meta.json recorded "
                        f"{entry['bytes']} (truncated or replaced); {rebuild}"
                    )
            tokens_path = self.path / "tokens.bin"
            dtype = np.dtype(meta["token_dtype"])
            num_examples, num_tokens = int(meta["num_examples"]), int(meta["num_tokens"])
            tokens_bytes = tokens_path.stat().st_size
            if tokens_bytes != num_tokens * dtype.itemsize:
                raise DatasetFormatError(
                    f"{tokens_path}: {tokens_bytes} bytes but meta.json says {num_tokens} tokens "
                    f"of {dtype.itemsize} byte(s) = {num_tokens * dtype.itemsize} (truncated or "
                    f"replaced); {rebuild}"
                )
            self._tokens = (
                np.memmap(tokens_path, dtype=dtype, mode="r")
                if tokens_bytes
                else np.zeros(0, dtype=dtype)
            )
            self._offsets = self._load("offsets.npy", (num_examples + 1,))
            offsets = np.asarray(self._offsets)
            if offsets[0] != 0 or offsets[-1] != num_tokens or np.any(np.diff(offsets) < 0):
                raise DatasetFormatError(
                    f"{self.path / 'offsets.npy'}: offsets do not run from 0 up to the "
                    f"{num_tokens} tokens of tokens.bin; {rebuild}"
                )
            self._windows = self._load("windows.npy", (num_examples, 3))
            self._split = np.asarray(self._load("split.npy", (num_examples,)))
            if self._split.size and int(self._split.max()) >= len(SPLITS):
                raise DatasetFormatError(
                    f"{self.path / 'split.npy'}: split index {int(self._split.max())} is not "
                    f"one of {len(SPLITS)} splits; {rebuild}"
                )
            self._labels = None
            if meta.get("label_source") is not None:
                self._labels = self._load(
                    "labels.npy", (num_examples, len(meta["label_names"]))
                )
            records_path = self.path / "records.txt"
            self._record_ids = records_path.read_text(encoding="utf-8").splitlines()
        except (OSError, ValueError, KeyError, UnicodeDecodeError) as error:
            raise DatasetFormatError(
                f"{self.path}: data set files are missing or damaged ({type(error).__name__}: "
                f"{error}); {rebuild}"
            ) from None
        if len(self._record_ids) != int(meta["num_records"]):
            raise DatasetFormatError(
                f"{records_path}: {len(self._record_ids)} record ids but meta.json says "
                f"{meta['num_records']}; {rebuild}"
            )
        record_index = np.asarray(self._windows[:, 0])
        if record_index.size and not 0 <= record_index.min() <= record_index.max() < len(
            self._record_ids
        ):
            raise DatasetFormatError(
                f"{self.path / 'windows.npy'}: record indices outside the "
                f"{len(self._record_ids)} records of records.txt; {rebuild}"
            )

    def _load(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """A memory-mapped .npy file of the shape meta.json implies, or a DatasetFormatError."""
        array = np.load(self.path / name, mmap_mode="r")
        if array.shape != shape:
            raise DatasetFormatError(
                f"{self.path / name}: shape {array.shape} but meta.json implies {shape}; "
                "rebuild it with `bigbird-genomics tokenize`"
            )
        return array

    def verify(self) -> list[str]:
        """Read every file: sha256 against meta.json, token ids against the vocabulary, labels
        against their kind. Returns what was checked; raises DatasetFormatError at a problem."""
        checked = []
        recorded = self.meta.get("files")
        if recorded:
            for name, entry in recorded.items():
                digest = sha256_file(self.path / name)
                if digest != entry["sha256"]:
                    raise DatasetFormatError(
                        f"{self.path / name}: sha256 {digest[:12]}... differs from the "
                        f"{entry['sha256'][:12]}... recorded in meta.json (damaged or "
                        "replaced); rebuild it with `bigbird-genomics tokenize`"
                    )
            checked.append(f"sha256 of {len(recorded)} files")
        else:
            checked.append("no checksums in meta.json (rebuild with this version to get them)")
        vocab = self.tokenizer.vocab_size
        chunk = 1 << 24
        for start in range(0, len(self._tokens), chunk):
            piece = np.asarray(self._tokens[start : start + chunk])
            if piece.size and int(piece.max()) >= vocab:
                position = start + int(np.argmax(piece >= vocab))
                example = int(np.searchsorted(np.asarray(self._offsets), position, "right")) - 1
                raise DatasetFormatError(
                    f"{self.path / 'tokens.bin'}: token id {int(piece.max())} (example "
                    f"{example}) is outside the vocabulary of {vocab} ids of "
                    f"{self.tokenizer.describe()}; rebuild it with `bigbird-genomics tokenize`"
                )
        checked.append(f"{len(self._tokens)} token ids < {vocab}")
        if self._labels is not None and self._labels.size:
            largest = int(np.asarray(self._labels).max())
            limit = MAX_CLASS if self.label_names == [CLASS_LABEL] else 1
            if largest > limit:
                raise DatasetFormatError(
                    f"{self.path / 'labels.npy'}: label value {largest} is not "
                    f"{'a class index' if limit > 1 else '0 or 1'}; rebuild it with "
                    "`bigbird-genomics tokenize`"
                )
            checked.append("labels in range")
        return checked

    # Data loader workers with the "spawn" start method pickle the data set: send the path,
    # not copies of the memory-mapped arrays.
    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "meta": self.meta}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path, self.meta = state["path"], state["meta"]
        self.tokenizer = KmerTokenizer.from_dict(self.meta["tokenizer"])
        self._open()

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __repr__(self) -> str:
        return f"TokenizedDataset({str(self.path)!r}, examples={len(self)}, {self.tokenizer})"

    def tokens(self, index: int) -> np.ndarray:
        """k-mer ids of one example as int64, without [CLS]/[PAD].

        Ids past the vocabulary (a damaged tokens.bin) are refused here: an embedding lookup
        would fail with an index error deep in training, or a device assert on a GPU.
        """
        ids = np.asarray(self._tokens[self._offsets[index] : self._offsets[index + 1]], np.int64)
        if ids.size and ids.max() >= self.tokenizer.vocab_size:
            raise DatasetFormatError(
                f"{self.path / 'tokens.bin'}: example {index} has token id {int(ids.max())}, "
                f"outside the vocabulary of {self.tokenizer.vocab_size} ids; the file is "
                "damaged: rebuild it with `bigbird-genomics tokenize`"
            )
        return ids

    def labels(self, index: int) -> np.ndarray | None:
        """float32 [num_labels] of 0/1 (a class index for `class` data), or None if unlabelled."""
        if self._labels is None:
            return None
        return np.asarray(self._labels[index], dtype=np.float32)

    @property
    def label_array(self) -> np.ndarray | None:
        """All labels, [examples, labels] uint8 (memory-mapped), or None for unlabelled data."""
        return self._labels

    @property
    def label_names(self) -> list[str]:
        return list(self.meta["label_names"])

    @property
    def label_groups(self) -> dict[str, str]:
        """label -> group; empty when no groups table was given."""
        return dict(self.meta["label_groups"])

    @property
    def lengths(self) -> np.ndarray:
        """Tokens per example (int64)."""
        return np.diff(np.asarray(self._offsets))

    @property
    def longest_window_bp(self) -> int:
        """Bases of the longest example: the sequence length a model trained on this set saw,
        which `predict` uses as its default scan window."""
        windows = np.asarray(self._windows)
        return int((windows[:, 2] - windows[:, 1]).max()) if len(windows) else 0

    def split_indices(self, name: str) -> np.ndarray:
        """Example indices (int64) of split `name` (train, val or test)."""
        if name not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, not {name!r}")
        return np.flatnonzero(self._split == SPLITS.index(name)).astype(np.int64)

    def record(self, index: int) -> tuple[str, int, int]:
        """(record id, start bp, end bp) of an example, 0-based half-open on its record."""
        record_index, start, end = (int(v) for v in self._windows[index])
        return self._record_ids[record_index], start, end

    def check_tokenizer(self, tokenizer: dict[str, Any] | KmerTokenizer) -> None:
        """Refuse to pair this data set with a tokenizer that would give other ids."""
        other = tokenizer if isinstance(tokenizer, KmerTokenizer) else None
        if other is None:
            try:
                other = KmerTokenizer.from_dict(tokenizer)
            except (KeyError, TokenizerConfigError) as error:
                raise TokenizerMismatchError(
                    f"{self.path}: cannot compare tokenizers ({error}); the model's tokenizer "
                    f"description is {tokenizer!r}"
                ) from None
        mine = self.tokenizer
        if (mine.k, mine.stride, mine.vocab_hash) != (other.k, other.stride, other.vocab_hash):
            raise TokenizerMismatchError(
                f"{self.path}: data set was tokenized with {mine.describe()}, but the model "
                f"uses {other.describe()}. Re-tokenize the data with `bigbird-genomics tokenize "
                f"--k {other.k} --stride {other.stride}`, or use a model trained with "
                f"k={mine.k} stride={mine.stride}."
            )


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


def _own_files(meta: dict[str, Any]) -> set[str]:
    """The files a data set with this meta.json consists of."""
    files = {"meta.json", *ARRAY_FILES}
    if meta.get("label_source") is not None:
        files.add("labels.npy")
    return files


def _check_replaceable(out_dir: Path) -> None:
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
        pass
    if meta.get("format") != FORMAT:
        listed = ", ".join(sorted(entries)[:_MAX_LISTED]) + (
            ", ..." if len(entries) > _MAX_LISTED else ""
        )
        raise UserError(
            f"{out_dir}: exists and is not a tokenized data set (it holds {listed}); "
            "tokenize would delete it: choose another --out, or empty the folder yourself"
        )
    own = _own_files(meta)
    unexpected = sorted(
        name for name, entry in entries.items()
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


def _replace_directory(temp: Path, out_dir: Path) -> None:
    """Rename the finished temp directory over `out_dir`, refusing to clobber non-data sets."""
    if out_dir.exists():
        _check_replaceable(out_dir)  # again: it may have changed while we tokenized
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
    _check_replaceable(out_dir)
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
        sources = {"fasta": _source(fasta)}
        if labels_table is not None:
            sources["labels"] = _source(Path(labels_table))
        if label_groups_table is not None:
            sources["label_groups"] = _source(Path(label_groups_table))
        meta["sources"] = sources
        meta["files"] = {
            name: {
                "bytes": (temp / name).stat().st_size,
                "sha256": tokens_sha256 if name == "tokens.bin" else sha256_file(temp / name),
            }
            for name in sorted(_own_files(meta) - {"meta.json"})
        }
        (temp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        _replace_directory(temp, out_dir)
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
    offsets = np.concatenate([[0], np.cumsum(np.concatenate(token_counts))]).astype(np.int64)
    np.save(temp / "offsets.npy", offsets)
    np.save(temp / "windows.npy", example_windows)
    if label_source is not None:
        per_record = np.zeros((len(record_ids), len(label_names)), dtype=np.uint8)
        for record_index, labels in record_labels.items():
            per_record[record_index] = labels
        np.save(temp / "labels.npy", per_record[example_windows[:, 0]])
    (temp / "records.txt").write_text("".join(f"{r}\n" for r in record_ids))
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


def label_groups_of(data: TokenizedDataset) -> dict[str, str]:
    """{label: group} of a data set (e.g. TF / DHS / histone); empty when it has none."""
    groups = data.label_groups
    if not groups:
        return {}
    if isinstance(groups, dict):
        return {str(k): str(v) for k, v in groups.items()}
    return {str(name): str(group) for name, group in zip(data.label_names, groups, strict=True)}
