"""The embedded demo data: deterministic, labels that mean what they say, sane sizes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from bigbird_genomics.builders import demo
from bigbird_genomics.builders.motifs import contains, reverse_complement, to_array
from bigbird_genomics.cli import main


def _read_fasta(path: Path) -> list[tuple[str, str]]:
    records: list[tuple[str, str]] = []
    for line in path.read_text().splitlines():
        if line.startswith(">"):
            records.append((line[1:], ""))
        elif records:
            records[-1] = (records[-1][0], records[-1][1] + line)
    return records


def _digest(paths: dict[str, Path]) -> dict[str, str]:
    return {name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in paths.items()}


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo-data", "--out", str(out), "--seed", "0"]) == 0
    return out


def test_same_seed_same_bytes_other_seed_differs(demo_dir: Path, tmp_path: Path) -> None:
    names = [
        "promoter.fa",
        "chromatin.fa",
        "chromatin_labels.tsv",
        "heldout.fa",
        "chromosome.fa",
        "chromosome_motifs.bed",
    ]
    again = demo.write_demo_data(tmp_path / "again", seed=0)
    first = {name: hashlib.sha256((demo_dir / name).read_bytes()).hexdigest() for name in names}
    second = {p.name: d for p, d in zip(again.values(), _digest(again).values(), strict=True)}
    assert all(first[name] == second[name] for name in names)
    other = demo.promoter_records(np.random.default_rng(1), 10)
    same = demo.promoter_records(np.random.default_rng(0), 10)
    assert any(not np.array_equal(a.sequence, b.sequence) for a, b in zip(other, same, strict=True))


def test_promoter_headers_balance_and_splits(demo_dir: Path) -> None:
    records = _read_fasta(demo_dir / "promoter.fa")
    assert len(records) == demo.NUM_PROMOTER_RECORDS
    fields = [dict(item.split("=") for item in header.split()[1:]) for header, _ in records]
    assert records[0][0].split()[0] == "prom_00001"
    labels = np.array([int(f["label"]) for f in fields])
    assert labels.mean() == pytest.approx(0.5)
    splits = [f["split"] for f in fields]
    assert {"train", "val", "test"} == set(splits)
    assert 0.7 < splits.count("train") / len(splits) < 0.9
    assert all(len(seq) == demo.RECORD_BP and set(seq) <= set("ACGT") for _, seq in records)


def test_promoter_positives_carry_tata_at_fixed_offset_negatives_do_not() -> None:
    rng = np.random.default_rng(3)
    records = demo.promoter_records(rng, 400)
    tss = demo.RECORD_BP // 2
    for record in records:
        tata = [m for m in record.planted if m.name == "TATA"]
        assert bool(tata) <= bool(record.labels[0])  # TATA only ever planted in positives
        for site in tata:
            assert abs(site.start - (tss + demo.TATA_OFFSET)) <= 2
            text = record.sequence[site.start : site.start + len(site.sequence)].tobytes().decode()
            assert text == site.sequence
        if not record.labels[0]:
            assert len(record.planted) <= 1  # at most one decoy element
    positives = [r for r in records if r.labels[0]]
    # Compositional equality: negatives are no richer or poorer in GC than positives' background.
    gc = [np.isin(r.sequence, to_array("GC")).mean() for r in records]
    labels = np.array([r.labels[0] for r in records])
    assert abs(np.mean(np.array(gc)[labels == 1]) - np.mean(np.array(gc)[labels == 0])) < 0.01
    assert sum(any(m.name == "TATA" for m in r.planted) for r in positives) / len(positives) > 0.85


def test_chromatin_label_is_exactly_motif_presence(demo_dir: Path) -> None:
    records = _read_fasta(demo_dir / "chromatin.fa")
    table = (demo_dir / "chromatin_labels.tsv").read_text().splitlines()
    assert table[0].split("\t") == ["id", *demo.CHROMATIN_PROFILES]
    labels = {row.split("\t")[0]: [int(v) for v in row.split("\t")[1:]] for row in table[1:]}
    assert len(labels) == len(records) == demo.NUM_CHROMATIN_RECORDS
    motifs = [motif for _, motif in demo.CHROMATIN_PROFILES.values()]
    for header, sequence in records:
        present = [int(contains(to_array(sequence), motif)) for motif in motifs]
        assert present == labels[header.split()[0]]
    rates = np.array(list(labels.values())).mean(axis=0)
    assert ((rates > 0.1) & (rates < 0.7)).all()
    profiles = (demo_dir / "chromatin_profiles.tsv").read_text().splitlines()
    assert profiles[0] == "label\tgroup" and {p.split("\t")[1] for p in profiles[1:]} == {
        "TF",
        "DHS",
        "histone",
    }


def test_heldout_unlabelled_with_truth(demo_dir: Path) -> None:
    records = _read_fasta(demo_dir / "heldout.fa")
    assert all(" " not in header and "label" not in header for header, _ in records)
    truth = (demo_dir / "heldout_truth.tsv").read_text().splitlines()[1:]
    assert {row.split("\t")[0] for row in truth} == {header for header, _ in records}
    assert {row.split("\t")[1] for row in truth} == {"promoter", "chromatin"}


def test_chromosome_sites_soft_mask_and_n_runs(demo_dir: Path) -> None:
    ((header, sequence),) = _read_fasta(demo_dir / "chromosome.fa")
    assert header.split()[0] == demo.CHROMOSOME_ID and len(sequence) == demo.CHROMOSOME_BP
    assert any(c.islower() for c in sequence) and "N" * 100 in sequence
    rows = [
        line.split("\t") for line in (demo_dir / "chromosome_motifs.bed").read_text().splitlines()
    ]
    assert len(rows) == demo.NUM_CHROMOSOME_PROMOTERS
    tss = demo.RECORD_BP // 2
    tata_hits = 0
    for chrom, start, end, _name, _score, strand in rows:
        site = to_array(sequence[int(start) : int(end)].upper())
        assert (
            chrom == demo.CHROMOSOME_ID
            and len(site) == demo.RECORD_BP
            and b"N" not in site.tobytes()
        )
        forward = reverse_complement(site) if strand == "-" else site
        core = forward[tss + demo.TATA_OFFSET - 2 : tss + demo.TATA_OFFSET + 9].tobytes().decode()
        tata_hits += "TATA" in core
    # modules are positive promoters read on the BED strand: most carry the TATA box there
    assert tata_hits >= 0.8 * len(rows)
    starts = sorted(int(row[1]) for row in rows)
    assert all(b - a >= demo.RECORD_BP for a, b in zip(starts, starts[1:], strict=False))
