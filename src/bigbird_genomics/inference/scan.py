"""Predict on new FASTA files: one row per record, one bedGraph interval per scanned window.

The default window is the sequence length the model was trained on (the longest training
example, recorded in the checkpoint), not its whole context: a model trained on 300 bp records
has never seen a 4 kbp input, and its scores on one are not what it learned. Checkpoints
without that record fall back to the context.

Records longer than the model's context are scanned with overlapping windows. Everything
streams: records come one at a time from `fasta.read_fasta`, windows are planned lazily and
scored `batch_size` at a time, and per-record results are running max / sum accumulators, so a
whole chromosome never has more than one batch of windows in memory.

Outputs (both written atomically):
- TSV: `id`, `length`, `num_windows`, then `<label>_max` and `<label>_mean` per label (the
  maximum and the mean of the record's window probabilities; equal for a record that fits one
  window).
- bigWig (optional): `PREFIX.<label>.bw`, the bedGraph's intervals and values (pyBigWig),
  chromosome sizes from the FASTA's records.
- peaks (optional BED6): per label, consecutive intervals with probability >= the threshold
  merged into one (name = label, score = highest probability), sorted by record (FASTA order),
  start, then label.
- bedGraph (optional): one `track type=bedGraph name=<label>` section per label, each line
  `record_id start end probability` (0-based, half-open). Overlapping windows would give
  overlapping intervals, which genome browsers and bedGraphToBigWig reject, so each window
  reports the part of the record nearer its centre than its neighbours': the midpoint of each
  overlap is the boundary, and the intervals tile every record exactly.

A run may score a subset of the records: `records` (ids) or `shard=(i, n)` (every n-th record
from the i-th, 0-based, so that n jobs split a genome and `gather.gather_predictions`
interleaves their outputs back into FASTA order).

Windows that are mostly N (assembly gaps: more than `max_n_fraction` of their k-mers contain an
N, default half) are not scored: a model fed nothing but [UNK] tokens still returns a
probability, and gaps would show up as peaks. k-mers, not bases, because that is what the model
sees: with k=6, one N in every six bases leaves no k-mer known. They get no bedGraph interval
and do not count in a record's max and mean; a record without any scored window gets NaN.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

import numpy as np
from tqdm import tqdm

from bigbird_genomics.errors import UserError
from bigbird_genomics.inference._common import batches
from bigbird_genomics.io.atomic import temp_prefix
from bigbird_genomics.io.bed_out import Peak, PeakMerger, write_peaks
from bigbird_genomics.io.bigwig import bigwig_path, write_bigwig
from bigbird_genomics.io.fasta import FastaPolicy, FastaRecord, read_fasta, reverse_complement
from bigbird_genomics.io.labels import CLASS_LABEL, header_fields
from bigbird_genomics.io.writers import atomic_open
from bigbird_genomics.tokens.kmers import UNK_ID, KmerTokenizer

DEFAULT_BATCH_SIZE = 32
DEFAULT_MAX_N_FRACTION = 0.5
STRANDS = ("both", "forward")
VALUE_FORMAT = "{:.6g}"


class EmptyFastaError(UserError):
    """The FASTA holds no records: nothing to predict."""


class CheckpointNotFoundError(UserError):
    """The --checkpoint path does not exist."""


class LabelMismatchError(UserError):
    """The FASTA's header labels do not fit the checkpoint's outputs: made for another task."""


class WindowSizeError(UserError):
    """A scan window the checkpoint's context cannot hold, or an overlap that leaves no step."""


class WindowScorer(Protocol):
    """What `predict_fasta` needs of a model: `inference.LoadedModel` implements it."""

    tokenizer: KmerTokenizer
    label_names: Sequence[str]
    task_type: str
    max_tokens: int

    def predict_proba(self, tokens: list[np.ndarray]) -> np.ndarray: ...


@dataclass(frozen=True)
class ScanPlan:
    """Window length and overlap in bp; `step_bp` is how far consecutive windows move;
    `source` says where the window length came from (for the start-up line)."""

    window_bp: int
    overlap_bp: int
    source: str = field(default="--window-bp", compare=False)

    @property
    def step_bp(self) -> int:
        return self.window_bp - self.overlap_bp


@dataclass
class PredictionSummary:
    """What a prediction run did, for the CLI to print and tests to check."""

    num_records: int = 0
    num_bases: int = 0
    num_windows: int = 0
    num_unscored_windows: int = 0  # mostly N, or too short to hold one k-mer
    num_peaks: int = 0
    label_names: list[str] = field(default_factory=list)
    plan: ScanPlan | None = None
    chrom_sizes: list[tuple[str, int]] = field(default_factory=list)
    bigwigs: list[Path] = field(default_factory=list)


def scan_plan(
    model: WindowScorer, window_bp: int | None = None, overlap_bp: int | None = None
) -> ScanPlan:
    """The window plan for `model`: by default the length it was trained on (the longest
    training example; the longest window its context holds for checkpoints that do not record
    it), with half a window of overlap.

    `max_tokens` counts [CLS], so a window may hold `max_tokens - 1` k-mer tokens.
    """
    tokenizer = model.tokenizer
    context_bp = tokenizer.max_bases(model.max_tokens - 1)
    trained_bp = getattr(model, "trained_window_bp", None)
    if window_bp is not None:
        window, source = int(window_bp), "--window-bp"
    elif trained_bp:
        window, source = min(int(trained_bp), context_bp), "the training examples' length"
    else:
        window, source = context_bp, "the checkpoint's context"
    if window < tokenizer.k:
        raise WindowSizeError(
            f"--window-bp {window} is shorter than the checkpoint's k-mer length {tokenizer.k}; "
            f"use a window between {tokenizer.k} and {context_bp} bp"
        )
    if tokenizer.num_tokens(window) > model.max_tokens - 1:
        raise WindowSizeError(
            f"--window-bp {window} gives {tokenizer.num_tokens(window)} tokens, more than the "
            f"checkpoint's context of {model.max_tokens - 1} k-mer tokens (+[CLS]); use "
            f"--window-bp {context_bp} or less"
        )
    overlap = window // 2 if overlap_bp is None else int(overlap_bp)
    if not 0 <= overlap < window:
        raise WindowSizeError(
            f"--overlap-bp {overlap} must be >= 0 and smaller than the window ({window} bp)"
        )
    return ScanPlan(window, overlap, source)


def parse_shard(text: str) -> tuple[int, int]:
    """`I/N` (0-based I < N) -> (I, N)."""
    index, _, count = text.partition("/")
    try:
        shard = int(index), int(count)
    except ValueError:
        shard = (-1, 0)
    if not 0 <= shard[0] < shard[1]:
        raise UserError(f"--shard {text!r} must be I/N with 0 <= I < N, e.g. 0/4")
    return shard


def indexed_lengths(fasta: str | os.PathLike[str]) -> dict[str, int] | None:
    """Record lengths from the FASTA's samtools/pyfaidx index (`.fai` beside it), if there is
    one: the progress bar's total and an early check of `--records` names."""
    index = Path(f"{fasta}.fai")
    if not index.is_file():
        return None
    lengths: dict[str, int] = {}
    with index.open(encoding="utf-8") as stream:
        for line in stream:
            fields = line.split("\t")
            if len(fields) >= 2 and fields[1].strip().isdigit():
                lengths[fields[0]] = int(fields[1])
    return lengths


def _selected(
    records: Iterable[FastaRecord], wanted: set[str] | None, shard: tuple[int, int] | None
) -> Iterator[FastaRecord]:
    """The records a run scores: all, those named, or one shard's (every n-th)."""
    for index, record in enumerate(records):
        if shard is not None and index % shard[1] != shard[0]:
            continue
        if wanted is not None and record.id not in wanted:
            continue
        yield record


def iter_windows(length_bp: int, plan: ScanPlan) -> Iterator[tuple[int, int]]:
    """(start, end) windows covering [0, length_bp), lazily, in order.

    The same plan as `kmers.plan_windows` (fixed step, last window flush with the record's end),
    but a generator: a human chromosome has ~10^6 windows and none of them needs to be listed.
    """
    if length_bp <= 0:
        return
    if length_bp <= plan.window_bp:
        yield 0, length_bp
        return
    last_start = length_bp - plan.window_bp
    start = 0
    while start < last_start:
        yield start, start + plan.window_bp
        start += plan.step_bp
    yield last_start, length_bp


@dataclass
class _Window:
    record_index: int
    start: int
    end: int


@dataclass
class _RecordScan:
    """Running per-record aggregates and the one-window lookahead the bedGraph tiling needs."""

    record_id: str
    length: int
    num_labels: int
    num_windows: int = 0
    num_scored: int = 0
    score_max: np.ndarray = field(init=False)
    score_sum: np.ndarray = field(init=False)
    pending: tuple[int, int, np.ndarray] | None = None  # (interval start, window end, scores)

    def __post_init__(self) -> None:
        self.score_max = np.full(self.num_labels, -np.inf)
        self.score_sum = np.zeros(self.num_labels)

    def add(self, start: int, end: int, scores: np.ndarray, bedgraph: IO[str] | None) -> None:
        self.num_windows += 1
        if not np.isnan(scores).any():
            self.num_scored += 1
            np.maximum(self.score_max, scores, out=self.score_max)
            self.score_sum += scores
        if self.pending is not None:
            pending_start, pending_end, pending_scores = self.pending
            # Boundary: midpoint of the overlap between the pending window and this one.
            boundary = max(pending_start, min((start + pending_end) // 2, end))
            _write_interval(bedgraph, self.record_id, pending_start, boundary, pending_scores)
            self.pending = (boundary, end, scores)
        else:
            self.pending = (0, end, scores)

    def finish(self, bedgraph: IO[str] | None) -> list[str]:
        if self.pending is not None:
            pending_start, _, pending_scores = self.pending
            _write_interval(bedgraph, self.record_id, pending_start, self.length, pending_scores)
        if self.num_scored:
            score_max, mean = self.score_max, self.score_sum / self.num_scored
        else:
            score_max = mean = np.full(self.num_labels, np.nan)
        row = [self.record_id, str(self.length), str(self.num_windows)]
        for label_max, label_mean in zip(score_max, mean, strict=True):
            row += [VALUE_FORMAT.format(label_max), VALUE_FORMAT.format(label_mean)]
        return row


def _write_interval(
    stream: IO[str] | None, record_id: str, start: int, end: int, scores: np.ndarray
) -> None:
    if stream is None or end <= start or np.isnan(scores).any():
        return  # bedGraph has no missing values: a window without a k-mer is left out
    values = "\t".join(VALUE_FORMAT.format(value) for value in scores)
    stream.write(f"{record_id}\t{start}\t{end}\t{values}\n")


def check_header_labels(record: FastaRecord, model: WindowScorer) -> None:
    """Refuse a record whose header labels do not fit the checkpoint (`label=`/`labels=` of
    another count, `class=` for a model that is not multi-class, or the reverse): the FASTA was
    built for another task than the model was trained on."""
    fields = header_fields(record.description)
    if (CLASS_LABEL in fields) != (model.task_type == "multiclass") and (
        CLASS_LABEL in fields or {"label", "labels"} & set(fields)
    ):
        raise LabelMismatchError(
            f"{record.where()}: the header's labels are for a "
            + ("multi-class" if CLASS_LABEL in fields else "0/1-label")
            + f" task but the checkpoint is a {model.task_type} model; use the checkpoint "
            "trained on this kind of data, or a FASTA without labels"
        )
    if model.task_type not in ("binary", "multilabel"):
        return
    if "labels" in fields:
        count = len(fields["labels"].split(","))
    elif "label" in fields:
        count = 1
    else:
        return
    if count != len(model.label_names):
        raise LabelMismatchError(
            f"{record.where()}: the header carries {count} label(s) but the checkpoint predicts "
            f"{len(model.label_names)} ({', '.join(model.label_names)}); this FASTA was made "
            "for another task: use the checkpoint trained on it, or a FASTA without labels"
        )


def _windows(
    records: Iterable[FastaRecord],
    model: WindowScorer,
    plan: ScanPlan,
    strands: str,
    max_n_fraction: float,
) -> Iterator[tuple[FastaRecord, _Window, list[np.ndarray]]]:
    """Every window of every record with its tokens (one array per strand), one at a time;
    no tokens (so no score) for a window whose k-mers are mostly [UNK] (N)."""
    tokenizer = model.tokenizer
    no_tokens = np.empty(0, dtype=np.int64)
    for index, record in enumerate(records):
        check_header_labels(record, model)
        # An empty record still gets its row (of NaN) through one empty window.
        for start, end in (
            iter_windows(len(record.sequence), plan) if len(record.sequence) else [(0, 0)]
        ):
            # read_fasta upper-cases sequences and keeps the soft mask aside, and the tokenizer
            # maps k-mers with N (or other ambiguity codes) to UNK: the same path as training.
            window = record.sequence[start:end]
            tokens = [tokenizer.encode(window)]
            if np.count_nonzero(tokens[0] == UNK_ID) > max_n_fraction * len(tokens[0]):
                tokens = [no_tokens] * (2 if strands == "both" else 1)
            elif strands == "both":
                tokens.append(tokenizer.encode(reverse_complement(window)))
            yield record, _Window(index, start, end), tokens


def _score(model: WindowScorer, tokens: list[np.ndarray], num_labels: int) -> np.ndarray:
    """Probabilities [windows, labels]; NaN for a window without tokens (shorter than k, or
    mostly N)."""
    scores = np.full((len(tokens), num_labels), np.nan)
    scorable = [index for index, window_tokens in enumerate(tokens) if len(window_tokens)]
    if scorable:
        probabilities = np.asarray(
            model.predict_proba([tokens[i] for i in scorable]), dtype=np.float64
        )
        if probabilities.shape != (len(scorable), num_labels):
            raise RuntimeError(
                f"model returned scores of shape {probabilities.shape}, "
                f"expected {(len(scorable), num_labels)}"
            )
        scores[scorable] = probabilities
    return scores


def predict_fasta(
    loaded_model: WindowScorer,
    fasta: str | os.PathLike[str],
    out_tsv: str | os.PathLike[str],
    bedgraph: str | os.PathLike[str] | None = None,
    window_bp: int | None = None,
    overlap_bp: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    policy: FastaPolicy | None = None,
    progress: bool | None = None,
    strands: str = "both",
    max_n_fraction: float = DEFAULT_MAX_N_FRACTION,
    bigwig: str | os.PathLike[str] | None = None,
    peaks: str | os.PathLike[str] | None = None,
    threshold: float = 0.5,
    records: Sequence[str] | None = None,
    shard: tuple[int, int] | None = None,
) -> PredictionSummary:
    """Score the records of `fasta` with `loaded_model`; write the TSV (and bedGraph, bigWig
    per label `bigwig.<label>.bw`, peaks BED) atomically.

    `strands="both"` scores each window and its reverse complement and keeps the larger
    probability, so a promoter or binding site reads the same on either strand of the FASTA;
    `"forward"` scores the sequence as written (half the work, strand-specific).
    `progress=None` shows the bp progress bar only on a terminal. Windows in which more than
    `max_n_fraction` of the k-mers contain N are not scored (1.0 scores every window).
    """
    if batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {batch_size}")
    if strands not in STRANDS:
        raise UserError(f"--strands must be one of {', '.join(STRANDS)}, got {strands!r}")
    if bedgraph is not None and Path(bedgraph).resolve() == Path(out_tsv).resolve():
        raise UserError(f"--out and --bedgraph are the same file ({out_tsv}); give two paths")
    if not 0.0 <= max_n_fraction <= 1.0:
        raise UserError(f"--max-n-fraction must be between 0 and 1, got {max_n_fraction}")
    if peaks is not None and not 0.0 <= threshold <= 1.0:
        raise UserError(f"--threshold must be a probability between 0 and 1, got {threshold}")
    plan = scan_plan(loaded_model, window_bp, overlap_bp)
    labels = list(loaded_model.label_names)
    summary = PredictionSummary(label_names=labels, plan=plan)
    wanted = set(records) if records is not None else None
    lengths = indexed_lengths(fasta)
    if wanted is not None and lengths is not None and wanted - set(lengths):
        raise UserError(_unknown_records(fasta, wanted - set(lengths)))
    total = None
    if lengths is not None:
        names = list(lengths)
        total = sum(
            lengths[name]
            for index, name in enumerate(names)
            if (wanted is None or name in wanted)
            and (shard is None or index % shard[1] == shard[0])
        )
    stream = read_fasta(fasta, policy) if policy is not None else read_fasta(fasta)
    selection = _selected(stream, wanted, shard)
    needs_windows = bedgraph is not None or bigwig is not None or peaks is not None
    columns = ["id", "length", "num_windows"]
    for label in labels:
        columns += [f"{label}_max", f"{label}_mean"]

    with contextlib.ExitStack() as stack:
        tsv = stack.enter_context(atomic_open(out_tsv))
        tsv.write("\t".join(columns) + "\n")
        # Windows first go to one wide temporary file (all labels per line); the per-label
        # tracks are then copied out of it, so memory never holds more than one batch.
        wide = stack.enter_context(_temporary_text(out_tsv)) if needs_windows else None
        bar = stack.enter_context(
            tqdm(
                total=total,
                unit="bp",
                unit_scale=True,
                desc="predict",
                disable=None if progress is None else not progress,
            )
        )
        current: _RecordScan | None = None
        windows = _windows(selection, loaded_model, plan, strands, max_n_fraction)
        for batch in batches(windows, batch_size):
            per_strand = [
                _score(loaded_model, [tokens[strand] for _, _, tokens in batch], len(labels))
                for strand in range(len(batch[0][2]))
            ]
            scores = np.fmax.reduce(per_strand)
            for (record, window, _), window_scores in zip(batch, scores, strict=True):
                if current is None or window.record_index != summary.num_records - 1:
                    if current is not None:
                        tsv.write("\t".join(current.finish(wide)) + "\n")
                    current = _RecordScan(record.id, len(record.sequence), len(labels))
                    summary.num_records += 1
                    summary.num_bases += len(record.sequence)
                    summary.chrom_sizes.append((record.id, len(record.sequence)))
                previous_end = current.pending[1] if current.pending else 0
                current.add(window.start, window.end, window_scores, wide)
                summary.num_windows += 1
                summary.num_unscored_windows += bool(np.isnan(window_scores).any())
                bar.update(window.end - previous_end)
                bar.set_postfix_str(record.id, refresh=False)
        if wanted is not None and wanted - {name for name, _ in summary.chrom_sizes}:
            raise UserError(
                _unknown_records(fasta, wanted - {name for name, _ in summary.chrom_sizes})
            )
        if current is None and shard is None:
            raise EmptyFastaError(
                f"{fasta}: no FASTA records found, so there is nothing to predict; check that the "
                "file is a non-empty FASTA with '>' header lines"
            )
        if current is not None:  # a shard past the last record scores nothing, and says so
            tsv.write("\t".join(current.finish(wide)) + "\n")
        if wide is not None:
            wide.flush()
            window_file = Path(wide.name)
            if bedgraph is not None:
                _write_bedgraph(window_file, bedgraph, labels)
            if bigwig is not None:
                for column, label in enumerate(labels):
                    summary.bigwigs.append(
                        write_bigwig(
                            bigwig_path(bigwig, label),
                            summary.chrom_sizes,
                            _window_entries(window_file, column),
                        )
                    )
            if peaks is not None:
                summary.num_peaks = write_peaks(
                    peaks, _peaks_by_record(window_file, labels, threshold)
                )
    return summary


def _unknown_records(fasta: str | os.PathLike[str], missing: set[str]) -> str:
    shown = ", ".join(sorted(missing)[:5]) + (", ..." if len(missing) > 5 else "")
    return (
        f"{fasta}: no record named {shown} (--records); use the ids after '>' in the FASTA "
        "(`cut -f1 genome.fa.fai` lists them)"
    )


def _window_entries(wide: Path, column: int) -> Iterator[tuple[str, int, int, float]]:
    """(record, start, end, value) of one label from the wide window file, in scan order."""
    with wide.open(encoding="utf-8") as rows:
        for row in rows:
            fields = row.rstrip("\n").split("\t")
            yield fields[0], int(fields[1]), int(fields[2]), float(fields[3 + column])


def _peaks_by_record(wide: Path, labels: Sequence[str], threshold: float) -> Iterator[Peak]:
    """Every label's peaks in one pass over the window file; each record's sorted by start, then
    label (memory: one record's peaks)."""
    mergers = [PeakMerger(label, threshold) for label in labels]
    buffered: list[Peak] = []
    record: str | None = None

    def flush(closing: bool) -> Iterator[Peak]:
        if closing:
            buffered.extend(peak for merger in mergers if (peak := merger.finish()) is not None)
        buffered.sort(key=lambda peak: (peak.start, labels.index(peak.name)))
        yield from buffered
        buffered.clear()

    with wide.open(encoding="utf-8") as rows:
        for row in rows:
            fields = row.rstrip("\n").split("\t")
            chrom, start, end = fields[0], int(fields[1]), int(fields[2])
            if chrom != record:
                yield from flush(closing=True)
                record = chrom
            for merger, value in zip(mergers, fields[3:], strict=True):
                if (peak := merger.add(chrom, start, end, float(value))) is not None:
                    buffered.append(peak)
    yield from flush(closing=True)


@contextlib.contextmanager
def _temporary_text(beside: str | os.PathLike[str]) -> Iterator[IO[str]]:
    """A scratch text file beside an output (same disk), removed afterwards; named like the
    output's own temporaries, so a run killed outright leaves nothing the next one keeps."""
    directory = Path(beside).parent
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w+", encoding="utf-8", dir=directory, prefix=temp_prefix(beside), suffix=".windows"
    ) as stream:
        yield stream


def _write_bedgraph(wide: Path, out: str | os.PathLike[str], labels: Sequence[str]) -> None:
    """One bedGraph track per label, each copied out of the wide window file in one pass."""
    with atomic_open(out) as stream:
        for column, label in enumerate(labels):
            stream.write(bedgraph_track_line(label))
            with wide.open(encoding="utf-8") as rows:
                for row in rows:
                    fields = row.rstrip("\n").split("\t")
                    stream.write(f"{fields[0]}\t{fields[1]}\t{fields[2]}\t{fields[3 + column]}\n")


def bedgraph_track_line(label: str) -> str:
    """The `track` line that opens one label's section of a prediction bedGraph."""
    return (
        f'track type=bedGraph name="{label}" description="bigbird-genomics predict: '
        f'{label} probability per window"\n'
    )
