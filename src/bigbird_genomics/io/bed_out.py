"""Peaks as BED: runs of consecutive intervals whose value reaches a threshold, merged.

A genome scan gives one probability per window; a biologist wants the regions ("peaks") where
the model calls the label. Intervals that touch (one's end is the next one's start) and all
reach the threshold become one BED interval, scored by their highest value.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from bigbird_genomics.io.writers import atomic_open

SCORE_FORMAT = "{:.6g}"


@dataclass
class Peak:
    """A merged region, 0-based half-open; `score` is the highest value inside it."""

    chrom: str
    start: int
    end: int
    name: str
    score: float


class PeakMerger:
    """Merges one label's entries as they stream by (sorted, not overlapping): touching entries
    with value >= `threshold` grow one peak; a gap (an unscored window), another record or a
    value below the threshold closes it."""

    def __init__(self, name: str, threshold: float) -> None:
        self.name = name
        self.threshold = threshold
        self.current: Peak | None = None

    def add(self, chrom: str, start: int, end: int, value: float) -> Peak | None:
        """Feed one entry; returns the peak it closed, if any."""
        current = self.current
        if value < self.threshold:
            self.current = None
            return current
        if current is not None and current.chrom == chrom and current.end == start:
            current.end, current.score = end, max(current.score, value)
            return None
        self.current = Peak(chrom, start, end, self.name, value)
        return current

    def finish(self) -> Peak | None:
        """The peak still open at the end of the input (or of a record)."""
        current, self.current = self.current, None
        return current


def merge_peaks(
    entries: Iterable[tuple[str, int, int, float]], threshold: float, name: str
) -> Iterator[Peak]:
    """The peaks of one label's entries."""
    merger = PeakMerger(name, threshold)
    for entry in entries:
        if (peak := merger.add(*entry)) is not None:
            yield peak
    if (peak := merger.finish()) is not None:
        yield peak


def write_peaks(path: str | os.PathLike[str], peaks: Iterable[Peak]) -> int:
    """BED6 (chrom, start, end, name, score, strand '.'), written atomically; returns the count.

    The score column holds the peak's highest probability (0-1), not BED's 0-1000 integer: a
    probability is what the numbers mean, and bedtools/pybedtools read it as is.
    """
    count = 0
    with atomic_open(path) as stream:
        for peak in peaks:
            score = SCORE_FORMAT.format(peak.score)
            stream.write(f"{peak.chrom}\t{peak.start}\t{peak.end}\t{peak.name}\t{score}\t.\n")
            count += 1
    return count
