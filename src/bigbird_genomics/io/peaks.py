"""Peak, TSS and blacklist files: BED3+/BED6/narrowPeak, plain or gzip, and peak sample sheets.

BED lines come from the one BED reader (`io.bed.iter_bed`); this module keeps the columns the
builders use (chrom, start, end, name, strand) and the peak-specific rules.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bigbird_genomics.errors import UserError
from bigbird_genomics.io.bed import iter_bed
from bigbird_genomics.io.text import utf8_errors


class PeakFileError(UserError):
    """A BED/narrowPeak file or a sample sheet that cannot be used as it is."""


@dataclass(frozen=True)
class BedRow:
    chrom: str
    start: int
    end: int
    strand: str = "."
    name: str | None = None
    line: int = 0


@dataclass(frozen=True)
class Profile:
    """One row of a sample sheet: a label name, its peak file and its group (TF/DHS/histone)."""

    name: str
    path: Path
    group: str


def read_bed_rows(path: str | Path) -> Iterator[BedRow]:
    """Rows of a BED-like peak file, plain or gzip (`io.bed.iter_bed`); empty intervals and
    strands other than +/- (narrowPeak's '.') as the peak readers need them."""
    for row in iter_bed(path, error=PeakFileError, what="peak file", empty_ok=False,
                        strict_strand=False):  # fmt: skip
        yield BedRow(row.chrom, row.start, row.end, row.strand, row.name, row.line)


def merged_intervals(path: str | Path) -> dict[str, np.ndarray]:
    """Per chromosome, sorted non-overlapping `[n, 2]` start/end arrays (peaks merged)."""
    by_chrom: dict[str, list[tuple[int, int]]] = {}
    for row in read_bed_rows(path):
        by_chrom.setdefault(row.chrom, []).append((row.start, row.end))
    merged: dict[str, np.ndarray] = {}
    for chrom, rows in by_chrom.items():
        rows.sort()
        out: list[list[int]] = []
        for start, end in rows:
            if out and start <= out[-1][1]:
                out[-1][1] = max(out[-1][1], end)
            else:
                out.append([start, end])
        merged[chrom] = np.array(out, dtype=np.int64)
    return merged


def covered_bases(intervals: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Bases of each query [start, end) covered by merged, sorted `intervals` (vectorised).

    Uses the cumulative covered length C(x) of bases < x: covered = C(end) - C(start).
    """
    if len(intervals) == 0:
        return np.zeros(len(starts), dtype=np.int64)
    lo, hi = intervals[:, 0], intervals[:, 1]
    before = np.concatenate([[0], np.cumsum(hi - lo)])

    def cumulative(x: np.ndarray) -> np.ndarray:
        done = np.searchsorted(hi, x, side="right")  # intervals ending at or before x
        partial = np.where(
            done < len(lo), np.clip(x - lo[np.minimum(done, len(lo) - 1)], 0, None), 0
        )
        return before[done] + partial

    return cumulative(ends) - cumulative(starts)


def read_sample_sheet(path: str | Path) -> list[Profile]:
    """Sample sheet TSV/CSV: columns `profile`, `path` and optional `group`.

    Relative peak paths are read relative to the sheet, so a sheet travels with its files.
    """
    path = Path(path)
    if not path.is_file():
        raise PeakFileError(f"{path}: no such sample sheet")
    with utf8_errors(path, PeakFileError, "sample sheet"):
        text = path.read_text(encoding="utf-8")
    delimiter = "," if path.suffix.lower() == ".csv" else "\t"
    rows = list(csv.DictReader(text.splitlines(), delimiter=delimiter))
    columns = set(rows[0]) if rows else set()
    if not {"profile", "path"} <= columns:
        raise PeakFileError(
            f"{path}: line 1: a sample sheet needs columns 'profile' and 'path' (and optionally "
            f"'group'), {'tab' if delimiter == chr(9) else 'comma'}-separated; "
            f"found {sorted(columns)}"
        )
    profiles: list[Profile] = []
    for number, row in enumerate(rows, start=2):
        name, peak_path = (row.get("profile") or "").strip(), (row.get("path") or "").strip()
        if not name or not peak_path:
            raise PeakFileError(f"{path}: line {number}: 'profile' and 'path' must not be empty")
        if any(p.name == name for p in profiles):
            raise PeakFileError(f"{path}: line {number}: profile {name!r} is listed twice")
        resolved = Path(peak_path) if Path(peak_path).is_absolute() else path.parent / peak_path
        if not resolved.is_file():
            raise PeakFileError(f"{path}: line {number}: peak file {resolved} does not exist")
        group = (row.get("group") or "").strip() or "unknown"
        profiles.append(Profile(name, resolved, group))
    if not profiles:
        raise PeakFileError(f"{path}: the sample sheet lists no profiles")
    return profiles


def n_runs(sequence: np.ndarray) -> np.ndarray:
    """`[runs, 2]` start/end of the N (and other non-ACGT) runs of an upper-case sequence.

    Runs are few even on a whole chromosome, so windows' N content is then counted with
    `covered_bases` instead of a per-base cumulative sum as large as the chromosome.
    """
    is_n = np.ones(len(sequence), dtype=np.int8)
    for base in b"ACGT":
        is_n[sequence == base] = 0
    edges = np.flatnonzero(np.diff(np.concatenate([[0], is_n, [0]]).astype(np.int8)))
    return edges.reshape(-1, 2).astype(np.int64)
