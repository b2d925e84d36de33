"""Chromatin-profile data sets in the DeepSEA/Basset style, from a genome and peak files.

The genome is tiled into `bin_bp` bins; a bin is labelled 1 for a profile when peaks of that
profile cover at least half of it. The model sees the bin with `flank_bp` of context on both
sides. Every labelled bin is kept, unlabelled bins are sampled as negatives at
`negative_ratio` per labelled bin, and whole chromosomes are held out for validation and test
(DeepSEA held out chr8 and chr9), so neighbouring, overlapping windows never straddle splits.

Also: a two-class data set from two FASTA files (e.g. Oct4 vs MafK ChIP-seq peaks).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bigbird_genomics.builders.splits import assign_group_splits, shared_sequence_groups
from bigbird_genomics.errors import UserError
from bigbird_genomics.io.peaks import Profile, covered_bases, merged_intervals, n_runs
from bigbird_genomics.io.writers import format_header, write_fasta, write_tsv


@dataclass(frozen=True)
class ChromatinSettings:
    """How bins, windows, negatives and splits are made (defaults follow DeepSEA)."""

    bin_bp: int = 200
    flank_bp: int = 400
    min_overlap_fraction: float = 0.5
    negative_ratio: float = 1.0
    val_chroms: tuple[str, ...] = ("chr7",)
    test_chroms: tuple[str, ...] = ("chr8", "chr9")
    max_n_fraction: float = 0.0
    seed: int = 0

    @property
    def window_bp(self) -> int:
        return self.bin_bp + 2 * self.flank_bp


@dataclass
class ChromatinSummary:
    """Counts per split, for the builder's log line and tests."""

    windows: dict[str, int] = field(default_factory=dict)
    positives_per_profile: dict[str, int] = field(default_factory=dict)


def label_bins(
    peaks_per_profile: Sequence[dict[str, np.ndarray]],
    chrom: str,
    bin_starts: np.ndarray,
    bin_bp: int,
    min_overlap_fraction: float = 0.5,
) -> np.ndarray:
    """`[bins, profiles]` uint8: 1 where a profile's merged peaks cover >= the fraction of a bin."""
    needed = int(np.ceil(min_overlap_fraction * bin_bp))
    labels = np.zeros((len(bin_starts), len(peaks_per_profile)), dtype=np.uint8)
    for column, peaks in enumerate(peaks_per_profile):
        intervals = peaks.get(chrom, np.empty((0, 2), dtype=np.int64))
        labels[:, column] = covered_bases(intervals, bin_starts, bin_starts + bin_bp) >= needed
    return labels


def chromosome_windows(
    chrom: str,
    sequence: np.ndarray,
    peaks_per_profile: Sequence[dict[str, np.ndarray]],
    settings: ChromatinSettings,
    rng: np.random.Generator,
    blacklist: dict[str, np.ndarray] | None = None,
) -> list[tuple[int, np.ndarray]]:
    """(window start, labels) for one chromosome: all labelled bins plus sampled negatives.

    Bins whose window runs off the chromosome, holds too many N, or touches the blacklist
    are dropped before sampling.
    """
    length = len(sequence)
    first = settings.flank_bp
    bin_starts = np.arange(first, length - settings.bin_bp - settings.flank_bp + 1, settings.bin_bp)
    if len(bin_starts) == 0:
        return []
    window_starts = bin_starts - settings.flank_bp
    keep = np.ones(len(bin_starts), dtype=bool)
    if blacklist and chrom in blacklist:
        keep &= (
            covered_bases(blacklist[chrom], window_starts, window_starts + settings.window_bp) == 0
        )
    n_count = covered_bases(n_runs(sequence), window_starts, window_starts + settings.window_bp)
    keep &= n_count <= settings.max_n_fraction * settings.window_bp
    labels = label_bins(
        peaks_per_profile, chrom, bin_starts, settings.bin_bp, settings.min_overlap_fraction
    )
    positive = keep & labels.any(axis=1)
    candidates = np.flatnonzero(keep & ~labels.any(axis=1))
    wanted = min(len(candidates), int(round(settings.negative_ratio * positive.sum())))
    chosen = np.sort(rng.choice(candidates, size=wanted, replace=False)) if wanted else []
    selected = np.union1d(np.flatnonzero(positive), np.asarray(chosen, dtype=np.int64))
    return [(int(window_starts[i]), labels[i]) for i in selected]


def _split_of(chrom: str, settings: ChromatinSettings) -> str:
    if chrom in settings.test_chroms:
        return "test"
    if chrom in settings.val_chroms:
        return "val"
    return "train"


def build_chromatin_dataset(
    genome: str | Path,
    profiles: Sequence[Profile],
    out_dir: str | Path,
    settings: ChromatinSettings = ChromatinSettings(),
    blacklist: str | Path | None = None,
) -> tuple[dict[str, Path], ChromatinSummary]:
    """Genome FASTA + profiles -> `chromatin.fa` (`split=`), `chromatin_labels.tsv`,
    `chromatin_profiles.tsv` in `out_dir`. The genome is read one chromosome at a time."""
    from bigbird_genomics.io.fasta import read_fasta

    out = Path(out_dir)
    peaks = [merged_intervals(p.path) for p in profiles]
    masked = merged_intervals(blacklist) if blacklist else None
    rng = np.random.default_rng(settings.seed)
    names = [p.name for p in profiles]
    summary = ChromatinSummary(positives_per_profile=dict.fromkeys(names, 0))
    label_rows: list[list[object]] = []
    seen_chroms: set[str] = set()

    def records():
        for record in read_fasta(genome):
            seen_chroms.add(record.id)
            split = _split_of(record.id, settings)
            for start, labels in chromosome_windows(
                record.id, record.sequence, peaks, settings, rng, masked
            ):
                record_id = f"{record.id}:{start}-{start + settings.window_bp}"
                label_rows.append([record_id, *labels.tolist()])
                summary.windows[split] = summary.windows.get(split, 0) + 1
                for name, value in zip(names, labels, strict=True):
                    summary.positives_per_profile[name] += int(value)
                yield (
                    format_header(record_id, {"split": split}),
                    record.sequence[start : start + settings.window_bp],
                )

    paths = {"fasta": write_fasta(out / "chromatin.fa", records())}
    peak_chroms = set().union(*(set(p) for p in peaks))
    if not peak_chroms & seen_chroms:
        raise UserError(
            f"{genome}: no chromosome name of the genome "
            f"({', '.join(sorted(seen_chroms)[:5])}, ...) occurs in the peak files "
            f"({', '.join(sorted(peak_chroms)[:5])}, ...); use peak files "
            "made against this genome build, with the same naming (e.g. 'chr1' vs '1')"
        )
    if not label_rows:
        raise UserError(f"{genome}: no window could be made; check bin/flank sizes and N content")
    paths["labels"] = write_tsv(out / "chromatin_labels.tsv", ["id", *names], label_rows)
    paths["profiles"] = write_tsv(
        out / "chromatin_profiles.tsv", ["label", "group"], ([p.name, p.group] for p in profiles)
    )
    return paths, summary


def build_two_class_dataset(
    positive_fasta: str | Path,
    negative_fasta: str | Path,
    out_fasta: str | Path,
    *,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    shared_k: int = 50,
) -> dict[str, int]:
    """Two FASTA files (class 1, class 0) -> one labelled FASTA, `label=` and `split=` headers.

    Records sharing a `shared_k`-mer across both files are kept in one split. Ids are prefixed
    `pos_`/`neg_` since two peak files may use the same coordinates as ids. Returns split counts.
    """
    from bigbird_genomics.io.fasta import read_fasta

    records = [("pos", 1, r) for r in read_fasta(positive_fasta)] + [
        ("neg", 0, r) for r in read_fasta(negative_fasta)
    ]
    groups = shared_sequence_groups([r.sequence for _, _, r in records], shared_k)
    splits = assign_group_splits(groups, fractions, seed)
    order = np.random.default_rng(seed).permutation(len(records))
    write_fasta(
        out_fasta,
        (
            (
                format_header(
                    f"{records[i][0]}_{records[i][2].id}",
                    {"label": records[i][1], "split": splits[i]},
                ),
                records[i][2].sequence,
            )
            for i in order
        ),
    )
    return {name: splits.count(name) for name in ("train", "val", "test")}
