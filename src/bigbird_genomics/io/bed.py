"""The one BED reader: BED3..BED6+ and narrowPeak lines, plain text or gzip (ENCODE and Roadmap
ship peaks gzipped). Errors name the file and line and say how to fix them; the caller picks
the error class, so a peak file and an interval file each fail with their own kind of error.

Hand-written because pysam reads only bgzip/tabix-indexed BED and pybedtools needs the
bedtools binary; this is a line split with checks.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bigbird_genomics.errors import UserError
from bigbird_genomics.io.text import utf8_errors

STRANDS = ("+", "-", ".")


@dataclass(frozen=True)
class Interval:
    """One BED line: 0-based half-open [start, end) on `chrom`."""

    chrom: str
    start: int
    end: int
    name: str | None = None
    strand: str = "."
    score: str | None = None
    line: int = 0

    @property
    def label(self) -> str:
        """The BED name, or chrom:start-end(strand) when the name is missing or '.'."""
        return self.name or f"{self.chrom}:{self.start}-{self.end}({self.strand})"


def _open_text(path: Path, error: type[UserError], what: str) -> IO[str]:
    if not path.is_file():
        raise error(f"{path}: no such {what}")
    with open(path, "rb") as handle:
        magic = handle.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def iter_bed(
    path: str | os.PathLike,
    *,
    error: type[UserError] = UserError,
    what: str = "BED file",
    empty_ok: bool = True,
    strict_strand: bool = True,
) -> Iterator[Interval]:
    """Intervals of a BED-like file, skipping blank, '#', 'track' and 'browser' lines.

    `empty_ok`: a zero-length interval (start == end) is allowed (a TSS point); else refused.
    `strict_strand`: a sixth column other than '+', '-' or '.' is an error; else read as '.'
    (narrowPeak files put '.' there, some tools a score).
    """
    path = Path(path)
    with utf8_errors(path, error, what), _open_text(path, error, what) as stream:
        for number, text in enumerate(stream, start=1):
            if not text.strip() or text.startswith(("#", "track", "browser")):
                continue
            fields = text.rstrip("\r\n").split("\t")
            if len(fields) < 3:
                fields = text.split()
            if len(fields) < 3:
                raise error(
                    f"{path}: line {number}: BED needs at least 3 tab-separated columns "
                    "(chrom, start, end), as in BED or narrowPeak"
                )
            try:
                start, end = int(fields[1]), int(fields[2])
            except ValueError:
                raise error(
                    f"{path}: line {number}: start {fields[1]!r} and end {fields[2]!r} must be "
                    "whole numbers; is there an unmarked header line?"
                ) from None
            if start < 0 or end < start or (end == start and not empty_ok):
                need = "0 <= start <= end" if empty_ok else "0 <= start < end"
                raise error(
                    f"{path}: line {number}: need {need}, got {start}..{end} "
                    "(BED is 0-based half-open)"
                )
            name = fields[3] if len(fields) > 3 and fields[3] not in ("", ".") else None
            score = fields[4] if len(fields) > 4 else None
            strand = fields[5] if len(fields) > 5 else "."
            if strand not in STRANDS:
                if strict_strand:
                    raise error(
                        f"{path}: line {number}: strand {strand!r} must be '+', '-' or '.'"
                    )
                strand = "."
            yield Interval(fields[0], start, end, name, strand, score, number)
