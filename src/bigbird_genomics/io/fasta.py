"""Streaming FASTA reading with validation errors a biologist can act on.

`read_fasta` yields one `FastaRecord` at a time from plain, gzip or bgzip FASTA; memory is
bounded by the largest record (its bytes about twice, never as a Python str per base).

Why not `Bio.SeqIO.parse` for the reading itself: it builds every record as a list of
Python str lines plus their join (about 2-3 copies of the record as str), it silently skips
text before the first '>' (so a FASTQ or GenBank file reads as zero records instead of an
error), and it keeps no line numbers, so errors could not say where the problem is. Reading
bytes in large blocks and validating with C-level `bytes.translate` is what keeps ingestion
far above the 50 Mbp/s target (see benchmarks/tokenize_throughput.py). Biopython still supplies the
IUPAC alphabets here, reverse complements in `intervals`, and the baseline in the benchmark.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np
from Bio.Data.IUPACData import ambiguous_dna_letters, unambiguous_dna_letters

from bigbird_genomics.errors import UserError
from bigbird_genomics.io.atomic import atomic_path

_BLOCK_BYTES = 4 << 20
_WHITESPACE = b" \t\r\n\v\f"
_PLAIN = (unambiguous_dna_letters + "N").encode("ascii")  # ACGT + N
_PLAIN_BOTH = _PLAIN + _PLAIN.lower()
_AMBIGUOUS = bytes(sorted(set(ambiguous_dna_letters.encode("ascii")) - set(_PLAIN)))  # RYSW...
_VALID = _PLAIN_BOTH + _AMBIGUOUS + _AMBIGUOUS.lower()
# Upper-case every letter; ambiguity codes become N (under the default policy).
_TO_UPPER = bytes.maketrans(_PLAIN.lower() + _AMBIGUOUS.lower(), _PLAIN + _AMBIGUOUS)
_TO_UPPER_N = bytes.maketrans(
    _PLAIN.lower() + _AMBIGUOUS + _AMBIGUOUS.lower(),
    _PLAIN + b"N" * (2 * len(_AMBIGUOUS)),
)
_COMPRESSION_MAGIC = {
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"PK\x03\x04": "zip",
}


class FastaFormatError(UserError):
    """A FASTA file that cannot be used as it is; the message names file, record and line."""


@dataclass(frozen=True)
class FastaPolicy:
    """What to do with the irregularities real FASTA files carry.

    ambiguity: "to_n" turns IUPAC ambiguity codes (R, Y, S, W, K, M, B, D, H, V) into N and
    counts them in `FastaRecord.num_ambiguous`; "error" refuses them.
    keep_soft_mask: lower-case (soft-masked repeat) bases are always upper-cased; with True
    their positions are kept in `FastaRecord.soft_mask`.
    allow_duplicate_ids: duplicate record ids are an error unless this is True.
    """

    ambiguity: Literal["to_n", "error"] = "to_n"
    keep_soft_mask: bool = False
    allow_duplicate_ids: bool = False

    def __post_init__(self) -> None:
        if self.ambiguity not in ("to_n", "error"):
            raise ValueError(f"ambiguity must be 'to_n' or 'error', not {self.ambiguity!r}")


DEFAULT_POLICY = FastaPolicy()

# ASCII code -> complement code (IUPAC codes too; soft-mask case kept; anything else unchanged).
_COMPLEMENT = np.arange(256, dtype=np.uint8)
for _forward, _reverse in zip(b"ACGTNRYSWKMBDHV", b"TGCANYRSWMKVHDB", strict=True):
    _COMPLEMENT[_forward], _COMPLEMENT[_forward + 32] = _reverse, _reverse + 32


def reverse_complement(sequence: np.ndarray) -> np.ndarray:
    """Reverse complement of an ASCII uint8 sequence (a new array)."""
    return _COMPLEMENT[sequence[::-1]]


@dataclass
class FastaRecord:
    """One FASTA record. `description` is the whole header after '>' (Biopython's convention);
    `sequence` is upper-case ASCII (uint8, writable); `line` is the header's line number."""

    id: str
    description: str
    sequence: np.ndarray
    soft_mask: np.ndarray | None
    path: Path
    line: int
    num_ambiguous: int = 0

    def __len__(self) -> int:
        return int(self.sequence.size)

    @property
    def text(self) -> str:
        """The sequence as a str (a copy: avoid on whole chromosomes)."""
        return self.sequence.tobytes().decode("ascii")

    def count_n(self) -> int:
        """Number of N bases, including ambiguity codes turned into N."""
        return int(np.count_nonzero(self.sequence == ord("N")))

    def where(self) -> str:
        return f"{self.path}: record '{self.id}' (header on line {self.line})"


def check_fasta_path(path: str | os.PathLike[str]) -> None:
    """Refuse a FASTA path that is missing or not a regular file, before any other work."""
    path = Path(path)
    if not path.is_file():
        if path.exists():
            # a device (/dev/zero) or a pipe: the file is opened twice (magic bytes, then the
            # records), which a stream cannot give, and /dev/zero would never end
            raise FastaFormatError(
                f"{path}: is not a regular file (a device, pipe or folder); save the FASTA to a "
                "file (plain or gzip) and pass that"
            )
        raise FastaFormatError(f"{path}: no such file")


def open_binary(path: Path) -> BinaryIO:
    """Open plain or gzip/bgzip input by content (not extension); refuse other compressions."""
    check_fasta_path(path)
    with open(path, "rb") as handle:
        magic = handle.read(6)
    if magic[:2] == b"\x1f\x8b":  # gzip; bgzip is gzip with extra blocks, read the same way
        return gzip.open(path, "rb")
    for prefix, name in _COMPRESSION_MAGIC.items():
        if magic.startswith(prefix):
            raise FastaFormatError(
                f"{path}: is {name}-compressed; decompress it, or recompress it with gzip or "
                "bgzip (`bgzip file.fa`)"
            )
    return open(path, "rb")


def read_fasta(
    path: str | os.PathLike, policy: FastaPolicy = DEFAULT_POLICY
) -> Iterator[FastaRecord]:
    """Yield validated records one at a time; raise `FastaFormatError` at the first problem."""
    yield from _FastaReader(Path(path), policy)


class _FastaReader:
    """Block-wise FASTA parser; keeps line numbers so every error can point at a line."""

    def __init__(self, path: Path, policy: FastaPolicy) -> None:
        self.path = path
        self.policy = policy
        self.seen: dict[str, int] = {}
        self.lines_done = 0  # newlines consumed so far
        self.header: tuple[str, str, int] | None = None  # id, description, line
        self.parts = bytearray()

    def __iter__(self) -> Iterator[FastaRecord]:
        carry = b""
        at_line_start = True
        first, blank_lines = True, 0
        with open_binary(self.path) as handle:
            while True:
                block = self._read(handle)
                if first and (block.strip() or not block):  # skip leading blank blocks
                    self._check_start(block, blank_lines)
                    first = False
                elif first:
                    blank_lines += block.count(b"\n")
                data = carry + block if carry else block
                eof = not block
                if not data:
                    break
                carry, at_line_start, done = self._parse(data, at_line_start, eof)
                yield from done
                if eof:
                    break
        if self.header is not None:
            yield self._finish()

    def _read(self, handle: BinaryIO) -> bytes:
        try:
            return handle.read(_BLOCK_BYTES)
        except (EOFError, zlib.error, gzip.BadGzipFile) as error:
            raise FastaFormatError(
                f"{self.path}: the gzip data is truncated or corrupt after line "
                f"{self.lines_done} ({error}); the file is incomplete: download or compress "
                "it again (`gzip -t` checks a file)"
            ) from None

    def _check_start(self, block: bytes, blank_lines: int) -> None:
        """Recognise the usual wrong inputs by their first bytes, before parsing."""
        if not block.strip():
            raise FastaFormatError(f"{self.path}: is empty; expected FASTA ('>id' header lines)")
        if b"\x00" in block[:65536]:
            raise FastaFormatError(
                f"{self.path}: is a binary file, not FASTA text (contains NUL bytes); "
                "pass a .fa/.fasta/.fna file, optionally gzip-compressed"
            )
        skipped = len(block) - len(block.lstrip())
        line = blank_lines + block[:skipped].count(b"\n") + 1
        head = block.lstrip()[:80]
        if head.startswith(b">"):
            return
        if head.startswith(b"@"):
            kind = (
                "looks like FASTQ (starts with '@'); convert it with `seqtk seq -a in.fq > out.fa`"
            )
        elif head.startswith(b"LOCUS"):
            kind = (
                "looks like GenBank (starts with 'LOCUS'); convert it with Biopython: "
                "`SeqIO.convert(in, 'genbank', out, 'fasta')`"
            )
        elif head.startswith(b"\xef\xbb\xbf"):
            kind = (
                "starts with a UTF-8 byte-order mark (some Windows editors save one); remove "
                "it, e.g. `sed -i '1s/^\\xEF\\xBB\\xBF//' FILE`"
            )
        elif head.startswith(b"ID   "):
            kind = "looks like EMBL (starts with 'ID'); convert it to FASTA first"
        else:
            shown = head.split(b"\n")[0][:40].decode("utf-8", "replace")
            kind = f"starts with {shown!r}; this is not FASTA, which starts with a '>id' line"
        raise FastaFormatError(f"{self.path}: line {line}: {kind}")

    def _parse(
        self, data: bytes, at_line_start: bool, eof: bool
    ) -> tuple[bytes, bool, list[FastaRecord]]:
        """Consume complete lines of `data`; return the carried partial header and records."""
        done: list[FastaRecord] = []
        pos = 0
        size = len(data)
        while pos < size:
            if at_line_start and data[pos] == 0x3E:  # '>' at a line start: a header
                end = data.find(b"\n", pos)
                if end == -1 and not eof:
                    return data[pos:], True, done
                end = size if end == -1 else end
                if self.header is not None:
                    done.append(self._finish())
                self._start(data[pos + 1 : end])
                pos = end + 1
                continue
            stop = _next_header(data, pos)
            segment = data if (pos == 0 and stop == size) else data[pos:stop]
            if self.header is None:  # blank lines before the first header (_check_start)
                self.lines_done += segment.count(b"\n")
            else:
                bases, newlines = _strip_whitespace(segment)
                self.parts += bases
                self.lines_done += newlines
            at_line_start = segment.endswith(b"\n")
            pos = stop
        return b"", at_line_start, done

    def _start(self, raw_header: bytes) -> None:
        self.lines_done += 1
        line = self.lines_done
        try:
            title = raw_header.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise FastaFormatError(
                f"{self.path}: line {line}: header is not UTF-8 text; save the FASTA as "
                f"UTF-8 (from latin-1: `iconv -f latin1 -t utf-8 {self.path} > converted.fa`), "
                "or check that it is not a binary file"
            ) from None
        if not title:
            raise FastaFormatError(
                f"{self.path}: line {line}: header '>' has no record id; write '>id description'"
            )
        record_id = title.split(None, 1)[0]
        if record_id in self.seen and not self.policy.allow_duplicate_ids:
            raise FastaFormatError(
                f"{self.path}: line {line}: duplicate record id '{record_id}' (first on line "
                f"{self.seen[record_id]}); record ids must be unique, rename one of them"
            )
        self.seen.setdefault(record_id, line)
        self.header = (record_id, title, line)

    def _finish(self) -> FastaRecord:
        assert self.header is not None
        record_id, description, line = self.header
        raw, self.parts, self.header = self.parts, bytearray(), None
        where = f"{self.path}: record '{record_id}' (header on line {line})"
        if not raw:
            raise FastaFormatError(
                f"{where} has no sequence; remove the record or add its sequence"
            )
        rest = raw.translate(None, _PLAIN)  # empty for upper-case ACGTN: one fast pass
        num_ambiguous = 0
        if rest:
            unusual = rest.translate(None, _PLAIN.lower())  # ambiguity codes and invalid bytes
            invalid = unusual.translate(None, _VALID)
            if invalid:
                self._refuse_character(where, line, raw, invalid[:1], _invalid_hint(invalid[:1]))
            num_ambiguous = len(unusual)
            if unusual and self.policy.ambiguity == "error":
                self._refuse_character(
                    where,
                    line,
                    raw,
                    unusual[:1],
                    "IUPAC ambiguity codes are refused by policy (ambiguity='error'); "
                    "use ambiguity='to_n' to read them as N",
                )
        soft_mask = None
        if self.policy.keep_soft_mask:
            soft_mask = np.frombuffer(raw, dtype=np.uint8) >= ord("a")
        sequence = raw
        if rest:  # lower case or ambiguity codes
            sequence = raw.translate(_TO_UPPER_N if self.policy.ambiguity == "to_n" else _TO_UPPER)
        return FastaRecord(
            id=record_id,
            description=description,
            sequence=np.frombuffer(sequence, dtype=np.uint8),
            soft_mask=soft_mask,
            path=self.path,
            line=line,
            num_ambiguous=num_ambiguous,
        )

    def _refuse_character(
        self, where: str, header_line: int, raw: bytearray, char: bytes, hint: str
    ) -> None:
        offset = raw.find(char)
        line, column = _locate(self.path, header_line, offset)
        shown = char.decode("latin-1")
        raise FastaFormatError(
            f"{where}, line {line}, column {column}: character {shown!r} is not allowed; {hint}"
        )


def _next_header(data: bytes, pos: int) -> int:
    """Index of the next '>' that starts a line, or len(data).

    Searching for the rare '>' (memchr) is much faster than for "\n>"; a '>' inside a line is
    left in the sequence, where validation reports it with its line and column.
    """
    while True:
        found = data.find(b">", pos)
        if found == -1:
            return len(data)
        if found > 0 and data[found - 1] == 0x0A:
            return found
        pos = found + 1


def _strip_whitespace(segment: bytes) -> tuple[bytes, int]:
    """Sequence text without line ends (or stray spaces, tabs, CR), and its newline count."""
    text = segment.replace(b"\n", b"")
    newlines = len(segment) - len(text)
    if b"\r" in text or b" " in text or b"\t" in text:
        text = text.translate(None, _WHITESPACE)
    return text, newlines


def _invalid_hint(char: bytes) -> str:
    if char in b"Uu":
        return "U is RNA: convert the sequence to DNA (U -> T)"
    if char in b"-.":
        return "alignment gaps are not sequence: remove them (e.g. `seqkit seq -g`)"
    return (
        "FASTA sequence lines may hold IUPAC nucleotide codes only "
        "(ACGTN and RYSWKMBDHV, either case); fix or remove the record"
    )


def _locate(path: Path, header_line: int, offset: int) -> tuple[int, int]:
    """Line and column of the `offset`-th sequence character after a header (error path only)."""
    with open_binary(path) as handle:
        for number, line in enumerate(handle, start=1):
            if number <= header_line:
                continue
            for column, byte in enumerate(line, start=1):
                if byte in _WHITESPACE:
                    continue
                if offset == 0:
                    return number, column
                offset -= 1
    return header_line, 0


def write_fasta(
    path: str | os.PathLike,
    records: Iterable[tuple[str, str | bytes | np.ndarray]],
    line_width: int = 60,
) -> int:
    """Write (header, sequence) pairs atomically (temp file + rename); gzip if path ends .gz.

    `header` is everything after '>'. Returns the number of records written.
    """
    path = Path(path)
    count = 0
    with atomic_path(path) as temp, open(temp, "wb") as raw_handle:
        handle: BinaryIO = (
            gzip.GzipFile(fileobj=raw_handle, mode="wb", mtime=0)  # type: ignore[assignment]
            if path.suffix == ".gz"
            else raw_handle
        )
        for header, sequence in records:
            if isinstance(sequence, np.ndarray):
                data = sequence.tobytes()
            elif isinstance(sequence, str):
                data = sequence.encode("ascii")
            else:
                data = bytes(sequence)
            handle.write(b">" + header.encode("utf-8") + b"\n")
            for start in range(0, len(data), line_width):
                handle.write(data[start : start + line_width] + b"\n")
            count += 1
        if handle is not raw_handle:
            handle.close()
    return count
