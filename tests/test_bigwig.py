"""predict's genome tracks: bigWig per label (read back with pyBigWig) and merged peaks (BED)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyBigWig
import pytest
from test_predict import MotifCounter, random_dna, read_bedgraph, write_fasta

from bigbird_genomics.errors import UserError
from bigbird_genomics.inference.scan import predict_fasta
from bigbird_genomics.io.bed_out import Peak, merge_peaks, write_peaks


@pytest.fixture
def genome(tmp_path: Path) -> Path:
    rng = np.random.default_rng(5)
    chr_a = list(random_dna(rng, 600).replace("GAT", "GCT"))
    for position in (90, 100, 400):
        chr_a[position : position + 7] = "GATTACA"
    chr_a[500:560] = "N" * 60  # unscored windows: a gap in every track
    records = {"chrA": "".join(chr_a), "chrB": random_dna(rng, 45), "chrC": "GATTACA" * 3}
    return write_fasta(tmp_path / "genome.fa", records)


def test_bigwig_values_equal_the_bedgraph(tmp_path: Path, genome: Path) -> None:
    summary = predict_fasta(
        MotifCounter(), genome, tmp_path / "o.tsv", bedgraph=tmp_path / "o.bedGraph",
        bigwig=tmp_path / "o", strands="forward",
    )
    assert [path.name for path in summary.bigwigs] == ["o.motif.bw", "o.unknown.bw"]
    tracks = read_bedgraph(tmp_path / "o.bedGraph")
    for label, entries in tracks.items():
        track = pyBigWig.open(str(tmp_path / f"o.{label}.bw"))
        assert track.chroms() == {"chrA": 600, "chrB": 45, "chrC": 21}
        read_back = [
            (chrom, start, end, value)
            for chrom in ("chrA", "chrB", "chrC")
            for start, end, value in (track.intervals(chrom) or [])
        ]
        track.close()
        assert [entry[:3] for entry in read_back] == [entry[:3] for entry in entries]
        values = np.array([entry[3] for entry in entries])
        assert np.array([e[3] for e in read_back]) == pytest.approx(values, rel=1e-6, abs=1e-7)
    # a bigWig alone (no bedGraph) holds the same intervals
    predict_fasta(MotifCounter(), genome, tmp_path / "p.tsv", bigwig=tmp_path / "p",
                  strands="forward")  # fmt: skip
    alone = pyBigWig.open(str(tmp_path / "p.motif.bw"))
    assert alone.intervals("chrA") == pyBigWig.open(str(tmp_path / "o.motif.bw")).intervals("chrA")
    assert not list(tmp_path.glob(".*"))  # no temp files left


def test_peaks_merge_consecutive_windows(tmp_path: Path, genome: Path) -> None:
    threshold = 0.2
    summary = predict_fasta(
        MotifCounter(), genome, tmp_path / "o.tsv", bedgraph=tmp_path / "o.bedGraph",
        peaks=tmp_path / "peaks.bed", threshold=threshold, strands="forward",
    )
    rows = [line.split("\t") for line in (tmp_path / "peaks.bed").read_text().splitlines()]
    assert len(rows) == summary.num_peaks > 0
    # expected: merge the bedGraph's own intervals, label by label, then sort like the file
    tracks = read_bedgraph(tmp_path / "o.bedGraph")
    order = {"chrA": 0, "chrB": 1, "chrC": 2}
    expected = sorted(
        (peak for label, entries in tracks.items() for peak in merge_peaks(entries, threshold,
                                                                            label)),
        key=lambda p: (order[p.chrom], p.start, list(tracks).index(p.name)),
    )
    assert [(r[0], int(r[1]), int(r[2]), r[3]) for r in rows] == [
        (p.chrom, p.start, p.end, p.name) for p in expected
    ]
    assert [float(r[4]) for r in rows] == pytest.approx([p.score for p in expected], rel=1e-5)
    assert all(r[5] == "." for r in rows)
    # the motif at 90/100 spans several windows: one merged peak, not one per window
    motif_peaks = [p for p in expected if p.name == "motif" and p.chrom == "chrA"]
    assert motif_peaks[0].start < 90 < 107 < motif_peaks[0].end
    # the middle of the N run scores high on "unknown" but its windows are unscored: a gap in
    # the track, so no peak runs through it
    assert not any(e[0] == "chrA" and e[1] <= 530 < e[2] for e in tracks["unknown"])
    assert not any(p.chrom == "chrA" and p.start <= 530 < p.end for p in expected)


def test_merge_peaks_rules() -> None:
    entries = [
        ("c1", 0, 10, 0.9), ("c1", 10, 20, 0.6), ("c1", 20, 30, 0.1),  # below: ends a peak
        ("c1", 30, 40, 0.7), ("c1", 50, 60, 0.8),  # a gap (unscored window): two peaks
        ("c2", 0, 10, 0.7), ("c2", 10, 20, 0.5),  # another record: a new peak; 0.5 >= 0.5
    ]  # fmt: skip
    assert list(merge_peaks(entries, 0.5, "x")) == [
        Peak("c1", 0, 20, "x", 0.9),
        Peak("c1", 30, 40, "x", 0.7),
        Peak("c1", 50, 60, "x", 0.8),
        Peak("c2", 0, 20, "x", 0.7),
    ]
    assert list(merge_peaks(entries, 0.95, "x")) == []


def test_peak_and_bigwig_errors(tmp_path: Path, genome: Path) -> None:
    with pytest.raises(UserError, match="--threshold"):
        predict_fasta(MotifCounter(), genome, tmp_path / "o.tsv", peaks=tmp_path / "p.bed",
                      threshold=1.5)  # fmt: skip
    assert write_peaks(tmp_path / "empty.bed", []) == 0
    assert (tmp_path / "empty.bed").read_text() == ""
