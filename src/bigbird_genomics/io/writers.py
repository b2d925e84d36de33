"""Atomic writing of FASTA and TSV files, so an interrupted build never leaves half a file.

FASTA goes through `fasta.write_fasta`, not Bio.SeqIO: the builders keep soft-masked
(lower-case) letters and `key=value` header fields exactly as given, and sequences live in
numpy arrays that SeqIO would first copy into `Seq` objects.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from bigbird_genomics.io.atomic import remove_stale, temp_prefix

FASTA_LINE_WIDTH = 60


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str]) -> Iterator[IO[str]]:
    """Open a temporary text file beside `path`; it replaces `path` only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(target)
    handle, temp_name = tempfile.mkstemp(prefix=temp_prefix(target), dir=target.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
            yield stream
        os.chmod(temp_name, 0o644)  # mkstemp makes 0600; outputs are ordinary shared files
        os.replace(temp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise


def format_header(record_id: str, fields: dict[str, object] | None = None) -> str:
    """`id key=value ...`: the header form that `labels` parses (`label=1 split=train`)."""
    parts = [record_id]
    for key, value in (fields or {}).items():
        parts.append(f"{key}={value}")
    return " ".join(parts)


def write_fasta(
    path: str | os.PathLike[str],
    records: Iterable[tuple[str, str | np.ndarray]],
    line_width: int = FASTA_LINE_WIDTH,
) -> Path:
    """Write (header, sequence) pairs as FASTA, atomically (gzip if the path ends in .gz)."""
    from bigbird_genomics.io.fasta import write_fasta as write_fasta_records

    write_fasta_records(path, records, line_width)
    return Path(path)


def write_tsv(
    path: str | os.PathLike[str],
    columns: Sequence[str] | None,
    rows: Iterable[Sequence[object]],
) -> Path:
    """Write a tab-separated table, with a header line unless `columns` is None (BED)."""
    with atomic_open(path) as stream:
        if columns is not None:
            stream.write("\t".join(columns) + "\n")
        for row in rows:
            stream.write("\t".join(str(value) for value in row) + "\n")
    return Path(path)


def write_json(path: str | os.PathLike[str], payload: dict) -> None:
    """Atomic, indented JSON; NaN (an undefined AUROC) is written as null."""
    with atomic_open(path) as handle:
        json.dump(_plain(payload), handle, indent=2, sort_keys=True)
        handle.write("\n")


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
