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
from pathlib import Path
from typing import Any

import numpy as np

from bigbird_genomics.errors import UserError
from bigbird_genomics.io.labels import (
    CLASS_LABEL,
    MAX_CLASS,
    SPLITS,
)
from bigbird_genomics.tokens.kmers import KmerTokenizer, TokenizerConfigError

FORMAT = "bigbird-genomics-tokenized"
FORMAT_VERSION = 1
# Every data set has these beside meta.json; labelled ones also labels.npy.
ARRAY_FILES = ("tokens.bin", "offsets.npy", "windows.npy", "split.npy", "records.txt")
MAX_LISTED = 10  # files named in an error message, at most


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


def own_files(meta: dict[str, Any]) -> set[str]:
    """The files a data set with this meta.json consists of."""
    files = {"meta.json", *ARRAY_FILES}
    if meta.get("label_source") is not None:
        files.add("labels.npy")
    if meta.get("corpus") is not None:  # a pretraining corpus (tokens/corpus.py)
        files.add("strands.npy")
    return files


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
        for name in sorted(own_files(meta) - {"meta.json"}):
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


def label_groups_of(data: TokenizedDataset) -> dict[str, str]:
    """{label: group} of a data set (e.g. TF / DHS / histone); empty when it has none."""
    groups = data.label_groups
    if not groups:
        return {}
    if isinstance(groups, dict):
        return {str(k): str(v) for k, v in groups.items()}
    return {str(name): str(group) for name, group in zip(data.label_names, groups, strict=True)}
