"""Join the outputs of `predict --shard I/N` jobs into the outputs of one unsharded run.

Shard I scored records I, I + N, I + 2N, ... of the FASTA, so FASTA order is restored by taking
rows round-robin: record j is row j // N of shard j % N. Nothing but the shards' own files is
read (record lengths come from the TSVs' `length` column), so the gather job needs neither the
FASTA nor the model. Streams: one line per open shard file in memory.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from bigbird_genomics.errors import UserError
from bigbird_genomics.inference.scan import bedgraph_track_line
from bigbird_genomics.io.atomic import atomic_path
from bigbird_genomics.io.bigwig import bigwig_path, read_bedgraph, write_bigwig
from bigbird_genomics.io.writers import atomic_open


class ShardError(UserError):
    """Shard outputs that do not come from one `predict --shard I/N` split."""


@dataclass
class GatherSummary:
    num_shards: int = 0
    num_records: int = 0
    label_names: list[str] = field(default_factory=list)
    bigwigs: list[Path] = field(default_factory=list)


def _read_shard_tsv(path: Path) -> tuple[str, list[str]]:
    if not path.is_file():
        raise ShardError(f"{path}: no such shard TSV; run `bigbird-genomics predict --shard` first")
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or not lines[0].startswith("id\tlength\t"):
        raise ShardError(f"{path}: line 1: not a `bigbird-genomics predict` TSV (no id/length)")
    return lines[0], lines[1:]


def _labels_of(header: str) -> list[str]:
    """Label names of a predict TSV header (`id length <label>_max <label>_mean ...`)."""
    return [column[: -len("_max")] for column in header.split("\t")[3::2]]


def label_names(tsv: str | os.PathLike[str]) -> list[str]:
    """The labels of a shard TSV from its first line (nothing when it is not a readable predict
    TSV: `gather_predictions` names that problem): what the bigWig outputs are named after."""
    try:
        with open(tsv, encoding="utf-8") as stream:
            header = stream.readline().rstrip("\n")
    except (OSError, UnicodeDecodeError):
        return []
    return _labels_of(header) if header.startswith("id\tlength\t") else []


def gathered_order(counts: Sequence[int]) -> list[tuple[int, int]]:
    """(shard, row) of each record in FASTA order, checking that the counts fit a round-robin
    split (shard i holds ceil((R - i) / N) of R records)."""
    shards, total = len(counts), sum(counts)
    expected = [len(range(index, total, shards)) for index in range(shards)]
    if list(counts) != expected:
        raise ShardError(
            f"the shards hold {list(counts)} records, not the {expected} of a {shards}-way "
            "`predict --shard I/N` split of one FASTA; pass every shard's output, in order 0..N-1"
        )
    return [(index % shards, index // shards) for index in range(total)]


def gather_predictions(
    tsvs: Sequence[str | os.PathLike[str]],
    out_tsv: str | os.PathLike[str],
    bedgraphs: Sequence[str | os.PathLike[str]] = (),
    out_bedgraph: str | os.PathLike[str] | None = None,
    bigwig: str | os.PathLike[str] | None = None,
) -> GatherSummary:
    """Write the TSV (and bedGraph, bigWig per label) of the whole FASTA from its shards'."""
    paths = [Path(path) for path in tsvs]
    if not paths:
        raise ShardError("no shard TSVs given; pass --tsv with every shard's TSV, in order")
    if (out_bedgraph is not None or bigwig is not None) and len(bedgraphs) != len(paths):
        raise ShardError(
            f"{len(paths)} shard TSVs but {len(bedgraphs)} shard bedGraphs; a bedGraph or bigWig "
            "output needs every shard's bedGraph (--bedgraphs), in the same order"
        )
    tables = [_read_shard_tsv(path) for path in paths]
    headers = {header for header, _ in tables}
    if len(headers) != 1:
        raise ShardError(
            f"{', '.join(map(str, paths))}: the shards' columns differ; they were scored by "
            "different models: gather the shards of one run"
        )
    header = headers.pop()
    order = gathered_order([len(rows) for _, rows in tables])
    rows = [tables[shard][1][row] for shard, row in order]
    chrom_sizes = [(row.split("\t")[0], int(row.split("\t")[1])) for row in rows]
    labels = _labels_of(header)
    summary = GatherSummary(len(paths), len(rows), labels)
    with atomic_open(out_tsv) as stream:
        stream.write(header + "\n")
        stream.writelines(row + "\n" for row in rows)
    if out_bedgraph is None and bigwig is None:
        return summary
    with contextlib.ExitStack() as stack:
        if out_bedgraph is not None:
            joined = stack.enter_context(atomic_path(out_bedgraph))
        else:  # a bigWig alone: the joined bedGraph is scratch, beside the output
            Path(out_tsv).parent.mkdir(parents=True, exist_ok=True)
            joined = Path(
                stack.enter_context(
                    tempfile.NamedTemporaryFile(dir=Path(out_tsv).parent, suffix=".bedGraph.tmp")
                ).name
            )
        with joined.open("w", encoding="utf-8") as stream:
            _gather_bedgraphs([Path(p) for p in bedgraphs], stream, labels, chrom_sizes)
        if bigwig is not None:
            # one bigWig per label, as `predict` writes, also for a label without intervals
            # (no window scored): groupby yields only the tracks that have lines
            tracks = itertools.groupby(read_bedgraph(joined), key=lambda entry: entry[0])
            track = next(tracks, None)
            for label in labels:
                entries: Iterator = iter(())
                if track is not None and track[0] == label:
                    entries = (entry[1:] for entry in track[1])
                summary.bigwigs.append(
                    write_bigwig(bigwig_path(bigwig, label), chrom_sizes, entries)
                )
                if track is not None and track[0] == label:
                    track = next(tracks, None)
            if track is not None:
                raise ShardError(
                    f"the shard bedGraphs hold track {track[0]!r}, which is not a label of the "
                    "shard TSVs; gather the bedGraphs and TSVs of one run"
                )
    return summary


def _gather_bedgraphs(
    paths: list[Path],
    out: IO[str],
    labels: list[str],
    chrom_sizes: list[tuple[str, int]],
) -> None:
    """Per label, every record's lines from its shard, in FASTA order (a record with no scored
    window has no lines)."""
    for path in paths:
        if not path.is_file():
            raise ShardError(f"{path}: no such shard bedGraph")
    readers = [_Peekable(_label_lines(path)) for path in paths]
    for label in labels:
        out.write(bedgraph_track_line(label))
        for index, (record, _) in enumerate(chrom_sizes):
            reader = readers[index % len(paths)]
            while (line := reader.peek()) is not None and line[0] == label and line[1] == record:
                out.write(line[2])
                next(reader)
    for path, reader in zip(paths, readers, strict=True):
        if (line := reader.peek()) is not None:
            raise ShardError(
                f"{path}: has intervals of record {line[1]!r} (track {line[0]!r}) that its TSV "
                "does not list in that order; gather the bedGraphs and TSVs of one run"
            )


def _label_lines(path: Path) -> Iterator[tuple[str, str, str]]:
    """(track name, record id, line) of each interval line of a bedGraph."""
    label = None
    with path.open(encoding="utf-8") as stream:
        for line in stream:
            if line.startswith("track"):
                label = line.split('name="', 1)[1].split('"', 1)[0] if 'name="' in line else None
                continue
            yield label or "", line.split("\t", 1)[0], line


class _Peekable:
    def __init__(self, items: Iterator[tuple[str, str, str]]) -> None:
        self.items = items
        self.head = next(items, None)

    def peek(self) -> tuple[str, str, str] | None:
        return self.head

    def __next__(self) -> tuple[str, str, str] | None:
        head, self.head = self.head, next(self.items, None)
        return head
