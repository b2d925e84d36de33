"""bigWig tracks: what genome browsers (IGV, UCSC) and deepTools read for whole-genome signal.

bedGraph is text and has to be converted for a browser to load a genome's worth of it; a bigWig
is indexed and zoomable. pyBigWig writes it from entries streamed in chunks, so memory holds
one chunk, not a genome.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import pyBigWig

from bigbird_genomics.errors import UserError
from bigbird_genomics.io.atomic import atomic_path

CHUNK_ENTRIES = 100_000


def bigwig_path(prefix: str | os.PathLike[str], label: str) -> Path:
    """`PREFIX.<label>.bw`: one file per label."""
    return Path(f"{prefix}.{label}.bw")


def write_bigwig(
    path: str | os.PathLike[str],
    chrom_sizes: Sequence[tuple[str, int]],
    entries: Iterable[tuple[str, int, int, float]],
) -> Path:
    """Write `(chrom, start, end, value)` entries (in `chrom_sizes` order, sorted, not
    overlapping) to a bigWig at `path`, atomically."""
    if not chrom_sizes:
        raise UserError(f"{path}: no records to write a bigWig for")
    with atomic_path(path) as temp:
        track = pyBigWig.open(str(temp), "w")
        try:
            track.addHeader([(str(name), int(size)) for name, size in chrom_sizes])
            for chroms, starts, ends, values in _chunks(entries):
                track.addEntries(chroms, starts, ends=ends, values=values)
        finally:
            track.close()
    return Path(path)


def _chunks(
    entries: Iterable[tuple[str, int, int, float]],
) -> Iterator[tuple[list[str], list[int], list[int], list[float]]]:
    chroms: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    values: list[float] = []
    for chrom, start, end, value in entries:
        chroms.append(chrom)
        starts.append(int(start))
        ends.append(int(end))
        values.append(float(value))
        if len(chroms) == CHUNK_ENTRIES:
            yield chroms, starts, ends, values
            chroms, starts, ends, values = [], [], [], []
    if chroms:
        yield chroms, starts, ends, values


def read_bedgraph(path: str | os.PathLike[str]) -> Iterator[tuple[str, str, int, int, float]]:
    """(track name, chrom, start, end, value) for every line of a multi-track bedGraph, streaming
    (group by the first field, e.g. with `itertools.groupby`, for one track at a time)."""
    path = Path(path)
    name: str | None = None
    with path.open(encoding="utf-8") as stream:
        for number, line in enumerate(stream, start=1):
            if line.startswith("track"):
                name = _track_name(line)
                continue
            fields = line.rstrip("\n").split("\t")
            if name is None or len(fields) != 4:
                raise UserError(
                    f"{path}: line {number}: expected a 'track name=...' line, then lines of 4 "
                    "tab-separated fields (chrom, start, end, value), as "
                    "`bigbird-genomics predict --bedgraph` writes"
                )
            yield name, fields[0], int(fields[1]), int(fields[2]), float(fields[3])


def _track_name(line: str) -> str:
    if 'name="' in line:
        return line.split('name="', 1)[1].split('"', 1)[0]
    for word in line.split():
        if word.startswith("name="):
            return word[len("name=") :]
    return "track"
