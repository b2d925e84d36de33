"""BED intervals out of a genome: both strands against a hand-checked example."""

from __future__ import annotations

from pathlib import Path

import pytest

from bigbird_genomics.io.intervals import (
    Interval,
    IntervalError,
    extract_intervals,
    open_genome,
    read_bed,
)

#            0123456789 0123456789
CHR1 = "AAAACCCCGGGGTTTTACGT"


@pytest.fixture
def genome(tmp_path: Path) -> Path:
    path = tmp_path / "genome.fa"
    path.write_text(f">chr1 test\n{CHR1[:10]}\n{CHR1[10:]}\n>chr2\nacgtNNacgt\n")
    return path


def extract(genome: Path, *intervals: Interval, **options) -> list[tuple[str, str]]:
    return [(w.header(), w.sequence) for w in extract_intervals(genome, intervals, **options)]


def test_plus_and_minus_strand_by_hand(genome):
    plus = Interval("chr1", 2, 6, "p", "+")  # AACC
    minus = Interval("chr1", 2, 6, "m", "-")  # reverse complement of AACC
    assert extract(genome, plus, minus) == [
        ("p region=chr1:2-6 strand=+", "AACC"),
        ("m region=chr1:2-6 strand=-", "GGTT"),
    ]


def test_flanks_are_strand_aware(genome):
    plus = Interval("chr1", 4, 6, "p", "+")
    minus = Interval("chr1", 4, 6, "m", "-")
    got = extract(genome, plus, minus, upstream_bp=3, downstream_bp=1)
    # + : 3 upstream on the left, 1 downstream on the right: [1, 7) = AAACCC
    # - : 3 upstream on the right, 1 downstream on the left: [3, 9) = ACCCCG -> CGGGGT
    assert got == [
        ("p region=chr1:1-7 strand=+", "AAACCC"),
        ("m region=chr1:3-9 strand=-", "CGGGGT"),
    ]


def test_off_chromosome_padded_or_dropped(genome):
    edge = Interval("chr1", 17, 20, "e", "+")
    start = Interval("chr2", 0, 2, "s", "-")
    assert extract(genome, edge, start, flank_bp=2) == [
        ("e region=chr1:15-20 strand=+ pad=0,2", "TACGTNN"),
        # NN + acgt on the + strand, reverse-complemented: soft-masked case is kept
        ("s region=chr2:0-4 strand=- pad=2,0", "acgtNN"),
    ]
    assert extract(genome, edge, start, flank_bp=2, off_chrom="drop") == []


def test_empty_interval_needs_a_flank(genome):
    """BED allows start = end (an insertion point); only a flank gives it a sequence."""
    point = Interval("chr1", 4, 4, "pt", "+", line=2)
    assert extract(genome, point, flank_bp=2) == [("pt region=chr1:2-6 strand=+", "AACC")]
    with pytest.raises(IntervalError, match=r"line 2: the interval chr1:4-4 is empty"):
        extract(genome, point)


def test_unknown_chromosome_and_interval_past_the_end(genome):
    with pytest.raises(IntervalError, match="chromosome 'chrX' is not in the genome"):
        extract(genome, Interval("chrX", 0, 5, line=7))
    with pytest.raises(IntervalError, match="interval ends at 25 but chr1 has 20 bp"):
        extract(genome, Interval("chr1", 0, 25, line=3))


def test_plain_gzip_genome_is_refused_with_advice(tmp_path):
    import gzip

    path = tmp_path / "g.fa.gz"
    path.write_bytes(gzip.compress(b">chr1\nACGT\n"))
    with pytest.raises(IntervalError, match="not bgzip-compressed.*--decompress-to PATH"):
        extract(path, Interval("chr1", 0, 2))


def test_plain_gzip_genome_is_decompressed_once(tmp_path, genome):
    """No bgzip binary needed: the plain copy is written where asked and reused after."""
    import gzip
    import os

    packed = tmp_path / "genome.fa.gz"
    packed.write_bytes(gzip.compress(genome.read_bytes()))
    plain = tmp_path / "plain" / "genome.fa"
    fasta = open_genome(packed, decompress_to=plain)
    assert plain.read_bytes() == genome.read_bytes()
    assert plain.stat().st_mode & 0o777 == 0o644
    windows = list(extract_intervals(fasta, [Interval("chr1", 2, 6, strand="-")]))
    assert windows[0].sequence == "GGTT"  # reverse complement of AACC
    plain.write_text(">chr1\nCCCC\n")
    Path(f"{plain}.fai").unlink()
    os.utime(plain, (1e9, 1e9))
    os.utime(packed, (1e9 - 10, 1e9 - 10))  # the copy is the newer: reused as it is
    assert open_genome(packed, decompress_to=plain)["chr1"][0:4] == "CCCC"
    os.utime(packed, (1e9 + 10, 1e9 + 10))  # the genome changed: decompressed again
    assert open_genome(packed, decompress_to=plain)["chr1"][0:4] == "AAAA"
    with pytest.raises(IntervalError, match="must differ"):
        open_genome(packed, decompress_to=packed)


def test_extract_command_decompresses_a_plain_gzip_genome(tmp_path, genome):
    import gzip

    from bigbird_genomics.cli import main

    packed = tmp_path / "genome.fa.gz"
    packed.write_bytes(gzip.compress(genome.read_bytes()))
    bed = tmp_path / "sites.bed"
    bed.write_text("chr1\t4\t8\tsite\t0\t+\n")
    out = tmp_path / "windows.fa"
    args = ["extract", "--genome", str(packed), "--bed", str(bed), "--out", str(out)]
    assert main(args) == 2  # refused, with the advice
    assert main([*args, "--decompress-to", str(tmp_path / "genome.fa")]) == 0
    assert out.read_text().splitlines()[1] == "CCCC"


def test_read_bed_columns_and_errors(tmp_path):
    bed = tmp_path / "a.bed"
    bed.write_text("track name=x\n# comment\nchr1\t2\t6\tp\t0\t-\nchr2\t0\t3\n")
    assert read_bed(bed) == [
        Interval("chr1", 2, 6, "p", "-", "0", 3),
        Interval("chr2", 0, 3, None, ".", None, 4),
    ]
    assert read_bed(bed)[1].label == "chr2:0-3(.)"
    bed.write_text("chr1\t6\t2\n")
    with pytest.raises(IntervalError, match=r"a.bed: line 1: need 0 <= start <= end"):
        read_bed(bed)
    bed.write_text("chr1\t1\t2\tn\t0\t*\n")
    with pytest.raises(IntervalError, match="line 1: strand '\\*'"):
        read_bed(bed)
    bed.write_text("chr1\tone\t2\n")
    with pytest.raises(IntervalError, match="must be whole numbers"):
        read_bed(bed)
