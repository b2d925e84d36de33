"""FASTA reading: one test per bad input (asserting the message), policies, streaming."""

from __future__ import annotations

import bz2
import gzip
from pathlib import Path

import numpy as np
import pytest
from Bio import bgzf
from hypothesis import given, settings
from hypothesis import strategies as st

from bigbird_genomics.errors import UserError
from bigbird_genomics.io import fasta as fasta_module
from bigbird_genomics.io.fasta import (
    DEFAULT_POLICY,
    FastaFormatError,
    FastaPolicy,
    read_fasta,
    write_fasta,
)


def write(tmp_path: Path, text: str | bytes, name: str = "in.fa") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def read_all(path: Path, policy: FastaPolicy = DEFAULT_POLICY) -> list[tuple[str, str]]:
    return [(record.id, record.text) for record in read_fasta(path, policy)]


def error_of(path: Path, policy: FastaPolicy = DEFAULT_POLICY) -> str:
    with pytest.raises(FastaFormatError) as caught:
        list(read_fasta(path, policy))
    assert isinstance(caught.value, UserError)
    message = str(caught.value)
    assert str(path) in message
    return message


# --- good input ---------------------------------------------------------------------------
def test_reads_records_ids_descriptions_and_lines(tmp_path):
    path = write(tmp_path, ">a first record\nACGT\nAC\n\n>b\nGGGG\n")
    records = list(read_fasta(path))
    assert [(r.id, r.description, r.text, r.line) for r in records] == [
        ("a", "a first record", "ACGTAC", 1),
        ("b", "b", "GGGG", 5),
    ]
    assert records[0].sequence.dtype == np.uint8 and records[0].soft_mask is None


def test_crlf_line_ends(tmp_path):
    path = write(tmp_path, ">a x\r\nACGT\r\nTT\r\n>b\r\nCC\r\n")
    assert read_all(path) == [("a", "ACGTTT"), ("b", "CC")]


def test_soft_mask_upper_cased_and_optionally_kept(tmp_path):
    path = write(tmp_path, ">a\nACgtN\n")
    assert read_all(path) == [("a", "ACGTN")]
    record = next(read_fasta(path, FastaPolicy(keep_soft_mask=True)))
    assert record.soft_mask.tolist() == [False, False, True, True, False]


def test_ambiguity_codes_become_n_and_are_counted(tmp_path):
    path = write(tmp_path, ">a\nACRYGTnk\n")
    record = next(read_fasta(path))
    assert record.text == "ACNNGTNN"
    assert record.num_ambiguous == 3 and record.count_n() == 4


def test_gzip_bgzip_and_plain_read_the_same(tmp_path):
    text = ">a\n" + "ACGT" * 50 + "\n>b\nGATTACA\n"
    plain = write(tmp_path, text)
    gz = write(tmp_path, gzip.compress(text.encode()), "in.fa.gz")
    with bgzf.BgzfWriter(str(tmp_path / "in.fa.bgz"), "wb") as handle:
        handle.write(text.encode())
    assert read_all(plain) == read_all(gz) == read_all(tmp_path / "in.fa.bgz")


def test_records_and_lines_across_small_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(fasta_module, "_BLOCK_BYTES", 7)
    path = write(tmp_path, ">first one\nACGTACGTAC\nGT\n>second\n" + "T" * 40 + "\n>third\nA\n")
    records = list(read_fasta(path))
    assert [(r.id, len(r), r.line) for r in records] == [
        ("first", 12, 1),
        ("second", 40, 4),
        ("third", 1, 6),
    ]


def test_records_stream_before_the_rest_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(fasta_module, "_BLOCK_BYTES", 16)
    path = write(tmp_path, ">a\nACGT\n>b\nAC\n" + "ACGT\n" * 50 + ">c\nAC!T\n")
    records = read_fasta(path)
    assert next(records).id == "a"  # yielded although record c (invalid) is not read yet
    assert next(records).id == "b"
    with pytest.raises(FastaFormatError, match="record 'c'"):
        next(records)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.text(alphabet="ACGTNacgt", min_size=1, max_size=120), min_size=1, max_size=6),
    st.integers(1, 70),
    st.sampled_from(["\n", "\r\n"]),
    st.integers(3, 64),
)
def test_any_wrapping_and_block_size_reads_back(sequences, width, newline, block):
    original = fasta_module._BLOCK_BYTES
    fasta_module._BLOCK_BYTES = block
    try:
        import tempfile

        with tempfile.TemporaryDirectory() as folder:
            lines = []
            for number, sequence in enumerate(sequences):
                lines.append(f">r{number} desc")
                lines += [sequence[i : i + width] for i in range(0, len(sequence), width)]
            path = Path(folder) / "x.fa"
            path.write_bytes(newline.join(lines).encode() + newline.encode())
            got = read_all(path)
    finally:
        fasta_module._BLOCK_BYTES = original
    assert got == [(f"r{i}", s.upper()) for i, s in enumerate(sequences)]


def test_write_fasta_round_trip_and_atomic(tmp_path):
    out = tmp_path / "sub" / "out.fa.gz"
    count = write_fasta(out, [("a desc", "ACGT" * 40), ("b", np.frombuffer(b"GG", np.uint8))])
    assert count == 2 and [p.name for p in out.parent.iterdir()] == ["out.fa.gz"]
    assert read_all(out) == [("a", "ACGT" * 40), ("b", "GG")]


def test_written_fasta_is_readable_by_others(tmp_path):
    """mkstemp makes 0600 files; a FASTA output is an ordinary shared file (0644)."""
    out = tmp_path / "out.fa"
    write_fasta(out, [("a", "ACGT")])
    assert out.stat().st_mode & 0o777 == 0o644


# --- bad input: one test each, asserting what the message says ------------------------------
def test_missing_file(tmp_path):
    assert "no such file" in error_of(tmp_path / "absent.fa")


def test_empty_file(tmp_path):
    assert "is empty" in error_of(write(tmp_path, ""))


def test_whitespace_only_file(tmp_path):
    assert "is empty" in error_of(write(tmp_path, "\n \n"))


def test_fastq(tmp_path):
    message = error_of(write(tmp_path, "@read1\nACGT\n+\nIIII\n", "reads.fa"))
    assert "FASTQ" in message and "line 1" in message


def test_genbank(tmp_path):
    message = error_of(write(tmp_path, "LOCUS       NC_000913  4641652 bp    DNA\n"))
    assert "GenBank" in message and "SeqIO.convert" in message


def test_byte_order_mark(tmp_path):
    message = error_of(write(tmp_path, b"\xef\xbb\xbf>r1\nACGT\n"))
    assert "line 1" in message and "byte-order mark" in message and "sed -i" in message


def test_binary(tmp_path):
    assert "binary file" in error_of(write(tmp_path, b"\x89PNG\r\n\x1a\n\x00\x00\x00"))


def test_other_compression(tmp_path):
    path = write(tmp_path, bz2.compress(b">a\nACGT\n"), "in.fa.bz2")
    assert "bzip2-compressed" in error_of(path)


def test_text_that_is_not_fasta(tmp_path):
    message = error_of(write(tmp_path, "\nchrom\tstart\tend\n"))
    assert "line 2: starts with 'chrom\\tstart\\tend'; this is not FASTA" in message


def test_record_without_sequence_in_the_middle(tmp_path):
    message = error_of(write(tmp_path, ">a\nACGT\n>empty\n>c\nAA\n"))
    assert "record 'empty' (header on line 3) has no sequence" in message


def test_record_without_sequence_at_the_end(tmp_path):
    message = error_of(write(tmp_path, ">a\nACGT\n>last\n\n"))
    assert "record 'last' (header on line 3) has no sequence" in message


def test_header_without_id(tmp_path):
    assert "line 3: header '>' has no record id" in error_of(write(tmp_path, ">a\nAC\n>\nAC\n"))


def test_duplicate_ids(tmp_path):
    path = write(tmp_path, ">a x\nACGT\n>b\nAA\n>a y\nCC\n")
    message = error_of(path)
    assert "line 5: duplicate record id 'a' (first on line 1)" in message
    assert read_all(path, FastaPolicy(allow_duplicate_ids=True))[2] == ("a", "CC")


def test_character_outside_iupac_names_record_line_and_column(tmp_path):
    message = error_of(write(tmp_path, ">a\nACGT\n>b\nACGT\nAC*GT\n"))
    assert "record 'b' (header on line 3), line 5, column 3: character '*'" in message
    assert "IUPAC" in message


def test_rna_gets_a_hint(tmp_path):
    assert "U -> T" in error_of(write(tmp_path, ">a\nACGU\n"))


def test_alignment_gaps_get_a_hint(tmp_path):
    assert "alignment gaps" in error_of(write(tmp_path, ">a\nAC--GT\n"))


def test_ambiguity_refused_by_policy(tmp_path):
    message = error_of(write(tmp_path, ">a\nACGT\nAYGT\n"), FastaPolicy(ambiguity="error"))
    assert "line 3, column 2: character 'Y'" in message and "ambiguity='to_n'" in message


def test_sequence_before_first_header(tmp_path, monkeypatch):
    monkeypatch.setattr(fasta_module, "_BLOCK_BYTES", 2)  # leading blank blocks are skipped
    message = error_of(write(tmp_path, "\n\n\nACGT\n>a\nAC\n"))
    assert "line 4: starts with 'A" in message and "not FASTA" in message


def test_truncated_gzip(tmp_path):
    data = gzip.compress((">a\n" + "ACGT" * 5000 + "\n").encode())
    message = error_of(write(tmp_path, data[: len(data) // 2], "cut.fa.gz"))
    assert "truncated or corrupt" in message and "gzip -t" in message
