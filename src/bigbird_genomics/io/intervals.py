"""Windows around BED intervals, cut out of a reference genome (strand-aware).

The genome is read with pyfaidx (random access through a .fai index, so a 3 Gbp genome is
never loaded). BED coordinates are 0-based half-open. Flanks are strand-aware: upstream is to
the left on '+' (and '.') and to the right on '-'; '-' windows are reverse-complemented.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pyfaidx
from Bio.Seq import reverse_complement
from tqdm import tqdm

from bigbird_genomics.errors import UserError
from bigbird_genomics.io.atomic import atomic_path
from bigbird_genomics.io.bed import Interval, iter_bed

DECOMPRESS_CHUNK = 1 << 20


class IntervalError(UserError):
    """A BED file, genome or interval that cannot be used; names file and line."""


@dataclass(frozen=True)
class Window:
    """A window cut around an interval; `sequence` reads 5'->3' on the interval's strand."""

    interval: Interval
    chrom: str
    start: int  # window on the genome's + strand, may reach past the chromosome when padded
    end: int
    strand: str
    sequence: str
    pad_left: int = 0  # N added before the chromosome start / after its end (genome orientation)
    pad_right: int = 0

    @property
    def id(self) -> str:
        return self.interval.label

    def header(self) -> str:
        """FASTA header text: id, then key=value fields that labels.header_fields can read.

        `region` is the part inside the chromosome; `pad=left,right` counts added Ns.
        """
        inside = f"{self.chrom}:{self.start + self.pad_left}-{self.end - self.pad_right}"
        pads = f" pad={self.pad_left},{self.pad_right}" if self.pad_left or self.pad_right else ""
        return f"{self.id} region={inside} strand={self.strand}{pads}"


def read_bed(path: str | os.PathLike) -> list[Interval]:
    """BED3..BED6+ lines (plain or gzip; `io.bed.iter_bed`); zero-length intervals allowed."""
    return list(iter_bed(path, error=IntervalError, what="BED file"))


def _index_path(path: Path) -> str | None:
    """Where the .fai goes: beside the genome, or a cache folder when that is read-only."""
    beside = Path(f"{path}.fai")
    if beside.exists() or os.access(path.parent, os.W_OK):
        return None
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "bigbird-genomics"
    cache.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
    return str(cache / f"{path.name}.{digest}.fai")


def _stale_index(path: Path, index: Path) -> str | None:
    """Why the .fai `index` does not describe the FASTA `path` (None when it does).

    pyfaidx rebuilds an index older than its FASTA, but a FASTA copied or synced with its old
    time stamp (`cp -p`, rsync, an archive) looks fresh, and a stale index then cuts sequences
    at the wrong bytes ('>' and header text inside a window). So each entry's bytes are checked
    where it says they are: a newline before the sequence, no '>' in its first line, and its
    end inside the file. One short read per sequence; bgzip files are checked by time only.
    """
    if index.stat().st_mtime < path.stat().st_mtime:
        return "it is older than the FASTA"
    with open(path, "rb") as handle:
        if handle.read(2) == b"\x1f\x8b":
            return None
        size = path.stat().st_size
        with open(index, encoding="utf-8", errors="replace") as entries:
            for number, line in enumerate(entries, start=1):
                fields = line.rstrip("\n").split("\t")
                try:
                    name = fields[0]
                    length, offset, line_bases, line_bytes = (int(v) for v in fields[1:5])
                except ValueError:
                    return f"line {number} is not a .fai entry"
                lines = -(-length // line_bases) if line_bases else 0
                end = offset + length + lines * (line_bytes - line_bases)
                if offset < 1 or end > size + (line_bytes - line_bases):
                    return f"sequence {name!r} would end past the end of the FASTA"
                handle.seek(offset - 1)
                first = handle.read(1 + min(length, line_bases))
                if first[:1] != b"\n" or b">" in first[1:]:
                    return f"sequence {name!r} does not start where the index says"
    return None


def open_genome(
    path: str | os.PathLike, decompress_to: str | os.PathLike | None = None
) -> pyfaidx.Fasta:
    """Open a plain or bgzip FASTA genome for random access (builds the .fai if needed).

    A plain-gzip genome (most downloads: hg38.fa.gz) has no random access; with `decompress_to`
    it is decompressed there once (`decompress_genome`) and that copy is opened instead. An
    index that no longer fits its FASTA is rebuilt (`_stale_index`).
    """
    path = Path(path)
    if not path.is_file():
        raise IntervalError(f"{path}: no such genome FASTA")
    index_name = _index_path(path)
    index = Path(index_name or f"{path}.fai")
    if index.is_file():
        reason = _stale_index(path, index)
        if reason is not None:
            if not os.access(index.parent, os.W_OK):
                raise IntervalError(
                    f"{index}: this index does not fit {path} ({reason}: the FASTA changed "
                    f"after indexing) and its folder is read-only; rebuild it with "
                    f"`samtools faidx {path}` where you can write, or ask the owner to"
                )
            index.unlink()
    try:
        return pyfaidx.Fasta(str(path), indexname=index_name, as_raw=True)
    except pyfaidx.UnsupportedCompressionFormat:
        if decompress_to is None:
            raise IntervalError(
                f"{path}: is gzip- but not bgzip-compressed, so it has no random access; pass "
                "--decompress-to PATH (the plain FASTA is written there once and reused), or "
                f"decompress it yourself (`gunzip -k {path}`) and give that file"
            ) from None
        return open_genome(decompress_genome(path, decompress_to))
    except (pyfaidx.FastaIndexingError, ValueError) as error:
        raise IntervalError(f"{path}: cannot index this genome FASTA ({error})") from None


def decompress_genome(source: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Write gzip `source` decompressed to `target` (atomically), unless `target` is already
    there and newer than `source`: a genome is decompressed once, not on every run."""
    source, target = Path(source), Path(target)
    if target.resolve() == source.resolve():
        raise IntervalError(f"{target}: --decompress-to must differ from the gzip genome itself")
    if target.is_file() and target.stat().st_mtime >= source.stat().st_mtime:
        return target
    with (
        source.open("rb") as raw,
        gzip.GzipFile(fileobj=raw) as stream,
        atomic_path(target) as temporary,
        temporary.open("wb") as out,
        tqdm(total=source.stat().st_size, unit="B", unit_scale=True, desc="decompress",
             disable=None) as bar,  # fmt: skip
    ):
        while chunk := stream.read(DECOMPRESS_CHUNK):
            out.write(chunk)
            bar.update(raw.tell() - bar.n)  # progress in compressed bytes read
    return target


def extract_intervals(
    genome: str | os.PathLike | pyfaidx.Fasta,
    intervals: Iterable[Interval],
    *,
    flank_bp: int = 0,
    upstream_bp: int | None = None,
    downstream_bp: int | None = None,
    off_chrom: Literal["pad", "drop"] = "pad",
    bed_path: str | os.PathLike | None = None,
) -> Iterator[Window]:
    """Yield one window per interval: the interval plus strand-aware flanks.

    `flank_bp` widens both sides; `upstream_bp` / `downstream_bp` override one side each
    (e.g. a 1-bp TSS with upstream 249 and downstream 50). Windows running off a chromosome
    end are padded with N (`off_chrom="pad"`) or skipped (`"drop"`).
    """
    if off_chrom not in ("pad", "drop"):
        raise IntervalError(f"off-chromosome policy must be 'pad' or 'drop', not {off_chrom!r}")
    upstream = flank_bp if upstream_bp is None else upstream_bp
    downstream = flank_bp if downstream_bp is None else downstream_bp
    if min(upstream, downstream) < 0:
        raise IntervalError(
            f"flanks must be >= 0 bp, got upstream {upstream}, downstream {downstream}"
        )
    fasta = genome if isinstance(genome, pyfaidx.Fasta) else open_genome(genome)
    source = bed_path or "intervals"
    for interval in intervals:
        if interval.chrom not in fasta:
            known = ", ".join(list(fasta.keys())[:5])
            raise IntervalError(
                f"{source}: line {interval.line}: chromosome {interval.chrom!r} is not in the "
                f"genome {fasta.filename} (it has {known}, ...); check the genome build and "
                "chromosome names (chr1 vs 1)"
            )
        length = len(fasta[interval.chrom])
        if interval.end > length:
            raise IntervalError(
                f"{source}: line {interval.line}: interval ends at {interval.end} but "
                f"{interval.chrom} has {length} bp; is the BED file for another genome build?"
            )
        left, right = (downstream, upstream) if interval.strand == "-" else (upstream, downstream)
        start, end = interval.start - left, interval.end + right
        if end <= start:
            raise IntervalError(
                f"{source}: line {interval.line}: the interval {interval.chrom}:{interval.start}-"
                f"{interval.end} is empty (start = end) and no flank widens it, so its record "
                "would have no sequence; give a flank (--flank-bp) or fix the interval"
            )
        pad_left, pad_right = max(0, -start), max(0, end - length)
        if (pad_left or pad_right) and off_chrom == "drop":
            continue
        inner = fasta[interval.chrom][max(0, start) : min(end, length)]
        sequence = "N" * pad_left + str(inner) + "N" * pad_right
        if interval.strand == "-":
            sequence = reverse_complement(sequence)
        yield Window(
            interval, interval.chrom, start, end, interval.strand, sequence, pad_left, pad_right
        )
