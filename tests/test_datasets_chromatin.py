"""Chromatin builder: bin labels on a hand-made genome and peak files, negatives, splits."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from bigbird_genomics.builders.chromatin import ChromatinSettings, label_bins
from bigbird_genomics.builders.motifs import random_bases
from bigbird_genomics.cli import main
from bigbird_genomics.io.fasta import read_fasta
from bigbird_genomics.io.labels import header_fields
from bigbird_genomics.io.peaks import covered_bases, merged_intervals, n_runs


def test_covered_bases_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    starts = np.sort(rng.choice(1000, 20, replace=False)) * 10
    intervals = np.stack([starts, starts + rng.integers(1, 9, 20)], axis=1)
    mask = np.zeros(11_000, dtype=bool)
    for lo, hi in intervals:
        mask[lo:hi] = True
    queries = rng.integers(0, 10_000, 200)
    lengths = rng.integers(0, 500, 200)
    expected = [mask[q : q + n].sum() for q, n in zip(queries, lengths, strict=True)]
    assert covered_bases(intervals, queries, queries + lengths).tolist() == expected


def test_n_runs() -> None:
    sequence = np.frombuffer(b"NNACGTNNNAC", dtype=np.uint8)
    assert n_runs(sequence).tolist() == [[0, 2], [6, 9]]


def test_bin_labels_need_half_overlap(tmp_path: Path) -> None:
    bed = tmp_path / "p.bed.gz"
    with gzip.open(bed, "wt") as handle:
        # narrowPeak-like rows; two overlapping peaks merge; a header line is skipped
        handle.write("track name=x\n")
        handle.write("chr1\t100\t200\tp1\t0\t.\t5.0\t-1\t-1\t50\n")  # bin 0..200: 100 bp
        handle.write("chr1\t150\t210\tp2\t0\t.\t5.0\t-1\t-1\t30\n")  # merged 100..210
        handle.write("chr1\t450\t549\tp3\t0\t.\t5.0\t-1\t-1\t30\n")  # bin 400..600: 99 bp
    peaks = merged_intervals(bed)
    assert peaks["chr1"].tolist() == [[100, 210], [450, 549]]
    labels = label_bins([peaks], "chr1", np.array([0, 200, 400, 600]), 200)
    assert labels[:, 0].tolist() == [1, 0, 0, 0]
    assert label_bins([peaks], "chr2", np.array([0]), 200).tolist() == [[0]]


@pytest.fixture
def genome_and_sheet(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    rng = np.random.default_rng(5)
    chroms = {
        name: random_bases(rng, 20_000).tobytes().decode() for name in ("chr1", "chr7", "chr8")
    }
    chroms["chr1"] = chroms["chr1"][:5000] + "N" * 1000 + chroms["chr1"][6000:]
    genome = tmp_path / "genome.fa"
    genome.write_text("".join(f">{name}\n{seq}\n" for name, seq in chroms.items()))
    (tmp_path / "tf.bed").write_text(
        "chr1\t2000\t2200\nchr1\t5100\t5300\nchr7\t4000\t4400\nchr8\t10000\t10150\n"
    )
    (tmp_path / "dhs.bed").write_text("chr1\t2100\t2400\nchr8\t12000\t12200\n")
    sheet = tmp_path / "samples.tsv"
    sheet.write_text("profile\tpath\tgroup\nTF1\ttf.bed\tTF\nDHS\tdhs.bed\tDHS\n")
    return genome, sheet, chroms


def test_build_chromatin_labels_splits_and_windows(
    genome_and_sheet: tuple[Path, Path, dict[str, str]], tmp_path: Path
) -> None:
    genome, sheet, chroms = genome_and_sheet
    out = tmp_path / "out"
    args = [
        "build-chromatin",
        "--genome",
        str(genome),
        "--samples",
        str(sheet),
        "--flank-bp",
        "400",
        "--negative-ratio",
        "2",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    labels = {}
    for row in (out / "chromatin_labels.tsv").read_text().splitlines()[1:]:
        rid, *values = row.split("\t")
        labels[rid] = [int(v) for v in values]
    assert (out / "chromatin_profiles.tsv").read_text().splitlines() == [
        "label\tgroup",
        "TF1\tTF",
        "DHS\tDHS",
    ]
    records = list(read_fasta(out / "chromatin.fa"))
    windows = ChromatinSettings().bin_bp + 2 * 400
    positives = {rid: v for rid, v in labels.items() if any(v)}
    # window starts are bin start - flank; bins labelled by >= 100 bp of peak
    assert positives == {
        "chr1:1600-2600": [1, 1],  # bin 2000..2200: TF 200 bp, DHS exactly half (100 bp)
        "chr1:1800-2800": [0, 1],
        "chr7:3600-4600": [1, 0],
        "chr7:3800-4800": [1, 0],
        "chr8:9600-10600": [1, 0],  # 150 of 200 bp
        "chr8:11600-12600": [0, 1],
    }
    # chr1 bin 5100..5300 is labelled but its window holds Ns: dropped
    assert not any(rid.startswith("chr1:4") or rid.startswith("chr1:5") for rid in positives)
    negatives = [rid for rid, v in labels.items() if not any(v)]
    assert len(negatives) == 2 * len(positives)
    splits = {r.id: header_fields(r.description)["split"] for r in records}
    assert set(splits) == set(labels)
    assert all(
        splits[rid] == {"chr1": "train", "chr7": "val", "chr8": "test"}[rid.split(":")[0]]
        for rid in splits
    )
    for record in records:
        chrom, span = record.id.split(":")
        start, end = (int(x) for x in span.split("-"))
        assert end - start == windows and record.text == chroms[chrom][start:end]
        assert "N" not in record.text


def test_sample_sheet_errors_name_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "g.fa").write_text(">chr1\nACGT\n")
    sheet = tmp_path / "s.tsv"
    sheet.write_text("profile\tpath\nA\tmissing.bed\n")
    assert (
        main(
            [
                "build-chromatin",
                "--genome",
                str(tmp_path / "g.fa"),
                "--samples",
                str(sheet),
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert "line 2" in capsys.readouterr().err
    (tmp_path / "bad.bed").write_text("chr1\tten\t20\n")
    sheet.write_text("profile\tpath\nA\tbad.bed\n")
    assert (
        main(
            [
                "build-chromatin",
                "--genome",
                str(tmp_path / "g.fa"),
                "--samples",
                str(sheet),
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert "bad.bed: line 1" in capsys.readouterr().err


def test_two_class_fasta_labels_and_shared_sequence(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    pos = [random_bases(rng, 200).tobytes().decode() for _ in range(40)]
    neg = [random_bases(rng, 200).tobytes().decode() for _ in range(40)]
    neg[0] = pos[0][:120] + neg[0][120:]  # overlapping peaks: must share a split
    (tmp_path / "a.fa").write_text(
        "".join(f">chr1:{i}-{i + 200}\n{s}\n" for i, s in enumerate(pos))
    )
    (tmp_path / "b.fa").write_text(
        "".join(f">chr1:{i}-{i + 200}\n{s}\n" for i, s in enumerate(neg))
    )
    out = tmp_path / "o"
    assert (
        main(
            [
                "build-chromatin",
                "--positive-fasta",
                str(tmp_path / "a.fa"),
                "--negative-fasta",
                str(tmp_path / "b.fa"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    records = {
        r.id: (header_fields(r.description), r.text) for r in read_fasta(out / "chromatin.fa")
    }
    assert len(records) == 80
    assert all(int(f["label"]) == (rid.startswith("pos_")) for rid, (f, _) in records.items())
    assert records["pos_chr1:0-200"][0]["split"] == records["neg_chr1:0-200"][0]["split"]
    assert records["pos_chr1:5-205"][1] == pos[5]


@pytest.mark.slow
@pytest.mark.shared_data
def test_oct4_mafk_two_class_on_real_data(shared_data: Path, tmp_path: Path) -> None:
    folder = shared_data / "tf_chipseq"
    out = tmp_path / "o"
    assert (
        main(
            [
                "build-chromatin",
                "--positive-fasta",
                str(folder / "oct4_peaks_mm10.fa"),
                "--negative-fasta",
                str(folder / "mafk_peaks_mm10.fa"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    labels = [header_fields(r.description)["label"] for r in read_fasta(out / "chromatin.fa")]
    assert labels.count("1") == 3897 and labels.count("0") == 3900
