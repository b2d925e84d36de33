"""Long-range generator and Markov backgrounds: label logic, motif counts, determinism."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bigbird_genomics.cli import main
from bigbird_genomics.datasets.longrange import (
    LongRangeSettings,
    background_chain,
    generate_longrange,
)
from bigbird_genomics.datasets.markov import MarkovChain, dinucleotide_frequencies
from bigbird_genomics.datasets.motifs import reverse_complement_text
from bigbird_genomics.fasta import read_fasta
from bigbird_genomics.labels import header_fields

SMALL = LongRangeSettings(num_records=60, length_bp=2048, edge_bp=300, seed=7)


def _count(text: str, motif: str) -> int:
    return sum(text.count(m) for m in {motif, reverse_complement_text(motif)})


@pytest.mark.parametrize("rule", ["xor", "and"])
def test_label_follows_end_motifs_and_counts_are_constant(rule: str) -> None:
    settings = replace(SMALL, rule=rule)
    records = generate_longrange(MarkovChain.uniform(order=2, gc=0.4), settings)
    labels = np.array([r.label for r in records])
    assert 0.4 <= labels.mean() <= 0.6
    ends = {"A": settings.motif_a, "B": settings.motif_b}
    for record in records:
        text = record.sequence.tobytes().decode()
        assert len(text) == settings.length_bp
        # two A and two B (either strand) in every record, whatever the label
        assert _count(text, settings.motif_a) == 2 and _count(text, settings.motif_b) == 2
        (first_start, first), (last_start, last) = record.sites[:2]
        assert first == ends[record.start_motif] and last == ends[record.end_motif]
        assert first_start + len(first) <= settings.edge_bp
        assert last_start >= settings.length_bp - settings.edge_bp
        for start, motif in record.sites:
            assert text[start : start + len(motif)] == motif
        pair = record.start_motif + record.end_motif
        expected = pair in ("AB", "BA") if rule == "xor" else pair == "AB"
        assert record.label == int(expected)
    if rule == "xor":
        # neither end alone is informative: the start motif is A in about half of each class
        starts = np.array([r.start_motif == "A" for r in records])
        for label in (0, 1):
            assert 0.2 < starts[labels == label].mean() < 0.8


def test_deterministic_and_cli_writes_labelled_fasta(tmp_path: Path) -> None:
    chain = MarkovChain.uniform(order=1)
    first = generate_longrange(chain, SMALL)
    second = generate_longrange(chain, SMALL)
    assert all(np.array_equal(a.sequence, b.sequence) for a, b in zip(first, second, strict=True))
    out = tmp_path / "lr.fa"
    assert (
        main(
            [
                "make-longrange",
                "--out",
                str(out),
                "--num-records",
                "20",
                "--length-bp",
                "1024",
                "--edge-bp",
                "200",
                "--gc",
                "0.6",
            ]
        )
        == 0
    )
    fields = [header_fields(r.description) for r in read_fasta(out)]
    assert len(fields) == 20 and {f["label"] for f in fields} == {"0", "1"}
    assert {f["split"] for f in fields} <= {"train", "val", "test"}


def test_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no middle"):
        LongRangeSettings(length_bp=1000, edge_bp=500).validate()
    with pytest.raises(ValueError, match="rule"):
        LongRangeSettings(rule="or").validate()
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
