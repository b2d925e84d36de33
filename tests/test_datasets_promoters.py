"""Promoter builders: the DeePromoter recipe, dinucleotide-matched and genomic negatives, and
splits made before negatives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bigbird_genomics.builders import promoters
from bigbird_genomics.builders.markov import MarkovChain, dinucleotide_frequencies
from bigbird_genomics.builders.motifs import random_bases
from bigbird_genomics.cli import main
from bigbird_genomics.io.fasta import read_fasta
from bigbird_genomics.io.labels import header_fields


def _promoter(seed: int, length: int = 300) -> np.ndarray:
    """A CpG-rich, strongly non-uniform sequence, so composition differences are visible."""
    chain = MarkovChain(
        1,
        np.full(4, 0.25),
        np.array(
            [[0.1, 0.4, 0.4, 0.1], [0.1, 0.2, 0.6, 0.1], [0.1, 0.6, 0.2, 0.1], [0.1, 0.4, 0.4, 0.1]]
        ),
    )
    return chain.sample(np.random.default_rng(seed), 1, length)[0]


def test_part_bounds_cover_sequence_in_twenty_parts() -> None:
    bounds = promoters.part_bounds(301)
    assert len(bounds) == 20 and bounds[0][0] == 0 and bounds[-1][1] == 301
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))
    assert {end - start for start, end in bounds} <= {15, 16}


@pytest.mark.parametrize("kind", ["deepromoter", "dinucleotide"])
def test_recipe_keeps_exactly_eight_of_twenty_parts(kind: str) -> None:
    rng = np.random.default_rng(0)
    make = (
        promoters.deepromoter_negative if kind == "deepromoter" else promoters.dinucleotide_negative
    )
    identical_parts = []
    for seed in range(30):
        positive = _promoter(seed)
        kept = promoters.choose_kept_parts(rng)
        assert kept.sum() == promoters.NUM_KEPT_PARTS
        negative = make(rng, positive, kept)
        assert len(negative) == len(positive)
        same = [
            np.array_equal(positive[s:e], negative[s:e])
            for s, e in promoters.part_bounds(len(positive))
        ]
        assert all(same[i] for i in np.flatnonzero(kept))
        identical_parts.append(sum(same))
    # a replaced 15-bp part equals the original only by chance (~4^-15)
    assert np.mean(identical_parts) < promoters.NUM_KEPT_PARTS + 0.1


def test_dinucleotide_negatives_match_dinucleotides_deepromoter_does_not() -> None:
    rng = np.random.default_rng(1)
    positives = [_promoter(seed) for seed in range(60)]
    deep = [promoters.deepromoter_negative(rng, p) for p in positives]
    dinuc = [promoters.dinucleotide_negative(rng, p) for p in positives]
    target = dinucleotide_frequencies(positives)
    deep_error = np.abs(dinucleotide_frequencies(deep) - target).sum()
    dinuc_error = np.abs(dinucleotide_frequencies(dinuc) - target).sum()
    assert dinuc_error < 0.05
    assert deep_error > 3 * dinuc_error


def _write(path: Path, records: list[tuple[str, np.ndarray]]) -> Path:
    path.write_text("".join(f">{name}\n{seq.tobytes().decode()}\n" for name, seq in records))
    return path


def test_shared_sequence_stays_in_one_split_and_negatives_follow(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    base = [random_bases(rng, 300) for _ in range(60)]
    records = [(f"p{i}", seq) for i, seq in enumerate(base)]
    # p_dup_i shares 100 bp with p_i (an alternative TSS 200 bp downstream)
    records += [
        (f"p_dup{i}", np.concatenate([base[i][200:], random_bases(rng, 200)])) for i in range(20)
    ]
    fasta = _write(tmp_path / "pos.fa", records)
    out = tmp_path / "out.fa"
    assert (
        main(
            [
                "build-promoters",
                "--positives",
                str(fasta),
                "--negatives",
                "deepromoter",
                "--out",
                str(out),
                "--seed",
                "3",
            ]
        )
        == 0
    )
    rows = [(r.id, header_fields(r.description), r.sequence) for r in read_fasta(out)]
    split_of = {rid: fields["split"] for rid, fields, _ in rows}
    for i in range(20):
        assert split_of[f"p{i}"] == split_of[f"p_dup{i}"]
    labels = [int(fields["label"]) for _, fields, _ in rows]
    assert labels.count(1) == labels.count(0) == 80
    assert {s for s in split_of.values()} == {"train", "val", "test"}
    # every negative inherits its source positive's split; no 15-mer of a negative occurs in a
    # positive of another split
    positives = {rid: seq for rid, fields, seq in rows if fields["label"] == "1"}
    for _, fields, seq in rows:
        if fields["label"] == "0":
            assert split_of[fields["source"]] == fields["split"]
            text = seq.tobytes().decode()
            parts = {text[s:e] for s, e in promoters.part_bounds(len(text))}
            for pid, pseq in positives.items():
                if split_of[pid] != fields["split"]:
                    ptext = pseq.tobytes().decode()
                    assert not any(part in ptext for part in parts)


def test_training_only_negatives_leave_val_and_test_unchanged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--train-negatives-per-positive 3: three negatives per training positive, one per val/test
    positive, and val/test (and the first training negatives) identical to a 1:1 build."""
    rng = np.random.default_rng(5)
    fasta = _write(tmp_path / "pos.fa", [(f"p{i}", random_bases(rng, 300)) for i in range(40)])

    def build(name: str, extra: list[str]) -> dict[str, tuple[dict, str]]:
        out = tmp_path / name
        command = ["build-promoters", "--positives", str(fasta), "--negatives", "deepromoter"]
        assert main([*command, "--out", str(out), *extra]) == 0
        return {
            r.id: (header_fields(r.description), r.sequence.tobytes().decode())
            for r in read_fasta(out)
        }

    plain = build("plain.fa", [])
    more = build("more.fa", ["--train-negatives-per-positive", "3"])
    assert set(plain) <= set(more)
    assert all(more[rid] == plain[rid] for rid in plain)
    for split in ("train", "val", "test"):
        labels = [int(f["label"]) for f, _ in more.values() if f["split"] == split]
        ratio = 3 if split == "train" else 1
        assert labels.count(0) == ratio * labels.count(1) > 0
    extras = [rid for rid in more if rid not in plain]
    assert len(extras) == len({more[rid][1] for rid in extras})  # fresh draws, no repeats
    assert main(["build-promoters", "--positives", str(fasta), "--out", str(tmp_path / "x.fa"),
                 "--negatives-per-positive", "2", "--train-negatives-per-positive", "1"]) == 2
    capsys.readouterr()
    assert main(["build-promoters", "--tss", str(fasta), "--genome", str(fasta), "--out",
                 str(tmp_path / "x.fa"), "--negatives", "genomic",
                 "--train-negatives-per-positive", "2"]) == 2
    assert "--train-negatives-per-positive works with" in capsys.readouterr().err
    labelled = [promoters.LabelledSequence("p", random_bases(rng, 300), 1, "train", "p")]
    with pytest.raises(ValueError, match="at least"):
        promoters.shuffled_parts_negatives(labelled, "deepromoter", train_negatives_per_positive=0)


def test_cli_refuses_inconsistent_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["build-promoters", "--out", str(tmp_path / "x.fa")]) == 2
    assert "--positives" in capsys.readouterr().err
    fasta = _write(tmp_path / "p.fa", [("a", random_bases(np.random.default_rng(0), 50))])
    assert (
        main(
            [
                "build-promoters",
                "--positives",
                str(fasta),
                "--negatives",
                "genomic",
                "--out",
                str(tmp_path / "x.fa"),
            ]
        )
        == 2
    )
    assert "--genome" in capsys.readouterr().err


def test_genomic_negatives_keep_away_from_tss_and_positives_come_from_genome(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(4)
    chroms = {"chr1": random_bases(rng, 60_000), "chr2": random_bases(rng, 40_000)}
    genome = _write(tmp_path / "genome.fa", list(chroms.items()))
    tss = [
        ("chr1", 10_000, "+"),
        ("chr1", 30_500, "-"),
        ("chr2", 5_000, "+"),
        ("chr2", 20_000, "-"),
    ]
    bed = tmp_path / "tss.bed"
    bed.write_text("".join(f"{c}\t{p}\t{p + 1}\tt{i}\t0\t{s}\n" for i, (c, p, s) in enumerate(tss)))
    out = tmp_path / "out.fa"
    assert (
        main(
            [
                "build-promoters",
                "--tss",
                str(bed),
                "--genome",
                str(genome),
                "--negatives",
                "genomic",
                "--min-tss-distance",
                "2000",
                "--negatives-per-positive",
                "2",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    rows = [(r.id, header_fields(r.description), r.text) for r in read_fasta(out)]
    positives = {rid: seq for rid, f, seq in rows if f["label"] == "1"}
    assert len(positives) == 4 and all(len(s) == 300 for s in positives.values())
    # '+' TSS at 10000: window 9751..10051; '-' TSS at 30500: reverse complement of 30450..30750
    assert positives["t0"] == chroms["chr1"][9751:10051].tobytes().decode()
    minus = (
        chroms["chr1"][30450:30750][::-1]
        .tobytes()
        .decode()
        .translate(str.maketrans("ACGT", "TGCA"))
    )
    assert positives["t1"] == minus
    negatives = [(rid, seq) for rid, f, seq in rows if f["label"] == "0"]
    assert len(negatives) == 8
    for rid, seq in negatives:
        chrom, span = rid.removeprefix("bg_").split(":")
        start, end = (int(x) for x in span.split("-"))
        assert chroms[chrom][start:end].tobytes().decode() == seq
        for tss_chrom, position, _ in tss:
            if tss_chrom == chrom:
                assert position <= start - 2000 or position >= end + 2000 - 1


def test_tss_windows_from_a_plain_gzip_genome(tmp_path: Path) -> None:
    """hg38.fa.gz as downloaded (gzip, not bgzip): refused with advice, read with
    --decompress-to (no bgzip binary needed)."""
    import gzip

    rng = np.random.default_rng(5)
    sequence = random_bases(rng, 5_000)
    plain = _write(tmp_path / "genome.fa", [("chr1", sequence)])
    packed = tmp_path / "genome.fa.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    bed = tmp_path / "tss.bed"
    bed.write_text("chr1\t1000\t1001\tt0\t0\t+\nchr1\t3000\t3001\tt1\t0\t+\n")
    out = tmp_path / "out.fa"
    args = ["build-promoters", "--tss", str(bed), "--genome", str(packed), "--out", str(out),
            "--split-fractions", "0.5,0.5,0"]  # fmt: skip
    assert main(args) == 2
    assert main([*args, "--decompress-to", str(tmp_path / "copy.fa")]) == 0
    records = list(read_fasta(out))
    positives = {r.id: r.text for r in records if header_fields(r.description)["label"] == "1"}
    assert positives["t0"] == sequence[751:1051].tobytes().decode()
