"""Atomic writing of FASTA and TSV files, so an interrupted build never leaves half a file.

FASTA is written by hand rather than with Bio.SeqIO because the builders keep soft-masked
(lower-case) letters and `key=value` header fields exactly as given, and sequences live in
numpy arrays that SeqIO would first copy into `Seq` objects.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO

import numpy as np

FASTA_LINE_WIDTH = 60


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str]) -> Iterator[IO[str]]:
    """Open a temporary text file beside `path`; it replaces `path` only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "w", encoding="ascii", newline="\n") as stream:
            yield stream
        os.chmod(temp_name, 0o644)  # mkstemp makes 0600; outputs are ordinary shared files
        os.replace(temp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise


def as_text(sequence: str | np.ndarray) -> str:
    """A sequence as a str, whether it is already one or an ASCII uint8 array."""
    if isinstance(sequence, str):
        return sequence
    return np.ascontiguousarray(sequence, dtype=np.uint8).tobytes().decode("ascii")


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
    """Write (header, sequence) pairs as FASTA, atomically; returns the path."""
    with atomic_open(path) as stream:
        for header, sequence in records:
            text = as_text(sequence)
            stream.write(f">{header}\n")
            for start in range(0, len(text), line_width):
                stream.write(text[start : start + line_width])
                stream.write("\n")
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
