"""Variant effects: score a window of the genome around each VCF variant with REF and with ALT.

For every ALT allele of every VCF record (multi-allelic records are split), the model scores
two windows of `window_bp` bases (default: `predict`'s window, `scan_plan`: the length of the
model's training examples when the checkpoint records it, else the checkpoint's context):

- REF window: the genome with REF centred, `left = (window_bp - len(REF)) // 2` bases before it.
- ALT window: ALT re-centred in its own window, `(window_bp - len(ALT)) // 2` genome bases
  before it and the genome after REF filling the rest, so both windows are `window_bp` long
  and an indel shifts neither flank's reading frame against the genome (docs/downstream.md).

Both strands are averaged for a model trained on both (`data.reverse_complement=true`).
Everything streams: records are read one at a time, scored `batch_size` variants at a time
(2 windows each, 4 with both strands) and written before the next batch is read, so memory
does not grow with the VCF.

Variants that cannot be scored get a status and empty scores instead of stopping the run:
`ref_mismatch`, `unknown_chrom`, `symbolic` (`<DEL>`, `<*>`), `breakend`, `spanning_deletion`
(`*`), `no_alt` (`.`), `invalid_allele` (not A/C/G/T/N), `allele_too_long` (longer than the
window) and `near_contig_end` (the window would leave the contig).
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
from tqdm import tqdm

from bigbird_genomics.errors import UserError
from bigbird_genomics.inference._common import log_odds
from bigbird_genomics.inference.scan import scan_plan
from bigbird_genomics.io.atomic import atomic_path
from bigbird_genomics.io.intervals import open_genome
from bigbird_genomics.io.writers import atomic_open

DEFAULT_BATCH_SIZE = 64
VALUE_FORMAT = "{:.6g}"
OK = "ok"
STATUSES = (
    OK, "ref_mismatch", "unknown_chrom", "symbolic", "breakend", "spanning_deletion", "no_alt",
    "invalid_allele", "allele_too_long", "near_contig_end",
)
_BASES = re.compile(r"^[ACGTN]+$")
_BREAKEND = re.compile(r"[\[\]]|^\.[ACGTN]+$|^[ACGTN]+\.$")
BASE_COLUMNS = ["chrom", "pos", "id", "ref", "alt", "status"]


class VcfError(UserError):
    """A VCF that pysam cannot read, or a REF that does not match the genome under --strict."""


@dataclass
class VariantSummary:
    """Counts for the CLI's closing lines and for tests."""

    num_records: int = 0
    num_variants: int = 0
    statuses: Counter = field(default_factory=Counter)
    label_names: list[str] = field(default_factory=list)
    window_bp: int = 0


@dataclass
class _Variant:
    """One ALT allele of one record: where its row goes and, when scorable, its two windows."""

    chrom: str
    pos: int
    vcf_id: str
    ref: str
    alt: str
    status: str
    ref_window: str = ""
    alt_window: str = ""
    scores: np.ndarray | None = None  # [4, labels]: p_ref, p_alt, diff, log-odds ratio


def score_columns(label_names: Sequence[str]) -> list[str]:
    """The TSV columns after `BASE_COLUMNS`: four per label."""
    columns = []
    for label in label_names:
        columns += [f"{label}_p_ref", f"{label}_p_alt", f"{label}_diff", f"{label}_log_odds_ratio"]
    return columns


def info_key(label: str, what: str) -> str:
    """INFO key for a label (VCF keys allow letters, digits, '_' and '.')."""
    return "BB_" + re.sub(r"[^A-Za-z0-9_.]", "_", label) + "_" + what


def allele_status(ref: str, alt: str | None) -> str:
    """Why an allele pair cannot be scored from its sequence alone, or OK."""
    if alt is None or alt == ".":
        return "no_alt"
    if alt == "*":
        return "spanning_deletion"
    if alt.startswith("<"):
        return "symbolic"
    if _BREAKEND.search(alt):
        return "breakend"
    if not _BASES.match(ref.upper()) or not _BASES.match(alt.upper()):
        return "invalid_allele"
    return OK


def variant_windows(
    contig: str, start: int, ref: str, alt: str, window_bp: int, contig_length: int, fetch
) -> tuple[str, str, str]:
    """(status, REF window, ALT window) for the allele at 0-based `start` (see module doc).

    `fetch(contig, start, end)` returns the genome's bases (0-based, half-open).
    """
    if start + len(ref) > contig_length:
        return "near_contig_end", "", ""
    if fetch(contig, start, start + len(ref)).upper() != ref.upper():
        return "ref_mismatch", "", ""
    if len(ref) > window_bp or len(alt) > window_bp:
        return "allele_too_long", "", ""
    ref_left = (window_bp - len(ref)) // 2
    alt_left = (window_bp - len(alt)) // 2
    alt_right = window_bp - alt_left - len(alt)
    ref_right = window_bp - ref_left - len(ref)
    first = start - max(ref_left, alt_left)
    last = start + len(ref) + max(ref_right, alt_right)
    if first < 0 or last > contig_length:
        return "near_contig_end", "", ""
    span = fetch(contig, first, last).upper()
    anchor = start - first  # REF's offset in `span`
    ref_window = span[anchor - ref_left : anchor + len(ref) + ref_right]
    after = anchor + len(ref)
    alt_window = span[anchor - alt_left : anchor] + alt.upper() + span[after : after + alt_right]
    return OK, ref_window, alt_window


def effect_scores(p_ref: np.ndarray, p_alt: np.ndarray) -> np.ndarray:
    """[4, ...]: p_ref, p_alt, diff (alt - ref) and log-odds ratio (logit alt - logit ref)."""
    return np.stack([p_ref, p_alt, p_alt - p_ref, log_odds(p_alt) - log_odds(p_ref)])


def score_windows(model: Any, windows: Sequence[str]) -> np.ndarray:
    """Probabilities [windows, labels] of equal-length windows; both strands averaged for a
    model trained on both."""
    tokens = [model.tokenizer.encode(window) for window in windows]
    strands = "both" if getattr(model, "strand_symmetric", False) else "forward"
    return np.asarray(model.predict_proba(tokens, strands=strands), dtype=np.float64)


def _open_vcf(path: Path):
    import pysam

    if not path.is_file():
        raise VcfError(f"--vcf {path}: no such file")
    try:
        return pysam.VariantFile(str(path))
    except (ValueError, OSError) as error:
        raise VcfError(
            f"--vcf {path}: not a readable VCF/BCF ({error}); give a VCF (plain, bgzip) that "
            "starts with its ##fileformat=VCF header"
        ) from None


def _header_line_count(path: Path) -> int:
    """How many header lines (`#...`) the VCF file itself has, so record errors name the
    file's own line numbers: `str(vcf.header)` is htslib's rendering, which adds lines such as
    `##FILTER=<ID=PASS>` the file may lack. 0 for BCF (binary: no lines)."""
    with path.open("rb") as raw:
        compressed = raw.read(2) == b"\x1f\x8b"
    opener = gzip.open if compressed else open
    count = 0
    with opener(path, "rb") as stream:
        for line in stream:
            if not line.startswith(b"#"):
                break
            count += 1
    return count


def _records(vcf, path: Path, header_lines: int) -> Iterator[tuple[int, Any]]:
    """(line number, record) one at a time; a malformed line becomes a VcfError naming it."""
    line = header_lines
    iterator = iter(vcf)
    while True:
        try:
            record = next(iterator)
        except StopIteration:
            return
        except (ValueError, OSError) as error:
            raise VcfError(
                f"--vcf {path}: line {line + 1}: cannot parse this VCF record ({error}; htslib's "
                "reason is printed above); fix or remove that line"
            ) from None
        line += 1
        yield line, record


def _add_info_headers(header, label_names: Sequence[str], path: Path) -> None:
    """Declare END and the BB_* INFO fields. A VCF written by `--vcf-out` already declares
    them: those definitions are kept and the records' values overwritten (re-annotation)."""
    if "END" not in header.info:
        # symbolic alleles carry INFO/END; undeclared, htslib types it String and cannot write
        # the record back
        header.info.add("END", 1, "Integer", "End position of the variant")
    fields = [("BB_STATUS", "String",
               "bigbird-genomics variant-effect: ok, or why the ALT allele was not scored")]
    for label in label_names:
        fields += [
            (info_key(label, "DIFF"), "Float",
             f"bigbird-genomics variant-effect: {label} probability ALT minus REF"),
            (info_key(label, "LOR"), "Float",
             f"bigbird-genomics variant-effect: {label} log-odds ratio ALT vs REF"),
        ]
    for key, kind, description in fields:
        if key not in header.info:
            header.info.add(key, "A", kind, description)
            continue
        existing = header.info[key]
        if existing.number != "A" or existing.type != kind:
            raise VcfError(
                f"--vcf {path}: its header declares INFO/{key} as Number={existing.number}, "
                f"Type={existing.type}, not the Number=A, Type={kind} that --vcf-out writes; "
                f"remove that field first (`bcftools annotate -x INFO/{key}`)"
            )


def _declare_contigs(header, lengths: dict[str, int]) -> None:
    """Add every genome sequence the VCF header does not declare: htslib cannot write a
    record whose contig has no ##contig line (many VCFs have none)."""
    for name, length in lengths.items():
        if name not in header.contigs:
            header.contigs.add(name, length=length)


@contextlib.contextmanager
def _vcf_writer(path: Path, header) -> Iterator[Any]:
    """An annotated VCF written atomically; bgzipped and tabix-indexed when it ends in .gz."""
    import pysam

    compressed = path.name.endswith(".gz")
    with atomic_path(path) as temporary:
        with pysam.VariantFile(str(temporary), "wz" if compressed else "w", header=header) as out:
            yield out
        if compressed:
            # tabix writes `<temporary>.tbi`; it moves beside the output once the VCF is in place
            pysam.tabix_index(str(temporary), preset="vcf", force=True)
    if compressed:
        os.replace(f"{temporary}.tbi", f"{path}.tbi")
        os.chmod(f"{path}.tbi", 0o644)


def _format(values: np.ndarray | None, count: int) -> list[str]:
    if values is None:
        return [""] * count
    return [VALUE_FORMAT.format(value) for value in values.T.reshape(-1)]


def score_variants(
    model: Any,
    genome_path: str | os.PathLike[str],
    vcf_path: str | os.PathLike[str],
    out_tsv: str | os.PathLike[str],
    vcf_out: str | os.PathLike[str] | None = None,
    window_bp: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    strict: bool = False,
    progress: bool | None = None,
    decompress_to: str | os.PathLike[str] | None = None,
) -> VariantSummary:
    """Score every ALT allele of `vcf_path`; write the TSV (and the annotated VCF) atomically."""
    if batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {batch_size}")
    vcf_path, out_tsv = Path(vcf_path), Path(out_tsv)
    if vcf_out is not None and Path(vcf_out).resolve() in (vcf_path.resolve(), out_tsv.resolve()):
        raise UserError(f"--vcf-out {vcf_out} is also an input or --out; give another path")
    window = scan_plan(model, window_bp).window_bp
    labels = list(model.label_names)
    summary = VariantSummary(label_names=labels, window_bp=window)
    vcf = _open_vcf(vcf_path)
    header_lines = 0 if vcf.is_bcf else _header_line_count(vcf_path)
    columns = BASE_COLUMNS + score_columns(labels)
    with contextlib.ExitStack() as stack:
        stack.callback(vcf.close)
        genome = stack.enter_context(open_genome(genome_path, decompress_to=decompress_to))
        names = list(genome.keys())  # iterating a pyfaidx.Fasta yields records, not names
        lengths = {name: len(genome[name]) for name in names}

        def fetch(contig: str, start: int, end: int) -> str:
            return str(genome[contig][start:end])

        if vcf_out is not None:
            _add_info_headers(vcf.header, labels, vcf_path)
            _declare_contigs(vcf.header, lengths)
        tsv = stack.enter_context(atomic_open(out_tsv))
        tsv.write("\t".join(columns) + "\n")
        annotated = (
            stack.enter_context(_vcf_writer(Path(vcf_out), vcf.header)) if vcf_out else None
        )
        bar = stack.enter_context(
            tqdm(unit="variant", desc="variant-effect",
                 disable=None if progress is None else not progress)
        )
        pending: list[tuple[Any, list[_Variant]]] = []
        waiting = 0
        for line, record in _records(vcf, vcf_path, header_lines):
            variants = _split(record, window, lengths, fetch)
            for variant in variants:
                if variant.status == "ref_mismatch" and strict:
                    raise VcfError(
                        f"--vcf {vcf_path}: line {line}: REF {variant.ref} at "
                        f"{variant.chrom}:{variant.pos} does not match the genome {genome_path} "
                        f"({_genome_bases(fetch, variant)}); use the genome the VCF was called "
                        "on, or drop --strict to mark such variants ref_mismatch"
                    )
            pending.append((record, variants))
            waiting += sum(variant.status == OK for variant in variants)
            # records that cannot be scored count too, so a VCF of nothing but (say) unknown
            # chromosomes still streams
            if waiting >= batch_size or len(pending) >= 4 * batch_size:
                _flush(model, pending, tsv, annotated, summary, len(labels), bar)
                pending, waiting = [], 0
        _flush(model, pending, tsv, annotated, summary, len(labels), bar)
    return summary


def _genome_bases(fetch, variant: _Variant) -> str:
    start = variant.pos - 1
    return fetch(variant.chrom, start, start + len(variant.ref)).upper()


def _split(record, window: int, lengths: dict[str, int], fetch) -> list[_Variant]:
    """One `_Variant` per ALT allele of `record` (one with ALT '.' when it has none)."""
    variants = []
    for alt in record.alts or (None,):
        status = allele_status(record.ref, alt)
        if status == OK and record.chrom not in lengths:
            status = "unknown_chrom"
        ref_window = alt_window = ""
        if status == OK:
            status, ref_window, alt_window = variant_windows(
                record.chrom, record.start, record.ref, alt, window, lengths[record.chrom], fetch
            )
        variants.append(
            _Variant(record.chrom, record.pos, record.id or ".", record.ref, alt or ".", status,
                     ref_window, alt_window)
        )
    return variants


def _flush(
    model: Any,
    pending: list[tuple[Any, list[_Variant]]],
    tsv: IO[str],
    annotated: Any,
    summary: VariantSummary,
    num_labels: int,
    bar: tqdm,
) -> None:
    """Score the OK variants of `pending` in one batch, then write their rows in VCF order."""
    scorable = [variant for _, variants in pending for variant in variants if variant.status == OK]
    if scorable:
        probabilities = score_windows(
            model, [v.ref_window for v in scorable] + [v.alt_window for v in scorable]
        )
        p_ref, p_alt = probabilities[: len(scorable)], probabilities[len(scorable) :]
        scores = effect_scores(p_ref, p_alt)  # [4, variants, labels]
        for index, variant in enumerate(scorable):
            variant.scores = scores[:, index, :]
    for record, variants in pending:
        for variant in variants:
            row = [variant.chrom, str(variant.pos), variant.vcf_id, variant.ref, variant.alt,
                   variant.status, *_format(variant.scores, 4 * num_labels)]
            tsv.write("\t".join(row) + "\n")
            summary.statuses[variant.status] += 1
            summary.num_variants += 1
        summary.num_records += 1
        if annotated is not None:
            if record.alts:
                _annotate(record, variants, summary.label_names)
            if record.contig not in annotated.header.contigs:
                # a contig neither in the genome nor declared: htslib added it to the input's
                # header while parsing; the output needs it too to write the record
                annotated.header.contigs.add(record.contig)
            annotated.write(record)
        bar.update(len(variants))


def _annotate(record, variants: list[_Variant], label_names: Sequence[str]) -> None:
    record.info["BB_STATUS"] = tuple(variant.status for variant in variants)
    for column, label in enumerate(label_names):
        for what, row in (("DIFF", 2), ("LOR", 3)):
            record.info[info_key(label, what)] = tuple(
                None if variant.scores is None else round(float(variant.scores[row, column]), 6)
                for variant in variants
            )
