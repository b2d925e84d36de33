"""Long-range generator and Markov backgrounds: label logic, balanced motif counts, motif
positions, determinism from the seed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bigbird_genomics.builders.longrange import (
    LongRangeSettings,
    background_chain,
    generate_longrange,
)
from bigbird_genomics.builders.markov import MarkovChain, dinucleotide_frequencies
from bigbird_genomics.builders.motifs import reverse_complement_text
from bigbird_genomics.cli import main
from bigbird_genomics.io.fasta import read_fasta
from bigbird_genomics.io.labels import header_fields

SMALL = LongRangeSettings(num_records=60, length_bp=2048, edge_bp=300, margin_bp=50, seed=7)
CHAIN = MarkovChain.uniform(order=2, gc=0.4)


def _starts(text: str, motif: str) -> list[int]:
    return [i for i in range(len(text) - len(motif) + 1) if text.startswith(motif, i)]


@pytest.mark.parametrize("rule", ["xor", "and"])
def test_label_follows_end_motifs(rule: str) -> None:
    records = generate_longrange(CHAIN, replace(SMALL, rule=rule))
    labels = np.array([r.label for r in records])
    assert 0.4 <= labels.mean() <= 0.6
    for record in records:
        pair = record.start_motif + record.end_motif
        assert record.label == int(pair in ("AB", "BA") if rule == "xor" else pair == "AB")
    if rule == "xor":
        # neither end alone is informative: the start motif is A in about half of each class
        starts = np.array([r.start_motif == "A" for r in records])
        ends = np.array([r.end_motif == "A" for r in records])
        for label in (0, 1):
            assert 0.2 < starts[labels == label].mean() < 0.8
            assert 0.2 < ends[labels == label].mean() < 0.8


def test_start_a_fraction_makes_the_end_informative_but_never_the_start() -> None:
    records = generate_longrange(CHAIN, replace(SMALL, num_records=400, start_a_fraction=0.2))
    labels = np.array([r.label for r in records])
    starts = np.array([r.start_motif == "A" for r in records])
    ends = np.array([r.end_motif == "A" for r in records])
    for label in (0, 1):  # the start is A in ~20 % of each class: it says nothing
        assert 0.12 < starts[labels == label].mean() < 0.28
    # the end alone predicts the label ~80 % of the time (end A <-> label 1, mostly)
    assert 0.72 < (ends == labels.astype(bool)).mean() < 0.88
    assert all(r.label == int(r.start_motif != r.end_motif) for r in records)


def test_frame_puts_every_copy_in_frame() -> None:
    records = generate_longrange(CHAIN, replace(SMALL, num_records=10, frame_bp=6))
    assert all(start % 6 == 0 for record in records for start, _, _ in record.sites)


def test_every_record_holds_the_same_motif_counts_at_the_planted_places() -> None:
    settings = SMALL
    records = generate_longrange(CHAIN, settings)
    motif_of = {"A": settings.motif_a, "B": settings.motif_b}
    length, edge, margin = settings.length_bp, settings.edge_bp, settings.margin_bp
    for record in records:
        text = record.sequence.tobytes().decode()
        assert len(text) == length
        for motif in motif_of.values():
            # exactly the planted copies: 2 clusters x `copies`, none on the reverse strand
            planted = sorted(start for start, m, _ in record.sites if m == motif)
            assert _starts(text, motif) == planted
            assert len(planted) == 2 * settings.copies
            assert _starts(text, reverse_complement_text(motif)) == []
        by_role = {
            role: [(s, m) for s, m, r in record.sites if r == role]
            for role in ("start", "end", "middle")
        }
        assert [len(by_role[r]) for r in ("start", "end", "middle")] == [
            settings.copies,
            settings.copies,
            2 * settings.copies,
        ]
        assert {m for _, m in by_role["start"]} == {motif_of[record.start_motif]}
        assert {m for _, m in by_role["end"]} == {motif_of[record.end_motif]}
        for start, motif in by_role["start"]:
            assert margin <= start and start + len(motif) <= edge
        for start, motif in by_role["end"]:
            assert length - edge <= start and start + len(motif) <= length - margin
        for start, motif in by_role["middle"]:
            assert edge <= start and start + len(motif) <= length - edge
        # the middle holds the motifs the ends lack: two A and two B clusters in all
        middle = [m for _, m in sorted(by_role["middle"])]
        assert middle[0] != motif_of[record.start_motif]
        assert middle[-1] != motif_of[record.end_motif]


def test_cluster_shape_does_not_depend_on_where_the_cluster_is() -> None:
    """End and middle clusters span the same width: a CNN cannot tell them apart by shape."""
    settings = replace(SMALL, num_records=200)
    spans: dict[str, list[int]] = {"start": [], "end": [], "middle": []}
    for record in generate_longrange(CHAIN, settings):
        for role in ("start", "end"):
            starts = [s for s, _, r in record.sites if r == role]
            spans[role].append(max(starts) - min(starts))
        middle = sorted(s for s, _, r in record.sites if r == "middle")
        for cluster in (middle[: settings.copies], middle[settings.copies :]):
            spans["middle"].append(max(cluster) - min(cluster))
    limit = settings.cluster_bp - len(settings.motif_a)
    for values in spans.values():
        assert max(values) <= limit
    means = [np.mean(values) for values in spans.values()]
    assert max(means) - min(means) < 0.1 * limit


def test_deterministic_from_the_seed() -> None:
    first = generate_longrange(CHAIN, SMALL)
    second = generate_longrange(CHAIN, SMALL)
    assert all(np.array_equal(a.sequence, b.sequence) for a, b in zip(first, second, strict=True))
    assert [a.sites for a in first] == [b.sites for b in second]
    other = generate_longrange(CHAIN, replace(SMALL, seed=8))
    assert not np.array_equal(first[0].sequence, other[0].sequence)


def test_cli_writes_labelled_fasta(tmp_path: Path) -> None:
    out = tmp_path / "lr.fa"
    arguments = ["make-longrange", "--out", str(out), "--num-records", "20"]
    arguments += ["--length-bp", "1024", "--edge-bp", "200", "--margin-bp", "20"]
    arguments += ["--copies", "2", "--frame-bp", "6", "--start-a-fraction", "0.3"]
    assert main([*arguments, "--gc", "0.6"]) == 0
    records = list(read_fasta(out))
    fields = [header_fields(r.description) for r in records]
    assert len(fields) == 20 and {f["label"] for f in fields} == {"0", "1"}
    assert {f["split"] for f in fields} <= {"train", "val", "test"}
    assert {f["ends"] for f in fields} <= {"AA", "AB", "BA", "BB"}
    assert {len(r.sequence) for r in records} == {1024}


def test_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no middle"):
        LongRangeSettings(length_bp=1500, edge_bp=500).validate()
    with pytest.raises(ValueError, match="cannot hold"):
        LongRangeSettings(edge_bp=120, margin_bp=100).validate()
    with pytest.raises(ValueError, match="rule"):
        LongRangeSettings(rule="or").validate()
    with pytest.raises(ValueError, match="start_a_fraction"):
        LongRangeSettings(start_a_fraction=1.0).validate()
    with pytest.raises(ValueError, match="reverse complement"):
        LongRangeSettings(motif_a="ACGTACGTACGTACGT").validate()
    assert main(["make-longrange", "--out", str(tmp_path / "x.fa"), "--length-bp", "100"]) == 2


def test_markov_fit_recovers_dinucleotides() -> None:
    rng = np.random.default_rng(0)
    truth = MarkovChain(
        1,
        np.full(4, 0.25),
        np.array(
            [
                [0.5, 0.1, 0.3, 0.1],
                [0.3, 0.3, 0.05, 0.35],
                [0.25, 0.25, 0.25, 0.25],
                [0.1, 0.2, 0.3, 0.4],
            ]
        ),
    )
    sample = truth.sample(rng, 80, 1000)
    fitted = MarkovChain.fit(sample, order=1)
    assert np.abs(fitted.transition - truth.transition).max() < 0.02
    again = fitted.sample(rng, 80, 1000)
    assert np.abs(dinucleotide_frequencies(again) - dinucleotide_frequencies(sample)).sum() < 0.03


def test_uniform_chain_gc() -> None:
    sequence = MarkovChain.uniform(order=3, gc=0.7).sample(np.random.default_rng(1), 50, 1000)
    gc = np.isin(sequence, np.frombuffer(b"GC", dtype=np.uint8)).mean()
    assert gc == pytest.approx(0.7, abs=0.01)


@pytest.mark.shared_data
def test_background_fitted_to_ecoli(shared_data: Path) -> None:
    chain = background_chain(shared_data / "genomes" / "ecoli_k12_mg1655.fa.gz", order=3)
    # E. coli K-12 is 50.8 % GC; the chain's stationary composition must be close
    sequence = chain.sample(np.random.default_rng(2), 100, 1000)
    gc = np.isin(sequence, np.frombuffer(b"GC", dtype=np.uint8)).mean()
    assert gc == pytest.approx(0.508, abs=0.01)
