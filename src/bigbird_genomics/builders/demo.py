"""The embedded synthetic demo data set: seeded, small, and learnable in minutes on a CPU.

Everything the demo workflow needs is generated here, so the demo never downloads anything:
a binary promoter task, a multi-label chromatin task, unlabelled held-out records for
`predict`, and one long chromosome with promoters planted at known places for a genome scan.
Motifs are planted with mutations and decoys so the tasks are learnable but not trivial.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bigbird_genomics.builders.motifs import (
    BASE_INDEX,
    contains,
    mutate,
    random_bases,
    reverse_complement,
    to_array,
)
from bigbird_genomics.io.atomic import atomic_path
from bigbird_genomics.io.writers import format_header, write_fasta, write_tsv

RECORD_BP = 300
NUM_PROMOTER_RECORDS = 2000
NUM_CHROMATIN_RECORDS = 2000
NUM_HELDOUT_PER_KIND = 100
CHROMOSOME_BP = 300_000
CHROMOSOME_ID = "chrDemo"
NUM_CHROMOSOME_PROMOTERS = 40
SPLIT_FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}
# A, C, G, T: roughly human-genome composition; negatives share it, so base content says nothing.
BACKGROUND_PROBS = np.array([0.28, 0.22, 0.22, 0.28])
MUTATION_RATE = 0.03

# Promoter elements, positions relative to the TSS at the record centre (EPDnew-like -150..+149).
TATA_VARIANTS = ("TATAAAA", "TATAAAT", "TATATAA", "TATAAAG")
TATA_OFFSET = -31
INR_VARIANTS = ("TCAGTCT", "TCATTCT", "CCAGTCC", "TCAGACT")
INR_OFFSET = -2
GC_BOX = "GGGGCGGGG"
CAAT_BOX = "GGCCAATCT"
PROMOTER_ELEMENT_PROBS = {"TATA": 0.95, "Inr": 0.9, "GC-box": 0.9, "CAAT": 0.6}
# Negatives may carry one lone upstream element: a decoy, so counting one motif is not enough.
DECOY_PROB = 0.15

# Chromatin profiles: name -> (group, consensus motif). Each label is "its motif is present".
CHROMATIN_PROFILES: dict[str, tuple[str, str]] = {
    "CTCF": ("TF", "CCACCAGGGGGCGC"),
    "GATA1": ("TF", "GCAGATAAGG"),
    "DNase": ("DHS", "ATGACTCATC"),
    "H3K4me3": ("histone", "GCGCGCGGCG"),
}


@dataclass
class PlantedMotif:
    """What was planted where: start is 0-based on the forward strand of the record."""

    name: str
    start: int
    sequence: str
    strand: str = "+"


@dataclass
class SyntheticRecord:
    record_id: str
    sequence: np.ndarray
    labels: tuple[int, ...]
    planted: list[PlantedMotif] = field(default_factory=list)


def _assign_splits(rng: np.random.Generator, count: int) -> list[str]:
    names = list(SPLIT_FRACTIONS)
    splits = rng.choice(len(names), size=count, p=list(SPLIT_FRACTIONS.values()))
    return [names[index] for index in splits]


def _free_start(
    rng: np.random.Generator, occupied: np.ndarray, length: int, lo: int, hi: int
) -> int | None:
    """A start in [lo, hi] where `length` bases are not yet occupied, or None after 50 tries."""
    hi = min(hi, len(occupied) - length)
    for _ in range(50):
        start = int(rng.integers(lo, hi + 1))
        if not occupied[start : start + length].any():
            return start
    return None


def _plant(
    rng: np.random.Generator,
    sequence: np.ndarray,
    occupied: np.ndarray,
    name: str,
    motif: str,
    start: int,
    *,
    mutation_rate: float = 0.0,
    strand: str = "+",
) -> PlantedMotif:
    site = mutate(rng, to_array(motif), mutation_rate)
    forward = reverse_complement(site) if strand == "-" else site
    sequence[start : start + len(motif)] = forward
    occupied[start : start + len(motif)] = True
    return PlantedMotif(name, start, site.tobytes().decode("ascii"), strand)


def promoter_record(
    rng: np.random.Generator,
    record_id: str,
    positive: bool,
    background_probs: np.ndarray = BACKGROUND_PROBS,
) -> SyntheticRecord:
    """One promoter-task record: core elements at fixed TSS offsets if positive, else a decoy."""
    sequence = random_bases(rng, RECORD_BP, background_probs)
    occupied = np.zeros(RECORD_BP, dtype=bool)
    tss = RECORD_BP // 2
    planted: list[PlantedMotif] = []
    if positive:
        probs = PROMOTER_ELEMENT_PROBS
        if rng.random() < probs["TATA"]:
            start = tss + TATA_OFFSET + int(rng.integers(-2, 3))
            motif = TATA_VARIANTS[rng.integers(len(TATA_VARIANTS))]
            planted.append(
                _plant(rng, sequence, occupied, "TATA", motif, start, mutation_rate=MUTATION_RATE)
            )
        if rng.random() < probs["Inr"]:
            motif = INR_VARIANTS[rng.integers(len(INR_VARIANTS))]
            planted.append(
                _plant(
                    rng,
                    sequence,
                    occupied,
                    "Inr",
                    motif,
                    tss + INR_OFFSET,
                    mutation_rate=MUTATION_RATE,
                )
            )
        if rng.random() < probs["GC-box"]:
            for _ in range(int(rng.integers(1, 4))):
                start = _free_start(rng, occupied, len(GC_BOX), tss - 130, tss - 45)
                if start is not None:
                    planted.append(
                        _plant(
                            rng,
                            sequence,
                            occupied,
                            "GC-box",
                            GC_BOX,
                            start,
                            mutation_rate=MUTATION_RATE,
                        )
                    )
        if rng.random() < probs["CAAT"]:
            start = _free_start(rng, occupied, len(CAAT_BOX), tss - 100, tss - 60)
            if start is not None:
                planted.append(
                    _plant(
                        rng,
                        sequence,
                        occupied,
                        "CAAT",
                        CAAT_BOX,
                        start,
                        mutation_rate=MUTATION_RATE,
                    )
                )
    elif rng.random() < DECOY_PROB:
        name, motif = (("GC-box", GC_BOX), ("CAAT", CAAT_BOX))[int(rng.integers(2))]
        start = int(rng.integers(0, RECORD_BP - len(motif)))
        planted.append(
            _plant(rng, sequence, occupied, name, motif, start, mutation_rate=MUTATION_RATE)
        )
    return SyntheticRecord(record_id, sequence, (int(positive),), planted)


def _chromatin_labels(rng: np.random.Generator) -> dict[str, int]:
    """Correlated labels, as in real data: TF sites and active promoters sit in open chromatin."""
    ctcf = rng.random() < 0.3
    gata1 = rng.random() < 0.3
    dnase = rng.random() < (0.7 if (ctcf or gata1) else 0.25)
    h3k4me3 = rng.random() < (0.45 if dnase else 0.15)
    return {"CTCF": int(ctcf), "GATA1": int(gata1), "DNase": int(dnase), "H3K4me3": int(h3k4me3)}


def chromatin_record(rng: np.random.Generator, record_id: str) -> SyntheticRecord:
    """One chromatin record: label k is 1 iff profile k's consensus occurs exactly (either strand).

    Positive profiles get one exact copy plus possibly a mutated second one; the background is
    redrawn until it holds no consensus by chance, so the label is exactly the motif's presence.
    """
    labels = _chromatin_labels(rng)
    while True:
        sequence = random_bases(rng, RECORD_BP, BACKGROUND_PROBS)
        if not any(contains(sequence, motif) for _, motif in CHROMATIN_PROFILES.values()):
            break
    occupied = np.zeros(RECORD_BP, dtype=bool)
    planted: list[PlantedMotif] = []
    for name, (_, motif) in CHROMATIN_PROFILES.items():
        if not labels[name]:
            continue
        for copy in range(int(rng.integers(1, 3))):
            start = _free_start(rng, occupied, len(motif), 0, RECORD_BP - len(motif))
            if start is None:
                break
            strand = "+-"[int(rng.integers(2))]
            rate = 0.0 if copy == 0 else MUTATION_RATE
            planted.append(
                _plant(
                    rng, sequence, occupied, name, motif, start, mutation_rate=rate, strand=strand
                )
            )
    # A planted junction can, very rarely, spell another profile's consensus: make labels say so.
    present = tuple(int(contains(sequence, motif)) for _, motif in CHROMATIN_PROFILES.values())
    return SyntheticRecord(record_id, sequence, present, planted)


def promoter_records(
    rng: np.random.Generator, count: int, prefix: str = "prom"
) -> list[SyntheticRecord]:
    """`count` records, half positive, in shuffled order.

    Negatives' background takes the base composition of the finished positives (motifs
    included), so GC content alone cannot tell the classes apart.
    """
    is_positive = rng.permutation(np.arange(count) < count // 2)
    records: dict[int, SyntheticRecord] = {}
    for index in np.flatnonzero(is_positive):
        records[int(index)] = promoter_record(rng, f"{prefix}_{index + 1:05d}", True)
    negative_probs = base_composition(records.values())
    for index in np.flatnonzero(~is_positive):
        records[int(index)] = promoter_record(
            rng, f"{prefix}_{index + 1:05d}", False, negative_probs
        )
    return [records[index] for index in range(count)]


def base_composition(records: Iterable[SyntheticRecord]) -> np.ndarray:
    """Frequencies of A, C, G, T over the records' sequences."""
    counts = np.bincount(
        np.concatenate([BASE_INDEX[r.sequence] for r in records]), minlength=5
    )[:4]
    return counts / counts.sum()


def chromosome(
    rng: np.random.Generator,
    background_probs: np.ndarray = BACKGROUND_PROBS,
    planted_out: list[tuple[int, int, str, str]] | None = None,
) -> tuple[np.ndarray, list[tuple[int, int, str, str]]]:
    """One long record with promoter modules at known places, soft-masked repeats and N runs.

    `background_probs` should be the promoter training set's composition: a background the
    model never saw (e.g. more AT-rich) would light up the scan with false positives.
    Returns the sequence (lower case = soft-masked) and BED rows (start, end, name, strand).
    `planted_out`, when given, receives one such row per planted element (TATA, Inr, ...) in
    chromosome coordinates, for demo variants that hit motifs.
    """
    sequence = random_bases(rng, CHROMOSOME_BP, background_probs)
    # Sites sit on a jittered grid so they never overlap each other, repeats or N runs.
    slot = CHROMOSOME_BP // NUM_CHROMOSOME_PROMOTERS
    sites: list[tuple[int, int, str, str]] = []
    for index in range(NUM_CHROMOSOME_PROMOTERS):
        start = index * slot + int(rng.integers(1000, slot - RECORD_BP - 1000))
        site = promoter_record(rng, "site", positive=True)
        module = site.sequence
        strand = "+-"[int(rng.integers(2))]
        if planted_out is not None:
            for motif in site.planted:
                offset = motif.start
                if strand == "-":
                    offset = RECORD_BP - motif.start - len(motif.sequence)
                planted_out.append(
                    (start + offset, start + offset + len(motif.sequence),
                     f"promoter_{index + 1:02d}_{motif.name}", strand)
                )
        sequence[start : start + RECORD_BP] = (
            reverse_complement(module) if strand == "-" else module
        )
        sites.append((start, start + RECORD_BP, f"promoter_{index + 1:02d}", strand))
    # Soft-masked stretches and N runs fill gaps between sites (the first 900 bp of each slot).
    for index in range(NUM_CHROMOSOME_PROMOTERS):
        gap_start = index * slot
        if index % 3 == 0:
            length = int(rng.integers(200, 900))
            sequence[gap_start : gap_start + length] += 32  # ASCII upper -> lower case
        elif index % 13 == 7:
            length = int(rng.integers(100, 900))
            sequence[gap_start : gap_start + length] = ord("N")
    return sequence, sites


# The files `write_demo_data` writes into its folder (the CLI checks them before writing).
DEMO_FILES = (
    "promoter.fa", "chromatin.fa", "chromatin_labels.tsv", "chromatin_profiles.tsv",
    "heldout.fa", "heldout_truth.tsv", "chromosome.fa", "chromosome_motifs.bed",
)


def write_demo_data(out_dir: str | Path, seed: int = 0) -> dict[str, Path]:
    """Write the demo data set into `out_dir`; the same seed always gives the same bytes.

    Returns name -> path for: promoter, chromatin, chromatin_labels, chromatin_profiles,
    heldout, heldout_truth, chromosome, chromosome_motifs.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths: dict[str, Path] = {}

    promoters = promoter_records(rng, NUM_PROMOTER_RECORDS)
    splits = _assign_splits(rng, len(promoters))
    paths["promoter"] = write_fasta(
        out / "promoter.fa",
        (
            (format_header(r.record_id, {"label": r.labels[0], "split": s}), r.sequence)
            for r, s in zip(promoters, splits, strict=True)
        ),
    )

    profile_names = list(CHROMATIN_PROFILES)
    chromatin = [chromatin_record(rng, f"chrom_{i + 1:05d}") for i in range(NUM_CHROMATIN_RECORDS)]
    splits = _assign_splits(rng, len(chromatin))
    paths["chromatin"] = write_fasta(
        out / "chromatin.fa",
        (
            (format_header(r.record_id, {"split": s}), r.sequence)
            for r, s in zip(chromatin, splits, strict=True)
        ),
    )
    paths["chromatin_labels"] = write_tsv(
        out / "chromatin_labels.tsv",
        ["id", *profile_names],
        ([r.record_id, *r.labels] for r in chromatin),
    )
    paths["chromatin_profiles"] = write_tsv(
        out / "chromatin_profiles.tsv",
        ["label", "group"],
        ([name, group] for name, (group, _) in CHROMATIN_PROFILES.items()),
    )

    heldout = promoter_records(rng, NUM_HELDOUT_PER_KIND, prefix="held_prom")
    heldout += [
        chromatin_record(rng, f"held_chrom_{i + 1:05d}") for i in range(NUM_HELDOUT_PER_KIND)
    ]
    order = rng.permutation(len(heldout))
    heldout = [heldout[i] for i in order]
    paths["heldout"] = write_fasta(out / "heldout.fa", ((r.record_id, r.sequence) for r in heldout))
    paths["heldout_motifs"] = write_tsv(
        out / "heldout_motifs.bed",
        None,  # BED6 on the records: id, start, end, motif, score, strand
        (
            [r.record_id, m.start, m.start + len(m.sequence), m.name, 0, m.strand]
            for r in heldout
            for m in r.planted
        ),
    )
    paths["heldout_truth"] = write_tsv(
        out / "heldout_truth.tsv",
        ["id", "task", "labels"],
        (
            [
                r.record_id,
                "promoter" if r.record_id.startswith("held_prom") else "chromatin",
                ",".join(str(v) for v in r.labels),
            ]
            for r in heldout
        ),
    )

    elements: list[tuple[int, int, str, str]] = []
    sequence, sites = chromosome(rng, base_composition(promoters), planted_out=elements)
    paths["chromosome"] = write_fasta(
        out / "chromosome.fa", [(f"{CHROMOSOME_ID} synthetic demo chromosome", sequence)]
    )
    paths["chromosome_motifs"] = write_tsv(
        out / "chromosome_motifs.bed",
        None,  # BED6 without a header line: chrom, start, end, name, score, strand
        ([CHROMOSOME_ID, start, end, name, 1000, strand] for start, end, name, strand in sites),
    )
    paths["chromosome_elements"] = write_tsv(
        out / "chromosome_elements.bed",
        None,
        ([CHROMOSOME_ID, start, end, name, 0, strand] for start, end, name, strand in elements),
    )
    # A stream of its own, so the variants never shift the data above.
    variants = demo_variants(np.random.default_rng([seed, 1]), sequence, elements)
    paths["variants"] = write_demo_vcf(out / "variants.vcf", variants)
    return paths


DemoVariant = tuple[int, str, str, tuple[str, ...]]  # 0-based start, id, REF, ALTs


def demo_variants(
    rng: np.random.Generator, sequence: np.ndarray, elements: list[tuple[int, int, str, str]]
) -> list[DemoVariant]:
    """Variants on the demo chromosome, sorted: SNVs in planted elements and elsewhere, small
    indels, one multi-allelic site, and one of each kind `variant-effect` must not score (a
    REF that disagrees with the genome, a symbolic <DEL>, a site too close to the contig end)."""
    upper = bytes(sequence).upper().decode("ascii")

    def other_base(base: str) -> str:
        return "ACGT".replace(base, "")[int(rng.integers(3))]

    def clean(start: int, length: int = 1) -> bool:
        return "N" not in upper[start - 400 : start + length + 400]

    variants: list[DemoVariant] = []
    used: set[int] = set()
    for index in rng.choice(len(elements), size=12, replace=False):
        start, end, name, _ = elements[int(index)]
        position = int(rng.integers(start, end))
        used.add(position)
        variants.append(
            (position, f"{name}_snv{position + 1}", upper[position],
             (other_base(upper[position]),))
        )
    while len(variants) < 24:
        position = int(rng.integers(500, CHROMOSOME_BP - 500))
        if position in used or not clean(position):
            continue
        used.add(position)
        variants.append(
            (position, f"snv_{len(variants) - 11:02d}", upper[position],
             (other_base(upper[position]),))
        )
    for index, element in enumerate(rng.choice(len(elements), size=3, replace=False)):
        start, _, name, _ = elements[int(element)]
        length = int(rng.integers(2, 6))
        variants.append(
            (start - 1, f"{name}_del{length}", upper[start - 1 : start + length],
             (upper[start - 1],))
        )
        position = int(rng.integers(5000, CHROMOSOME_BP - 5000)) + index
        inserted = random_bases(rng, int(rng.integers(1, 6)), BACKGROUND_PROBS).tobytes().decode()
        variants.append((position, f"ins_{index + 1}", upper[position],
                         (upper[position] + inserted,)))
    position = int(rng.integers(5000, CHROMOSOME_BP - 5000))
    variants.append((position, "multiallelic", upper[position],
                     tuple(b for b in "ACGT" if b != upper[position])[:2]))
    position = int(rng.integers(5000, CHROMOSOME_BP - 5000))
    wrong = other_base(upper[position])
    variants.append((position, "ref_mismatch_example", wrong, (other_base(wrong),)))
    variants.append((position + 3, "symbolic_deletion", upper[position + 3], ("<DEL>",)))
    variants.append((9, "near_contig_start", upper[9], (other_base(upper[9]),)))
    variants = [v for v in variants if "N" not in v[2]]
    return sorted(variants)


def write_demo_vcf(path: Path, variants: list[DemoVariant]) -> Path:
    """A sites-only VCF 4.2 of `variants` on the demo chromosome, written with pysam."""
    import pysam

    header = pysam.VariantHeader()
    header.add_line("##source=bigbird-genomics demo-data")
    header.contigs.add(CHROMOSOME_ID, length=CHROMOSOME_BP)
    header.add_line('##ALT=<ID=DEL,Description="Deletion">')
    header.add_line(
        '##INFO=<ID=END,Number=1,Type=Integer,Description="End position of the variant">'
    )
    with (
        atomic_path(path) as temporary,
        pysam.VariantFile(str(temporary), "w", header=header) as vcf,
    ):
        for start, variant_id, ref, alts in variants:
            # a symbolic <DEL> spans 100 bp (its INFO/END); sequence alleles span REF
            stop = start + (100 if alts[0].startswith("<") else len(ref))
            record = vcf.new_record(
                contig=CHROMOSOME_ID, start=start, stop=stop, alleles=(ref, *alts), id=variant_id
            )
            vcf.write(record)
    return path
