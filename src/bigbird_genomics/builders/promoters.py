"""Promoter data sets: positives plus one of three kinds of negatives, split before negatives.

Negatives (issue 6):
- "deepromoter": the DeePromoter recipe the BigBird paper used: cut each promoter into 20
  parts, keep 8 at random, replace the other 12 with uniformly random bases. Easy for a
  model that notices the random parts' composition; kept to compare with the literature.
- "dinucleotide": the same cut, but replaced parts are drawn from a first-order Markov chain
  fitted to that promoter, so mono- and dinucleotide statistics match (the honest default).
- "genomic": windows of the reference genome at least `min_tss_distance` from any TSS.

Splits are assigned to positives first (whole groups of positives that share sequence go
together); a negative made from a positive inherits its split, so no negative shares
sequence with a positive of another split.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bigbird_genomics.builders.markov import MarkovChain
from bigbird_genomics.builders.motifs import random_bases
from bigbird_genomics.io.peaks import covered_bases, n_runs

NEGATIVE_KINDS = ("deepromoter", "dinucleotide", "genomic")
NUM_PARTS = 20
NUM_KEPT_PARTS = 8


@dataclass
class LabelledSequence:
    """One output record: `source` is the positive a negative was made from (or itself)."""

    record_id: str
    sequence: np.ndarray
    label: int
    split: str
    source: str


def part_bounds(length: int, num_parts: int = NUM_PARTS) -> list[tuple[int, int]]:
    """Start/end of `num_parts` near-equal consecutive parts (np.array_split's rule)."""
    edges = np.linspace(0, length, num_parts + 1).round().astype(int)
    return [(int(edges[i]), int(edges[i + 1])) for i in range(num_parts)]


def choose_kept_parts(
    rng: np.random.Generator, num_parts: int = NUM_PARTS, num_kept: int = NUM_KEPT_PARTS
) -> np.ndarray:
    """Boolean mask over parts: True = keep the promoter's own bases."""
    kept = np.zeros(num_parts, dtype=bool)
    kept[rng.choice(num_parts, size=num_kept, replace=False)] = True
    return kept


def deepromoter_negative(
    rng: np.random.Generator, promoter: np.ndarray, kept: np.ndarray | None = None
) -> np.ndarray:
    """DeePromoter negative: kept parts verbatim, the rest uniformly random bases."""
    kept = choose_kept_parts(rng) if kept is None else kept
    negative = np.array(promoter, dtype=np.uint8, copy=True)
    for (start, end), keep in zip(part_bounds(len(promoter), len(kept)), kept, strict=True):
        if not keep:
            negative[start:end] = random_bases(rng, end - start)
    return negative


def dinucleotide_negative(
    rng: np.random.Generator,
    promoter: np.ndarray,
    kept: np.ndarray | None = None,
    pseudocount: float = 0.5,
) -> np.ndarray:
    """Dinucleotide-matched negative: replaced parts come from a first-order chain fitted to this
    promoter, each part continuing from the base before it so junctions keep the statistics."""
    kept = choose_kept_parts(rng) if kept is None else kept
    chain = MarkovChain.fit([promoter], order=1, pseudocount=pseudocount)
    negative = np.array(promoter, dtype=np.uint8, copy=True)
    for (start, end), keep in zip(part_bounds(len(promoter), len(kept)), kept, strict=True):
        if not keep:
            negative[start:end] = chain.continue_from(
                rng, negative[max(0, start - 1) : start], end - start
            )
    return negative


def shuffled_parts_negatives(
    positives: Sequence[LabelledSequence],
    kind: str,
    seed: int = 0,
    negatives_per_positive: int = 1,
    train_negatives_per_positive: int | None = None,
) -> list[LabelledSequence]:
    """DeePromoter or dinucleotide negatives, each inheriting its positive's split.

    `train_negatives_per_positive` (>= negatives_per_positive) draws more for the training
    split only: the recipe is a generator, so more of its negatives are free data. The extras
    come from their own random stream, after the others, so val/test (and the first
    `negatives_per_positive` training negatives) are the same records whatever the ratio.
    """
    if kind not in ("deepromoter", "dinucleotide"):
        raise ValueError(f"kind must be 'deepromoter' or 'dinucleotide', got {kind!r}")
    train_count = (
        negatives_per_positive if train_negatives_per_positive is None
        else train_negatives_per_positive
    )
    if train_count < negatives_per_positive:
        raise ValueError(
            f"train negatives per positive ({train_count}) must be at least the negatives per "
            f"positive of every split ({negatives_per_positive})"
        )
    make = deepromoter_negative if kind == "deepromoter" else dinucleotide_negative

    def draw(rng: np.random.Generator, positive: LabelledSequence, name: str):
        sequence = make(rng, positive.sequence)
        return LabelledSequence(name, sequence, 0, positive.split, positive.record_id)

    rng = np.random.default_rng(seed)
    negatives = []
    for positive in positives:
        for copy in range(negatives_per_positive):
            suffix = "" if negatives_per_positive == 1 else f"_{copy + 1}"
            negatives.append(draw(rng, positive, f"neg_{positive.record_id}{suffix}"))
    extra_rng = np.random.default_rng([seed, 0xE87A])
    for positive in positives:
        if positive.split != "train":
            continue
        for copy in range(negatives_per_positive, train_count):
            name = f"neg_{positive.record_id}_train{copy + 1}"  # never a base negative's name
            negatives.append(draw(extra_rng, positive, name))
    return negatives


def genomic_background_windows(
    genome: Iterable[tuple[str, np.ndarray]],
    sizes: dict[str, int],
    tss: dict[str, np.ndarray],
    count: int,
    length: int,
    *,
    min_tss_distance: int = 5000,
    max_n_fraction: float = 0.0,
    seed: int = 0,
) -> list[tuple[str, int, np.ndarray]]:
    """`count` non-overlapping windows of `length` bp, each >= `min_tss_distance` from every TSS.

    `genome` yields (chromosome, sequence) one at a time, so only one chromosome is in memory;
    `sizes` (chromosome -> length, a first pass or a .fai) spreads windows over chromosomes in
    proportion to their length. Returns (chromosome, start, sequence) in genome order.
    """
    usable = {name: size for name, size in sizes.items() if size >= length}
    if not usable:
        raise ValueError("the genome holds no chromosome long enough for one window")
    rng = np.random.default_rng(seed)
    weights = np.array(list(usable.values()), dtype=float)
    wanted_per_chrom = dict(
        zip(usable, rng.multinomial(count, weights / weights.sum()), strict=True)
    )
    windows: list[tuple[str, int, np.ndarray]] = []
    for name, sequence in genome:
        wanted = wanted_per_chrom.get(name, 0)
        if wanted == 0 or len(sequence) < length:
            continue
        sites = np.sort(tss.get(name, np.empty(0, dtype=np.int64)))
        # candidate starts on a non-overlapping grid, offset at random, then filtered
        offset = int(rng.integers(0, length))
        starts = np.arange(offset, len(sequence) - length + 1, length)
        if len(sites):
            # distance from the window [start, start+length) to the nearest TSS
            left = np.searchsorted(sites, starts, side="left")
            before = np.where(left > 0, starts - sites[np.maximum(left - 1, 0)], np.inf)
            right = np.searchsorted(sites, starts + length, side="left")
            after = np.where(
                right < len(sites),
                sites[np.minimum(right, len(sites) - 1)] - (starts + length - 1),
                np.inf,
            )
            inside = right > left
            distance = np.where(inside, 0, np.minimum(before, after))
            starts = starts[distance >= min_tss_distance]
        n_counts = covered_bases(n_runs(sequence), starts, starts + length)
        starts = starts[n_counts <= max_n_fraction * length]
        chosen = np.sort(rng.choice(starts, size=min(int(wanted), len(starts)), replace=False))
        windows.extend((name, int(s), sequence[s : s + length].copy()) for s in chosen)
    if len(windows) < count:
        raise ValueError(
            f"found only {len(windows)} background windows of {length} bp at least "
            f"{min_tss_distance} bp from a TSS, {count} wanted; lower min_tss_distance or the "
            "number of negatives"
        )
    return windows


def read_tss_bed(path: Path) -> dict[str, np.ndarray]:
    """TSS positions per chromosome from a BED file (strand-aware: '-' uses the end)."""
    from bigbird_genomics.io.peaks import read_bed_rows

    positions: dict[str, list[int]] = {}
    for row in read_bed_rows(path):
        position = row.end - 1 if row.strand == "-" else row.start
        positions.setdefault(row.chrom, []).append(position)
    return {chrom: np.array(sorted(values), dtype=np.int64) for chrom, values in positions.items()}


def promoters_from_genome(
    genome: str | Path, tss_bed: str | Path, upstream: int = 249, downstream: int = 50
) -> tuple[list[tuple[str, np.ndarray]], list[tuple[str, int, int]]]:
    """Strand-aware windows -upstream..+downstream around each TSS (the TSS base included).

    Each BED row is reduced to its TSS base (start on '+', end - 1 on '-') and cut with
    `intervals.extract_intervals`; windows that would run off a chromosome are dropped.
    Returns (id, sequence) and the (chrom, start, end) of each window, for overlap grouping.
    """
    from bigbird_genomics.builders.motifs import to_array
    from bigbird_genomics.io.intervals import Interval, extract_intervals
    from bigbird_genomics.io.peaks import read_bed_rows

    tss_sites = []
    for row in read_bed_rows(tss_bed):
        position = row.end - 1 if row.strand == "-" else row.start
        tss_sites.append(
            Interval(row.chrom, position, position + 1, row.name, row.strand, None, row.line)
        )
    sequences: list[tuple[str, np.ndarray]] = []
    coordinates: list[tuple[str, int, int]] = []
    seen_ids: set[str] = set()
    for window in extract_intervals(
        genome,
        tss_sites,
        upstream_bp=upstream,
        downstream_bp=downstream,
        off_chrom="drop",
        bed_path=tss_bed,
    ):
        record_id, copy = window.id, 1
        while record_id in seen_ids:  # two TSS rows with one name: ids must stay unique
            copy += 1
            record_id = f"{window.id}_{copy}"
        seen_ids.add(record_id)
        sequences.append((record_id, to_array(window.sequence.upper())))
        coordinates.append((window.chrom, window.start, window.end))
    return sequences, coordinates


def build_promoter_dataset(
    positives: Sequence[tuple[str, np.ndarray]],
    negative_kind: str,
    out_fasta: str | Path,
    *,
    coordinates: Sequence[tuple[str, int, int]] | None = None,
    genome: str | Path | None = None,
    tss_bed: str | Path | None = None,
    min_tss_distance: int = 5000,
    negatives_per_positive: int = 1,
    train_negatives_per_positive: int | None = None,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    shared_k: int = 50,
) -> dict[str, dict[str, int]]:
    """Positives -> splits (by shared sequence or overlap) -> negatives -> labelled FASTA.

    Returns counts {split: {"positives": n, "negatives": m}}.
    """
    from bigbird_genomics.builders.splits import (
        assign_group_splits,
        overlap_groups,
        shared_sequence_groups,
    )
    from bigbird_genomics.io.writers import format_header, write_fasta

    if negative_kind not in NEGATIVE_KINDS:
        raise ValueError(f"negative kind must be one of {NEGATIVE_KINDS}, got {negative_kind!r}")
    if coordinates is not None:
        chroms = [c for c, _, _ in coordinates]
        groups = overlap_groups(
            chroms,
            np.array([s for _, s, _ in coordinates]),
            np.array([e for _, _, e in coordinates]),
        )
    else:
        groups = shared_sequence_groups([seq for _, seq in positives], shared_k)
    splits = assign_group_splits(groups, fractions, seed)
    labelled = [
        LabelledSequence(record_id, np.asarray(seq, dtype=np.uint8), 1, split, record_id)
        for (record_id, seq), split in zip(positives, splits, strict=True)
    ]
    if negative_kind == "genomic" and train_negatives_per_positive not in (
        None, negatives_per_positive
    ):
        raise ValueError(
            "a training-only negative ratio is implemented for deepromoter and dinucleotide "
            "negatives; for genomic negatives use --negatives-per-positive for every split"
        )
    if negative_kind == "genomic":
        if genome is None or tss_bed is None:
            raise ValueError("genomic negatives need a genome FASTA and a TSS BED")
        negatives = _genomic_negatives(
            labelled, genome, tss_bed, min_tss_distance, negatives_per_positive, seed
        )
    else:
        negatives = shuffled_parts_negatives(
            labelled, negative_kind, seed + 1, negatives_per_positive,
            train_negatives_per_positive,
        )
    records = labelled + negatives
    order = np.random.default_rng(seed + 2).permutation(len(records))
    write_fasta(
        out_fasta,
        (
            (
                format_header(
                    records[i].record_id,
                    {
                        "label": records[i].label,
                        "split": records[i].split,
                        "source": records[i].source,
                    },
                ),
                records[i].sequence,
            )
            for i in order
        ),
    )
    counts: dict[str, dict[str, int]] = {}
    for record in records:
        entry = counts.setdefault(record.split, {"positives": 0, "negatives": 0})
        entry["positives" if record.label else "negatives"] += 1
    return counts


def _genomic_negatives(
    positives: Sequence[LabelledSequence],
    genome: str | Path,
    tss_bed: str | Path,
    min_tss_distance: int,
    negatives_per_positive: int,
    seed: int,
) -> list[LabelledSequence]:
    """Background windows, as many per split as that split has positives times the ratio.

    Windows are >= min_tss_distance from every TSS, so (with flanks shorter than that) none
    overlaps any positive; which split a window joins is then free and only balances counts.
    """
    from bigbird_genomics.io.fasta import read_fasta

    lengths = {len(p.sequence) for p in positives}
    if len(lengths) != 1:
        raise ValueError(
            f"genomic negatives need positives of one length, found {sorted(lengths)[:5]}"
        )
    length = lengths.pop()
    count = len(positives) * negatives_per_positive
    sizes = {record.id: len(record) for record in read_fasta(genome)}  # first pass: lengths
    windows = genomic_background_windows(
        ((r.id, r.sequence) for r in read_fasta(genome)),
        sizes,
        read_tss_bed(Path(tss_bed)),
        count,
        length,
        min_tss_distance=min_tss_distance,
        seed=seed + 1,
    )
    order = np.random.default_rng(seed + 1).permutation(len(windows))
    split_list = [p.split for p in positives for _ in range(negatives_per_positive)]
    negatives = []
    for split, index in zip(split_list, order, strict=True):
        chrom, start, sequence = windows[index]
        record_id = f"bg_{chrom}:{start}-{start + length}"
        negatives.append(LabelledSequence(record_id, sequence, 0, split, "background"))
    return negatives
